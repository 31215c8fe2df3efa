"""The prediction scheduler: small requests merged on the event loop, big ones in predict threads.

Unit tests drive `PredictionScheduler` with a stand-in model (no HTTP); the last test sends
concurrent batch requests to a real uvicorn server."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from gitops_ml.serving import scheduler as scheduler_module
from gitops_ml.serving.scheduler import ENV_WORKERS, PredictionScheduler, predict_threads
from tests.serving.conftest import records_of, synth_churn


class _FakeModel:
    """Fails a whole call if any record is marked bad; optionally waits at a barrier inside predict
    (a call that reaches it alone, with no second call in another thread, breaks it)."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.barrier = barrier

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(len(records))
        self.threads.add(threading.current_thread().name)
        if self.barrier is not None:
            self.barrier.wait()
        if any(r.get("bad") for r in records):
            raise ValueError("cannot score a bad record")
        return [{"prediction": r["x"], "score": float(r["x"]), "probabilities": None} for r in records]


def _rows(start: int, n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"x": start + i, **extra} for i in range(n)]


def test_small_requests_are_merged_on_the_event_loop_and_a_failing_one_is_isolated():
    async def scenario() -> tuple[list[Any], _FakeModel]:
        model = _FakeModel()
        scheduler = PredictionScheduler(max_rows=100, inline_max_rows=20)
        scheduler.start()
        jobs = [scheduler.predict(model, [{"x": i}, {"x": i + 100}]) for i in range(5)]
        jobs.append(scheduler.predict(model, [{"x": -1, "bad": True}]))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await scheduler.stop()
        return results, model

    results, model = asyncio.run(scenario())
    for i in range(5):
        assert [r["prediction"] for r in results[i]] == [i, i + 100]
    assert isinstance(results[5], ValueError)
    assert model.calls[0] == 11  # all six requests were merged into one call first
    assert len(model.calls) == 1 + 6  # then retried one by one after that call failed
    assert model.threads == {threading.main_thread().name}  # inline: on the event loop's thread


def test_big_requests_are_predicted_at_the_same_time_in_predict_threads():
    # Both calls must be inside predict at once to pass the barrier; one thread (or calls run one
    # after the other) leaves the first waiting alone until the barrier's guard breaks it.
    async def scenario() -> tuple[list[Any], _FakeModel]:
        model = _FakeModel(threading.Barrier(2, timeout=30))
        scheduler = PredictionScheduler(inline_max_rows=10, threads=2)
        scheduler.start()
        results = await asyncio.gather(
            scheduler.predict(model, _rows(0, 50)), scheduler.predict(model, _rows(1000, 60))
        )
        await scheduler.stop()
        return results, model

    results, model = asyncio.run(scenario())
    assert [r["prediction"] for r in results[0]] == list(range(50))
    assert [r["prediction"] for r in results[1]] == list(range(1000, 1060))
    assert sorted(model.calls) == [50, 60]  # big requests are not merged
    assert threading.main_thread().name not in model.threads and len(model.threads) == 2


def test_a_failing_big_call_fails_only_its_own_request():
    async def scenario() -> list[Any]:
        model = _FakeModel(threading.Barrier(3, timeout=30))
        scheduler = PredictionScheduler(inline_max_rows=10, threads=3)
        scheduler.start()
        results = await asyncio.gather(
            scheduler.predict(model, _rows(0, 30)),
            scheduler.predict(model, _rows(100, 30, bad=True)),
            scheduler.predict(model, _rows(200, 30)),
            return_exceptions=True,
        )
        await scheduler.stop()
        return results

    first, bad, last = asyncio.run(scenario())
    assert [r["prediction"] for r in first] == list(range(30))
    assert isinstance(bad, ValueError) and "bad record" in str(bad)
    assert [r["prediction"] for r in last] == list(range(200, 230))


def test_a_cancelled_request_does_not_disturb_the_others_and_stop_drains():
    async def scenario() -> tuple[list[Any], _FakeModel]:
        model = _FakeModel()
        scheduler = PredictionScheduler(inline_max_rows=10, threads=1)
        scheduler.start()
        gone = asyncio.ensure_future(scheduler.predict(model, _rows(0, 40)))
        kept = [
            asyncio.ensure_future(scheduler.predict(model, _rows(k * 100, n))) for k, n in ((1, 40), (2, 3))
        ]
        await asyncio.sleep(0)  # all three are queued
        gone.cancel()  # the client went away
        await scheduler.stop()  # right away: what is queued or running is still scored
        assert all(task.done() for task in kept)
        return [task.result() for task in kept], model

    results, model = asyncio.run(scenario())
    assert [r["prediction"] for r in results[0]] == list(range(100, 140))
    assert [r["prediction"] for r in results[1]] == [200, 201, 202]
    assert sorted(model.calls) == [3, 40, 40]


def test_predict_threads_share_the_cores_among_serve_workers(monkeypatch):
    monkeypatch.setattr(scheduler_module.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv(ENV_WORKERS, raising=False)
    assert predict_threads() == 4
    monkeypatch.setenv(ENV_WORKERS, "2")
    assert predict_threads() == 2
    monkeypatch.setenv(ENV_WORKERS, "8")
    assert predict_threads() == 1  # at least one


@pytest.fixture(scope="module")
def batch_records() -> list[dict]:
    return records_of(synth_churn(1200, seed=11))


def test_concurrent_batch_requests_each_get_their_own_predictions_and_are_logged_once(
    own_server, batch_records, trained, settings
):
    """Batch requests bigger than the inline threshold, from 4 clients at once, over real HTTP."""
    from tests.serving.test_app import expected_scores

    assert scheduler_module.INLINE_MAX_ROWS < 300
    expected = expected_scores(trained["v1"], settings, batch_records)
    sizes = [300, 400, 500]  # 1200 rows, in 3 slices (all over the inline threshold), from 4 clients each
    starts = np.cumsum([0, *sizes[:-1]])
    failures: list[str] = []
    got: dict[str, float] = {}

    def client(k: int) -> None:
        with httpx.Client(base_url=own_server.url, timeout=60) as http:
            for s, (start, size) in enumerate(zip(starts, sizes, strict=True)):
                ids = [f"b{k}-{s}-{i}" for i in range(size)]
                body = {
                    "records": [
                        {**r, "request_id": rid}
                        for r, rid in zip(batch_records[start : start + size], ids, strict=True)
                    ]
                }
                response = http.post("/predict", json=body)
                if response.status_code != 200:
                    failures.append(response.text)
                    continue
                predictions = response.json()["predictions"]
                if [p["request_id"] for p in predictions] != ids:
                    failures.append(f"client {k} slice {s}: request ids out of order")
                for i, p in enumerate(predictions):
                    got[f"{k}:{start + i}"] = p["score"]

    clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert failures == []
    for k in range(4):
        np.testing.assert_allclose([got[f"{k}:{i}"] for i in range(len(batch_records))], expected, rtol=1e-9)
    own_server.flush()
    engine = sa.create_engine(f"sqlite:///{own_server.db_path}")
    with engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*), count(DISTINCT request_id) FROM predictions").one()
    engine.dispose()
    assert tuple(total) == (4 * len(batch_records), 4 * len(batch_records))
    assert own_server.client.get("/ready").json()["prediction_log"]["served"] == 4 * len(batch_records)
