"""Shadow and canary serving of the challenger (`deploy/challenger.yaml` beside the pointer):
a real uvicorn server, a real SQLite store, the challenger lane's loader; and every refusal of a bad
challenger keeps production serving."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gitops_ml.prediction_store import PredictionStore
from gitops_ml.registry.challenger import ChallengerPointer, write_challenger
from gitops_ml.serving.model_holder import ModelHolder
from gitops_ml.serving.shadow import ShadowScorer
from tests.serving.conftest import FEATURES, artifact_metadata, records_of, synth_churn


def challenger_file(model_store) -> Path:
    return model_store.pointer_path.parent / "challenger.yaml"


def propose(
    model_store, version: str = "v2", *, pipeline_key: str | None = None, **fields
) -> ChallengerPointer:
    info = model_store.publish(version, pipeline_key)
    pointer = ChallengerPointer(
        version=version,
        artifact_uri=info["artifact_uri"],
        sha256=fields.pop("sha256", info["sha256"]),
        **fields,
    )
    write_challenger(challenger_file(model_store), pointer)
    return pointer


def expected_scores(pipeline, settings, rows: list[dict]) -> np.ndarray:
    from gitops_ml.training.pipeline import prepare_features

    X = prepare_features(pd.DataFrame.from_records(rows, columns=FEATURES), settings)
    return pipeline.predict_proba(X)[:, list(pipeline.classes_).index(1)]


def settle(server) -> None:
    assert server.app.state.logger.flush(timeout=60, shadow=True)


def test_shadow_scores_every_request_off_the_response_path(model_store, start_server, trained, settings):
    model_store.point_to("v1")
    propose(model_store, "v2", mode="shadow")
    server = start_server()
    info = server.client.get("/model").json()
    assert info["version"] == "v1"
    assert info["challenger"]["version"] == "v2" and info["challenger"]["mode"] == "shadow"
    assert info["challenger"]["error"] is None and info["challenger"]["serving_path"]
    rows = records_of(synth_churn(30, seed=11))
    for i, row in enumerate(rows[:10]):
        answer = server.client.post("/predict", json={**row, "request_id": f"s-{i}"}).json()
        assert answer["model_version"] == "v1"
    batch = server.client.post(
        "/predict", json={"records": [{**r, "request_id": f"s-{i}"} for i, r in enumerate(rows) if i >= 10]}
    ).json()
    assert batch["model_version"] == "v1" and all("model_version" not in p for p in batch["predictions"])
    settle(server)
    ready = server.client.get("/ready").json()
    assert ready["challenger"] == {"version": "v2", "mode": "shadow", "error": None}
    assert ready["prediction_log"]["shadow_scored"] == 30 and ready["prediction_log"]["shadow_written"] == 30
    store = PredictionStore(f"sqlite:///{server.db_path}")
    paired = store.paired().set_index("request_id").loc[[f"s-{i}" for i in range(30)]]
    store.dispose()
    assert (paired["served_role"] == "production").all()
    assert set(paired["production_version"]) == {"v1"} and set(paired["challenger_version"]) == {"v2"}
    np.testing.assert_allclose(
        paired["production_score"], expected_scores(trained["v1"], settings, rows), atol=1e-9
    )
    np.testing.assert_allclose(
        paired["challenger_score"], expected_scores(trained["v2"], settings, rows), atol=1e-9
    )


def test_canary_answers_a_sticky_fraction_and_both_are_logged(model_store, start_server, trained, settings):
    model_store.point_to("v1")
    pointer = propose(model_store, "v2", mode="canary", fraction=0.5, sticky_field="region")
    server = start_server()
    rows = records_of(synth_churn(60, seed=12))
    answered = {}
    for i, row in enumerate(rows):
        out = server.client.post("/predict", json={**row, "request_id": f"c-{i}"}).json()
        answered[f"c-{i}"] = out["model_version"]
        # the caller's region decides, the same way every time
        assert out["model_version"] == ("v2" if pointer.answers(row["region"]) else "v1"), row["region"]
    assert set(answered.values()) == {"v1", "v2"}
    batch = server.client.post(
        "/predict", json=[{**r, "request_id": f"b-{i}"} for i, r in enumerate(rows[:20])]
    )
    for row, prediction in zip(rows[:20], batch.json()["predictions"], strict=True):
        assert prediction.get("model_version", "v1") == ("v2" if pointer.answers(row["region"]) else "v1")
    settle(server)
    store = PredictionStore(f"sqlite:///{server.db_path}")
    window = store.window().set_index("request_id")
    paired = store.paired().set_index("request_id").loc[list(answered)]
    store.dispose()
    for rid, version in answered.items():
        assert window.loc[rid, "model_version"] == version
        assert window.loc[rid, "served_role"] == ("challenger" if version == "v2" else "production")
    # every request is scored by both, whichever answered
    np.testing.assert_allclose(
        paired["production_score"], expected_scores(trained["v1"], settings, rows), atol=1e-9
    )
    np.testing.assert_allclose(
        paired["challenger_score"], expected_scores(trained["v2"], settings, rows), atol=1e-9
    )


class _Broken:
    """A challenger whose every prediction raises (what a model that cannot score these rows does)."""

    def __init__(self, served) -> None:
        self.served = served

    @property
    def version(self) -> str:
        return "v2"

    @property
    def pointer(self):
        return self.served.pointer

    def predict(self, records):
        raise RuntimeError("challenger broke")


def test_a_failing_canary_challenger_leaves_production_answering(model_store, start_server):
    from gitops_ml.serving.model_holder import ServedChallenger

    model_store.point_to("v1")
    pointer = propose(model_store, "v2", mode="canary", fraction=0.9)
    server = start_server()
    holder = server.app.state.holder
    assert holder.challenger is not None
    holder._challenger = ServedChallenger(served=_Broken(holder.challenger.served), pointer=pointer)  # type: ignore[arg-type]
    rows = records_of(synth_churn(20, seed=13))
    canary = [f"f-{i}" for i in range(20) if pointer.answers(f"f-{i}")]
    assert canary  # 90%: some ids are drawn for the challenger
    for i, row in enumerate(rows):
        out = server.client.post("/predict", json={**row, "request_id": f"f-{i}"})
        assert out.status_code == 200 and out.json()["model_version"] == "v1"
    settle(server)
    ready = server.client.get("/ready").json()["prediction_log"]
    assert ready["challenger_failures"] == len(canary) and ready["served"] == 20
    # production answered all 20, so the challenger shadow-scored all 20 (in the log worker, which
    # loads v2 from its pointer: the broken stand-in lives in the server only)
    assert ready["shadow_scored"] == 20 and ready["shadow_failed"] == 0 and ready["written"] == 20


def test_challenger_is_hot_reloaded_and_retired(model_store, start_server):
    model_store.point_to("v1")
    server = start_server()
    assert server.client.get("/model").json()["challenger"] is None
    propose(model_store, "v2", mode="shadow")
    server.wait_for(lambda r: (r.json().get("challenger") or {}).get("version") == "v2", "/model")
    challenger_file(model_store).unlink()
    server.wait_for(lambda r: r.json()["challenger"] is None, "/model")
    assert (
        server.client.post("/predict", json=records_of(synth_churn(1, seed=2))[0]).json()["model_version"]
        == "v1"
    )


def test_a_refused_challenger_leaves_production_serving_and_says_why(model_store, start_server):
    model_store.point_to("v1")
    propose(model_store, "v2", sha256="0" * 64)
    server = start_server()
    challenger = server.client.get("/model").json()["challenger"]
    assert challenger["version"] is None and "sha256" in challenger["error"]
    out = server.client.post("/predict", json={**records_of(synth_churn(1, seed=3))[0], "request_id": "x"})
    assert out.status_code == 200 and out.json()["model_version"] == "v1"
    settle(server)
    store = PredictionStore(f"sqlite:///{server.db_path}")
    assert store.count_predictions() == 1 and store.count_shadow_predictions() == 0
    store.dispose()


# -- each bad challenger, without HTTP: refused, production keeps serving ---------------------


def _holder(model_store, settings, tmp_path) -> ModelHolder:
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check() and holder.current.version == "v1"
    return holder


def _refused(holder: ModelHolder, *words: str) -> None:
    holder.check()
    assert holder.current is not None and holder.current.version == "v1"
    assert holder.challenger is None
    for word in words:
        assert word in (holder.challenger_error or ""), holder.challenger_error


def test_wrong_sha256_is_refused(model_store, settings, tmp_path):
    holder = _holder(model_store, settings, tmp_path)
    propose(model_store, "v2", sha256="f" * 64)
    _refused(holder, "challenger.yaml", "sha256")


def test_tampered_artifact_is_refused(model_store, settings, tmp_path):
    holder = _holder(model_store, settings, tmp_path)
    pointer = propose(model_store, "v2")
    path = Path(pointer.artifact_uri)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    _refused(holder, "challenger.yaml", "sha256")


def test_the_production_version_is_refused(model_store, settings, tmp_path):
    holder = _holder(model_store, settings, tmp_path)
    propose(model_store, "v1")
    _refused(holder, "version", "production")


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_a_canary_fraction_outside_the_open_interval_is_refused(model_store, settings, tmp_path, fraction):
    holder = _holder(model_store, settings, tmp_path)
    info = model_store.publish("v2")
    data = {"version": "v2", "artifact_uri": info["artifact_uri"], "sha256": info["sha256"]}
    challenger_file(model_store).write_text(yaml.safe_dump({**data, "mode": "canary", "fraction": fraction}))
    _refused(holder, "fraction")


def test_a_breaking_contract_difference_is_refused(model_store, settings, tmp_path):
    from gitops_ml.registry.artifacts import save_model

    holder = _holder(model_store, settings, tmp_path)
    info = artifact_metadata("v3").model_copy(update={"target": "plan"})
    artifact = save_model(model_store.pipelines["v2"], model_store.root / "v3", info)
    pointer = ChallengerPointer(version="v3", artifact_uri=str(artifact.model_path), sha256=artifact.sha256)
    write_challenger(challenger_file(model_store), pointer)
    _refused(holder, "target")


def test_a_challenger_promoted_to_production_stops_challenging(model_store, settings, tmp_path):
    holder = _holder(model_store, settings, tmp_path)
    propose(model_store, "v2")
    holder.check()
    assert holder.challenger is not None and holder.challenger.version == "v2"
    model_store.point_to("v2")  # promoted, the challenger file not yet retired: it names production
    assert holder.check() and holder.current.version == "v2"
    assert holder.challenger is None and "production" in holder.challenger_error


# -- the shadow queue ---------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def log_shadow_many(self, records) -> None:
        self.records.extend(records)


class _Model:
    version = "shadow-v"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[int] = []

    def predict(self, records):
        self.calls.append(len(records))
        if self.fail:
            raise RuntimeError("boom")
        return [{"prediction": 1, "score": 0.5, "probabilities": None} for _ in records]


NOW = pd.Timestamp("2026-03-01", tz="UTC").to_pydatetime()


def test_shadow_queue_is_bounded_scores_in_chunks_and_drains_at_stop():
    sink, model = _Sink(), _Model()
    shadow = ShadowScorer(sink, max_queued_rows=10, batch_rows=1000, batch_wait_s=60, chunk_rows=4)
    offered = [shadow.offer(model, "challenger", [f"r-{i}"], [{"x": i}], NOW) for i in range(15)]
    assert shadow.queued == 10 and model.calls == []  # not started: nothing scored on the caller's path
    shadow.start().stop()  # scores what is queued
    assert offered == [True] * 10 + [False] * 5 and shadow.dropped == 5
    assert model.calls == [4, 4, 2] and shadow.scored == 10 == len(sink.records) and shadow.queued == 0
    assert [r["request_id"] for r in sink.records] == [f"r-{i}" for i in range(10)]
    assert {r["role"] for r in sink.records} == {"challenger"} and sink.records[0][
        "model_version"
    ] == "shadow-v"


def test_shadow_rounds_run_when_enough_rows_wait_or_after_the_wait():
    model = _Model()
    shadow = ShadowScorer(_Sink(), batch_rows=3, batch_wait_s=0.05).start()
    shadow.offer(model, "challenger", ["a"], [{"x": 1}], NOW)
    assert shadow.flush(timeout=10)  # one row, below batch_rows: scored after the wait
    seen = list(model.calls)
    shadow.offer(model, "challenger", ["b", "c", "d"], [{"x": 2}, {"x": 3}, {"x": 4}], NOW)
    assert shadow.flush(timeout=10)
    shadow.stop()
    assert seen == [1] and model.calls == [1, 3]


def test_the_scorer_thread_runs_below_everything_else():
    seen: list[tuple[int, int]] = []

    class Probe(_Model):
        def predict(self, records):
            thread = threading.get_native_id()
            seen.append((os.sched_getscheduler(thread), os.getpriority(os.PRIO_PROCESS, thread)))
            return super().predict(records)

    shadow = ShadowScorer(_Sink(), nice=7).start()
    shadow.offer(Probe(), "challenger", ["a"], [{"x": 1}], NOW)
    shadow.stop()
    # SCHED_IDLE: it runs only on a core nothing else wants (nice is the fallback elsewhere)
    assert shadow.priority == "SCHED_IDLE" and seen[0][0] == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's thread is untouched


def test_a_failing_shadow_model_is_counted_and_logs_nothing():
    sink = _Sink()
    shadow = ShadowScorer(sink).start()
    assert shadow.offer(_Model(fail=True), "challenger", ["a", "b"], [{"x": 1}, {"x": 2}], NOW)
    shadow.stop()
    assert shadow.failed == 2 and shadow.scored == 0 and sink.records == [] and shadow.queued == 0
    assert "boom" in shadow.last_error
