"""The prediction log worker: a real child process writing a real SQLite store, shadow models loaded
in it through the checked loader, and a worker killed under a running server."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gitops_ml.prediction_store import PredictionStore
from gitops_ml.prediction_store.codecs import PredictionRows
from gitops_ml.registry.pointer import ProductionPointer
from gitops_ml.serving.log_worker import LogWorker, LogWorkerError, ShadowOrder, WorkerConfig
from tests.serving.conftest import make_settings, records_of, synth_churn

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def rows(prefix: str, n: int, inputs: list[dict] | None = None) -> PredictionRows:
    inputs = inputs if inputs is not None else [{"x": i} for i in range(n)]
    return PredictionRows(
        [f"{prefix}-{i}" for i in range(n)],
        [NOW] * n,
        ["v1"] * n,
        ["production"] * n,
        inputs,
        [{"prediction": 1, "score": 0.25, "probabilities": None}] * n,
        [1.5] * n,
    )


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    PredictionStore(url).dispose()  # the server creates the tables before it starts the worker
    return url


def worker(url: str, tmp_path: Path) -> LogWorker:
    return LogWorker(WorkerConfig(url, make_settings(), tmp_path / "cache", 16, 0.05)).start()


def count(url: str) -> tuple[int, int]:
    store = PredictionStore(url, create=False)
    try:
        return store.count_predictions(), store.count_shadow_predictions()
    finally:
        store.dispose()


def test_what_is_logged_is_written_exactly_and_close_writes_the_rest(store_url, tmp_path):
    logger = worker(store_url, tmp_path)
    assert logger.pid is not None and logger.pid != os.getpid()
    for k in range(50):
        logger.log_rows(rows(f"a{k}", 7))
    assert logger.flush(timeout=30)
    assert logger.written == 350 and count(store_url) == (350, 0)
    for k in range(30):
        logger.log_rows(rows(f"b{k}", 3))
    logger.close()  # no flush: close itself sends, writes and waits
    assert logger.written == 440 and logger.dropped == 0 and count(store_url) == (440, 0)


def stored_rows(url: str) -> list[tuple]:
    store = PredictionStore(url, create=False)
    try:
        with store.engine.connect() as conn:
            return list(conn.exec_driver_sql("SELECT * FROM predictions ORDER BY request_id"))
    finally:
        store.dispose()


def test_the_worker_stores_exactly_what_the_store_itself_stores(store_url, tmp_path):
    # frames cross the pipe as JSON text (`encode_rows`); what the worker writes must be, byte for
    # byte and type for type, what `log_many` writes in this process for the same rows
    served = records_of(synth_churn(40))
    awkward = [{"s": "a},{b\n", "f": np.float32(0.1), "nan": float("nan"), "when": NOW, "l": [{"a": 1}]}]
    requests = [
        rows("churn", 40, served),
        rows("awkward", 1, awkward),
        PredictionRows(
            ["labels-0", "labels-1"],
            [NOW] * 2,
            ["v1"] * 2,
            ["challenger"] * 2,
            [{}, {"x": 1}],
            [{"prediction": "a,b", "score": np.float32(0.3)}, {"prediction": None, "score": None}],
            [None, 2.0],
        ),
    ]
    logger = worker(store_url, tmp_path)
    for request in requests:
        logger.log_rows(request)
    logger.close()
    assert logger.written == 43 and logger.dropped == 0
    direct = f"sqlite:///{tmp_path / 'direct.db'}"
    store = PredictionStore(direct)
    for request in requests:
        store.log_many(request)
    store.dispose()
    got, want = stored_rows(store_url), stored_rows(direct)
    assert len(got) == 43 and got == want
    assert [list(map(type, r)) for r in got] == [list(map(type, r)) for r in want]


def killed(pid: int) -> None:
    """SIGKILL `pid` and wait until it is gone (a zombie at most): the signal arrives asynchronously,
    and rows sent to a worker not yet dead would reach it and be lost (counted, but not the test)."""
    os.kill(pid, signal.SIGKILL)
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 30
    while stat.exists():
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        assert time.monotonic() < deadline, f"pid {pid} still alive after SIGKILL"
        time.sleep(0.01)


def test_a_killed_worker_is_replaced_and_says_what_it_lost(store_url, tmp_path):
    logger = worker(store_url, tmp_path)
    logger.log_rows(rows("before", 5))
    assert logger.flush(timeout=30)
    first = logger.pid
    assert first is not None
    killed(first)
    # the feeder notices a dead worker within half a second when idle; rows logged at the moment
    # of death may reach the dying one and be lost (counted: the served-server test below)
    deadline = time.monotonic() + 60
    while logger.restarts < 1:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.05)
    logger.log_rows(rows("after", 4))  # sent to the new worker
    assert logger.flush(timeout=60)
    assert logger.restarts == 1 and logger.pid not in (None, first)
    assert f"pid {first}) exited with code -9" in (logger.last_error or "")
    assert logger.written == 9 and logger.dropped == 0
    logger.close()
    assert count(store_url) == (9, 0)


def test_rows_that_cannot_reach_the_worker_are_counted_and_logging_goes_on(store_url, tmp_path):
    logger = worker(store_url, tmp_path)
    logger.log_rows(rows("bad", 2, [{"x": threading.Lock()}, {"x": 1}]))  # a lock does not pickle
    assert logger.flush(timeout=30)
    logger.log_rows(rows("good", 3))
    logger.close()
    assert logger.dropped == 2 and logger.written == 3 and count(store_url) == (3, 0)
    assert "2 rows not sent to the worker" in (logger.last_error or "")


def test_ctrl_c_to_the_process_group_does_not_stop_the_worker(store_url, tmp_path):
    logger = worker(store_url, tmp_path)
    assert logger.pid is not None
    os.kill(logger.pid, signal.SIGINT)
    os.kill(logger.pid, signal.SIGTERM)
    logger.log_rows(rows("late", 6))
    logger.close()  # the server stops it, after the last rows
    assert logger.restarts == 0 and count(store_url) == (6, 0)


def test_a_store_the_worker_cannot_open_fails_its_start_with_the_reason(tmp_path):
    with pytest.raises(LogWorkerError, match="could not start: .*nosuchdb"):
        worker("nosuchdb://nowhere", tmp_path)


def test_the_worker_loads_the_shadow_model_itself_and_checks_its_sha256(
    store_url, tmp_path, model_store, trained, settings
):
    from gitops_ml.registry.production import load_pointed_model
    from gitops_ml.serving.model_holder import serve_model

    info = model_store.publish("v2")
    good = ProductionPointer(**info)
    tampered = ProductionPointer(**{**info, "version": "v2-bad", "sha256": "0" * 64})
    records = records_of(synth_churn(12, seed=5))
    logger = worker(store_url, tmp_path)
    logger.log_rows(
        rows("s", 12, records), [ShadowOrder(logger.model_ref(good), "challenger", tuple(range(12)))]
    )
    logger.log_rows(
        rows("t", 3, records[:3]), [ShadowOrder(logger.model_ref(tampered), "challenger", (0, 2))]
    )
    assert logger.flush(timeout=60)
    counts = logger.counts
    assert counts.written == 15 and counts.shadow_scored == 12 == counts.shadow_written
    assert counts.shadow_failed == 2 and "sha256" in (counts.last_error or "")
    assert logger.shadow_queued == 0
    logger.close()
    store = PredictionStore(store_url, create=False)
    paired = store.paired().set_index("request_id")
    store.dispose()
    expected = serve_model(load_pointed_model(good, tmp_path / "cache"), settings).predict(records)
    shadow = paired.loc[[f"s-{i}" for i in range(12)]]
    assert set(shadow["challenger_version"]) == {"v2"}
    np.testing.assert_allclose(shadow["challenger_score"], [e["score"] for e in expected], atol=1e-12)


def test_shadow_rows_beyond_the_bound_are_refused_and_counted(store_url, tmp_path, model_store):
    info = model_store.publish("v2")
    config = WorkerConfig(store_url, make_settings(), tmp_path / "cache", 16, 0.05, max_shadow_rows=5)
    logger = LogWorker(config).start()
    ref = logger.model_ref(ProductionPointer(**info))
    records = records_of(synth_churn(4, seed=6))
    logger.log_rows(rows("a", 4, records), [ShadowOrder(ref, "challenger", (0, 1, 2, 3))])
    logger.log_rows(rows("b", 4, records), [ShadowOrder(ref, "challenger", (0, 1, 2, 3))])  # 8 > 5
    assert logger.flush(timeout=60)
    counts = logger.counts
    assert counts.written == 8 and counts.shadow_scored == 4 and counts.shadow_dropped == 4
    logger.close()


def test_a_server_whose_worker_is_killed_keeps_answering_and_counts_exactly(model_store, start_server):
    model_store.point_to("v1")
    server = start_server()
    records = records_of(synth_churn(40, seed=8))
    ready = server.client.get("/ready").json()["prediction_log"]
    first = ready["log_worker"]["pid"]
    assert ready["log_worker"]["restarts"] == 0 and first != os.getpid()
    for i, record in enumerate(records[:20]):
        assert server.client.post("/predict", json={**record, "request_id": f"k-{i}"}).status_code == 200
    server.flush()
    os.kill(first, signal.SIGKILL)
    for i, record in enumerate(records[20:], start=20):
        assert server.client.post("/predict", json={**record, "request_id": f"k-{i}"}).status_code == 200
    logger = server.app.state.logger
    # a flush the dying worker had received says False (its rows may be lost); the next one is answered
    assert logger.flush(timeout=60) or logger.flush(timeout=60)
    ready = server.wait_for(lambda r: r.json()["prediction_log"]["log_worker"]["restarts"] == 1).json()
    log_state = ready["prediction_log"]
    assert log_state["log_worker"]["pid"] != first and "exited with code -9" in log_state["last_error"]
    # rows already in the dead worker's pipe are lost, and counted: written + dropped = served, and
    # the store holds exactly what is counted as written (all 20 flushed before the kill among them)
    lost = int(re.search(r"; (\d+) predictions", log_state["last_error"]).group(1))
    assert log_state["dropped"] == lost and log_state["written"] + lost == log_state["served"] == 40
    stored = PredictionStore(f"sqlite:///{server.db_path}", create=False)
    ids = set(stored.window()["request_id"])
    stored.dispose()
    assert len(ids) == log_state["written"] and {f"k-{i}" for i in range(20)} <= ids


def test_the_worker_loads_a_new_challenger_before_its_first_request(model_store, start_server):
    from tests.serving.test_challenger_serving import propose

    model_store.point_to("v1")
    propose(model_store, "v2", mode="canary", fraction=0.5)
    server = start_server()
    # no request yet: the holder's load of the challenger had the worker load both models
    # (canary: production scores the rows the challenger answers)
    ready = server.wait_for(
        lambda r: len(r.json()["prediction_log"]["shadow_models_ready"]) == 2, timeout=120
    )
    assert sorted(ready.json()["prediction_log"]["shadow_models_ready"]) == ["v1", "v2"]
    assert ready.json()["prediction_log"]["served"] == 0
