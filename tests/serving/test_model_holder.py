"""ModelHolder (load, reload, refuse), without HTTP (the scheduler: test_scheduler.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from gitops_ml.serving.model_holder import ModelHolder, build_request_model, example_record
from tests.serving.conftest import FEATURES, records_of, synth_churn


def test_example_record_is_valid_for_the_contract(settings):
    model = build_request_model(settings)
    record = example_record(model, FEATURES)
    assert set(record) == set(FEATURES)
    model.model_validate(record)  # raises if the generated record breaks a contract rule


def test_missing_pointer_is_not_ready_with_a_reason(tmp_path, settings):
    holder = ModelHolder(tmp_path / "production.yaml", settings, cache_dir=tmp_path / "cache")
    assert holder.check() is False
    assert holder.current is None
    assert "no production model yet" in holder.not_ready_reason


def test_invalid_pointer_names_the_file(tmp_path, settings):
    pointer = tmp_path / "production.yaml"
    pointer.write_text("version: v1\nartifact_uri: [unclosed\n")
    holder = ModelHolder(pointer, settings, cache_dir=tmp_path / "cache")
    assert holder.check() is False
    assert str(pointer) in holder.not_ready_reason


def test_reloads_only_when_the_pointer_changes(model_store, settings, tmp_path):
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check() is True and holder.current.version == "v1"
    first = holder.current
    assert holder.check() is False and holder.current is first
    model_store.point_to("v2")
    assert holder.check() is True and holder.current.version == "v2"
    assert holder.reload_error is None


def _publish_without_region(model_store, tmp_path, *, metadata_features):
    from gitops_ml.clock import utc_now_text
    from gitops_ml.registry.artifacts import save_model
    from gitops_ml.registry.pointer import (
        HistoryEntry,
        ProductionPointer,
        append_history,
        write_pointer,
    )
    from tests.serving.conftest import artifact_metadata

    pipeline = model_store.pipelines["no_region"]
    artifact = save_model(
        pipeline, tmp_path / "model-store" / "v9", artifact_metadata("v9", metadata_features)
    )
    pointer = ProductionPointer(version="v9", artifact_uri=str(artifact.model_path), sha256=artifact.sha256)
    append_history(
        model_store.history_path,
        HistoryEntry(
            action="promote", version="v9", previous_version=None, at=utc_now_text(), pointer=pointer
        ),
    )
    write_pointer(model_store.pointer_path, pointer)


def test_model_whose_metadata_lies_about_its_features_is_refused(model_store, settings, tmp_path):
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check()
    _publish_without_region(model_store, tmp_path, metadata_features=FEATURES)
    assert holder.check() is False
    assert holder.current.version == "v1"
    assert "region" in holder.reload_error and "features" in holder.reload_error


def test_model_with_fewer_features_serves_with_its_own(model_store, settings, tmp_path):
    """A promotion that drops a feature: old clients still sending it keep working."""
    without_region = [f for f in FEATURES if f != "region"]
    _publish_without_region(model_store, tmp_path, metadata_features=without_region)
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check(), holder.not_ready_reason
    model = holder.current
    assert model.feature_columns == without_region
    row = records_of(synth_churn(1, seed=5))[0]
    for record in (row, {k: v for k, v in row.items() if k != "region"}):
        validated = model.request_model.model_validate(model.without_ignored(record)).model_dump(
            exclude={"request_id"}
        )
        assert model.predict([validated])[0]["prediction"] in (0, 1)


def test_tampered_artifact_keeps_the_old_model(model_store, settings, tmp_path):
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    holder.check()
    info = model_store.publish("v2")
    path = Path(info["artifact_uri"])
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    model_store.point_to("v2", sha256=info["sha256"])
    assert holder.check() is False
    assert holder.current.version == "v1"
    assert "sha256" in holder.reload_error


def test_loaded_model_scores_records(model_store, settings, tmp_path):
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    holder.check()
    rows = records_of(synth_churn(3, seed=3))
    out = holder.current.predict(rows)
    assert len(out) == 3
    for item in out:
        assert item["prediction"] in (0, 1)
        assert item["score"] == pytest.approx(item["probabilities"]["1"])


def test_the_startup_log_and_model_say_which_path_serves(model_store, settings, tmp_path, caplog):
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="gitops_ml.serving.model_holder"):
        assert holder.check()
    assert holder.current.compiled is not None
    assert "compiled numpy preprocessing + HistGradientBoostingClassifier" in caplog.text


def test_an_uncompilable_pipeline_is_served_by_scikit_learn(model_store, settings, tmp_path, monkeypatch):
    from gitops_ml.serving import model_holder
    from gitops_ml.serving.fast_path import NotCompilable

    def refuse(*_args):
        raise NotCompilable("a step the fast path does not cover")

    monkeypatch.setattr(model_holder, "compile_pipeline", refuse)
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check()
    model = holder.current
    assert model.compiled is None
    assert model.serving_path == "scikit-learn pipeline (not compiled: a step the fast path does not cover)"
    rows = records_of(synth_churn(4, seed=8))
    assert all(r["prediction"] in (0, 1) for r in model.predict(rows))


def test_a_fast_path_that_differs_from_the_pipeline_is_not_used(model_store, settings, tmp_path, monkeypatch):
    from gitops_ml.serving import fast_path

    original = fast_path.CompiledPipeline.predict_proba
    monkeypatch.setattr(
        fast_path.CompiledPipeline, "predict_proba", lambda self, records: original(self, records) * 0.999
    )
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check()
    assert holder.current.compiled is None
    assert "probabilities differ from the pipeline's" in holder.current.serving_path


def test_a_pointer_edited_by_hand_to_a_version_not_in_history_is_refused(model_store, settings, tmp_path):
    """The attack: a hand-edited pointer naming a version promotion never recorded."""
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check()
    model_store.point_to("v2", record=False)
    assert holder.check() is False
    assert holder.current.version == "v1"
    assert "version v2 of the pointer is not in the history" in holder.reload_error
    fresh = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache2")
    assert fresh.check() is False and fresh.current is None
    assert "not in the history" in fresh.not_ready_reason


def test_a_pointer_whose_sha256_differs_from_history_is_refused(model_store, settings, tmp_path):
    from gitops_ml.registry.artifacts import save_model
    from gitops_ml.registry.pointer import ProductionPointer, write_pointer
    from tests.serving.conftest import artifact_metadata

    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check()
    # Same version name, other (valid, signed-by-sha) bytes: the pointer's sha256 matches the file
    # but not what promotion recorded.
    other = save_model(model_store.pipelines["v2"], tmp_path / "evil" / "v1", artifact_metadata("v1"))
    write_pointer(
        model_store.pointer_path,
        ProductionPointer(version="v1", artifact_uri=str(other.model_path), sha256=other.sha256),
    )
    assert holder.check() is False
    assert holder.current.pointer.artifact_uri != str(other.model_path)
    assert "in the history with sha256" in holder.reload_error


def test_prediction_follows_the_stored_threshold_and_score_stays_the_probability(
    model_store, settings, tmp_path
):
    from dataclasses import replace

    from gitops_ml.evaluation.decision import DecisionRule
    from gitops_ml.registry.artifacts import save_model
    from tests.serving.conftest import artifact_metadata

    rule = DecisionRule(kind="threshold", threshold=0.2, positive_label=1)
    info = artifact_metadata("v-cost").model_copy(update={"decision": rule})
    save_model(model_store.pipelines["v1"], model_store.root / "v-cost", info)
    model_store.point_to("v-cost")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check() is True and holder.current.version == "v-cost"
    records = records_of(synth_churn(300, seed=5))
    served = holder.current
    for model in (served, replace(served, compiled=None)):  # the fast path and the pipeline alike
        outputs = model.predict(records)
        scores = [o["score"] for o in outputs]
        assert [o["prediction"] for o in outputs] == [int(s >= 0.2) for s in scores]
        assert any(0.2 <= s < 0.5 for s in scores)  # rows the default 0.5 would decide negative
    from gitops_ml.serving.routes import decision_info

    shown = decision_info(served)  # what /model says decides `prediction`
    assert shown is not None and shown["kind"] == "threshold" and shown["threshold"] == 0.2
    assert shown["text"].startswith("P(1) >= 0.200")
    plain = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache2")
    model_store.point_to("v1")
    assert plain.check() is True
    assert decision_info(plain.current) == {"kind": "most_probable", "text": "the most probable class"}
    assert [o["prediction"] for o in plain.current.predict(records)] == [
        int(s > 0.5) for s in (o["score"] for o in plain.current.predict(records))
    ]


def test_json_inputs_equal_pydantic_json_dump(model_store, settings, tmp_path):
    # the request path reads validated values from the instances instead of dumping them: it must
    # give exactly what model_dump(mode="json") gives, dates and ints-for-floats included
    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check() is True
    served = holder.current
    assert served is not None
    rows = records_of(synth_churn(20, seed=3))
    rows[1] = {**rows[1], "signup_date": "2025-02-03", "customer_id": "CUST-0000042"}
    rows[2] = {**rows[2], "snapshot_date": "2026-03-01", "request_id": "abc"}
    rows[3] = {
        **rows[3],
        **{k: int(v) for k, v in rows[3].items() if isinstance(v, float) and v.is_integer()},
    }
    validated = served.batch_adapter.validate_python(rows)
    expected = served.batch_adapter.dump_python(validated, mode="json", exclude={"__all__": {"request_id"}})
    got = served.json_inputs(validated)
    assert got == expected
    assert [list(g) for g in got] == [list(e) for e in expected]  # same key order too
    assert isinstance(got[1]["signup_date"], str) and all("request_id" not in g for g in got)


def test_a_batch_checked_by_column_is_scored_as_record_by_record(model_store, settings, tmp_path):
    from dataclasses import replace

    model_store.point_to("v1")
    holder = ModelHolder(model_store.pointer_path, settings, cache_dir=tmp_path / "cache")
    assert holder.check() is True
    served = holder.current
    assert served is not None and served.batch_validator is not None and served.compiled is not None
    rows = records_of(synth_churn(30, seed=4))
    rows[0] = {**rows[0], "total_charges": None}  # a null where the contract allows one
    checked = served.batch_validator.validate(rows)
    assert checked is not None
    by_record = served.json_inputs(served.batch_adapter.validate_python(rows))
    assert list(checked.records) == by_record
    pd.testing.assert_frame_equal(served._frame(checked.records), served._frame(by_record))
    assert served.predict(checked.records) == served.predict(by_record)
    sklearn_only = replace(served, compiled=None)  # the fallback reads the columns into its frame
    assert sklearn_only.predict(checked.records) == sklearn_only.predict(by_record)
