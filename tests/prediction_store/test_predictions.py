"""PredictionStore and BatchingLogger on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from gitops_ml.prediction_store import BatchingLogger, PredictionStore, coerce_label

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(i: int, *, at: datetime = T0, version: str = "v1", **inputs) -> dict:
    return {
        "request_id": f"r-{i}",
        "created_at": at,
        "model_version": version,
        "inputs": {"tenure_months": i, "plan": "basic", "usage_minutes": None, **inputs},
        "output": {"prediction": i % 2, "probabilities": {"0": 0.3, "1": 0.7}},
        "score": 0.7,
        "prediction": i % 2,
        "latency_ms": 1.5,
    }


def test_log_many_and_window_expand_inputs_and_join_labels(store):
    store.log_many([record(i, at=T0 + timedelta(hours=i)) for i in range(5)])
    assert store.add_labels([("r-1", 1), ("r-3", 0)]) == (2, 0)
    frame = store.window(T0 + timedelta(hours=1), T0 + timedelta(hours=4))  # [start, end)
    assert frame["request_id"].tolist() == ["r-1", "r-2", "r-3"]
    assert frame["tenure_months"].tolist() == [1, 2, 3]
    assert frame["plan"].tolist() == ["basic"] * 3
    assert frame["usage_minutes"].isna().all()
    assert frame["score"].tolist() == [0.7] * 3
    assert frame["label"].iloc[0] == 1 and frame["label"].isna().iloc[1] and frame["label"].iloc[2] == 0
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["created_at"].iloc[0] == T0 + timedelta(hours=1)


def test_window_accepts_naive_utc_and_returns_empty_frame(store):
    store.log_many([record(0)])
    assert len(store.window(T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(seconds=1))) == 1
    empty = store.window(T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert len(empty) == 0 and {"request_id", "score", "label"} <= set(empty.columns)


def test_labels_count_matched_and_unknown_and_replace(store):
    store.log_many([record(i) for i in range(3)])
    assert store.add_labels([("r-0", 1), ("r-1", 0), ("ghost", 1), ("ghost", 0)]) == (2, 1)
    assert store.add_labels([("r-0", 0)]) == (1, 0)  # a correction replaces the label
    labels = store.window().set_index("request_id")["label"]
    assert labels["r-0"] == 0 and labels["r-1"] == 0 and labels.isna()["r-2"]


def test_duplicate_request_id_is_skipped_not_fatal(store):
    store.log_many([record(0)])
    store.log_many([record(0, version="v2"), record(1)])
    frame = store.window().set_index("request_id")
    assert len(frame) == 2 and frame.loc["r-0", "model_version"] == "v1"


def test_log_many_rejects_a_record_without_inputs(store):
    with pytest.raises(ValueError, match="inputs"):
        store.log_many([{"request_id": "x", "model_version": "v1"}])


def test_monitor_runs_newest_first_and_retrain_prs(store):
    for i in range(3):
        store.add_monitor_run(
            {
                "window_start": T0 + timedelta(days=i),
                "window_end": T0 + timedelta(days=i + 1),
                "drifted": ["plan"],
                "bad": i == 2,
            }
        )
    runs = store.monitor_runs(limit=2)
    assert [r["payload"]["bad"] for r in runs] == [True, False]
    assert runs[0]["window_start"] == T0 + timedelta(days=2)
    assert runs[0]["payload"]["window_start"] == (T0 + timedelta(days=2)).isoformat()
    assert store.last_retrain_pr() is None
    store.add_retrain_pr(branch="retrain/a", pr_number=7, url="http://x/7", action="opened")
    store.add_retrain_pr(branch="retrain/a", pr_number=7, url="http://x/7", action="updated")
    last = store.last_retrain_pr()
    assert last["action"] == "updated" and last["pr_number"] == 7 and last["created_at"].tzinfo is not None


def test_batching_logger_loses_nothing_under_concurrency(store):
    batches: list[int] = []
    original = store.log_many

    def spy(records):
        records = list(records)
        batches.append(len(records))
        return original(records)

    store.log_many = spy  # type: ignore[method-assign]
    logger = BatchingLogger(store, batch_size=64, flush_interval_s=0.05).start()
    threads, per_thread = 8, 150

    def produce(worker: int) -> None:
        for i in range(per_thread):
            logger.log(record(worker * 10_000 + i))

    workers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert logger.flush()
    assert store.count_predictions() == threads * per_thread
    assert sum(batches) == threads * per_thread and max(batches) <= 64
    logger.log_many([record(99_999_0 + i) for i in range(10)])
    logger.close()  # close writes what is still queued
    assert store.count_predictions() == threads * per_thread + 10


def test_batching_logger_retries_an_unavailable_database(store):
    failures = {"left": 2}
    original = store.log_many

    def flaky(records):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return original(records)

    store.log_many = flaky  # type: ignore[method-assign]
    with BatchingLogger(store, batch_size=10, flush_interval_s=0.01) as logger:
        logger.log_many([record(i) for i in range(5)])
        assert logger.flush()
    assert store.count_predictions() == 5 and failures["left"] == 0


def test_batching_logger_drops_only_the_unstorable_record(store):
    with BatchingLogger(store, batch_size=10, flush_interval_s=0.01) as logger:
        logger.log_many([record(0), {**record(1), "inputs": {"x": object()}}, record(2)])
        assert logger.flush()
    assert store.count_predictions() == 2
    assert logger.dropped == 1 and "r-1" not in set(store.window()["request_id"])


def test_sqlite_uses_wal_and_busy_timeout(tmp_path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    store.dispose()


def test_tables_are_created_once_and_reused(store_url):
    first = PredictionStore(store_url)
    first.log_many([record(0)])
    first.dispose()
    second = PredictionStore(store_url)
    assert second.count_predictions() == 1
    assert set(sa.inspect(second.engine).get_table_names()) >= {
        "predictions",
        "labels",
        "monitor_runs",
        "retrain_prs",
    }
    second.dispose()


@pytest.mark.parametrize(
    ("value", "task", "expected"),
    [
        ("1", "binary", 1),
        (1, "binary", 1),
        (1.0, "binary", 1),
        ("yes", "binary", "yes"),
        ("2.5", "regression", 2.5),
        (True, "binary", 1),
    ],
)
def test_coerce_label(value, task, expected):
    assert coerce_label(value, task) == expected


@pytest.mark.parametrize(
    ("value", "task"),
    [("", "binary"), (None, "binary"), ("abc", "regression"), (1.5, "binary"), ([1], "binary")],
)
def test_coerce_label_rejects(value, task):
    with pytest.raises(ValueError):
        coerce_label(value, task)


def test_columnar_rows_store_exactly_what_the_same_records_store(store, tmp_path):
    # the serving path logs PredictionRows/ShadowRows (no dict per row); the stored rows must be
    # the ones log_many/log_shadow_many store for the same records, read back by window and paired
    from gitops_ml.prediction_store.codecs import PredictionRows, ShadowRows

    records = [record(i, at=T0 + timedelta(seconds=i // 2)) for i in range(6)]
    outputs = [{**r["output"], "score": 0.7, "prediction": r["prediction"]} for r in records]
    for r, out in zip(records, outputs, strict=True):
        r["output"] = out
    rows = PredictionRows(
        [f"c-{i}" for i in range(6)],
        [r["created_at"] for r in records],
        ["v1"] * 6,
        ["production"] * 6,
        [r["inputs"] for r in records],
        outputs,
        [1.5] * 6,
    )
    assert len(rows) == 6 and rows[2]["inputs"] == records[2]["inputs"]
    assert store.log_many(rows) == 6
    store.log_many(records)
    frame = store.window()
    columnar = (
        frame[frame["request_id"].str.startswith("c-")].drop(columns="request_id").reset_index(drop=True)
    )
    plain = frame[frame["request_id"].str.startswith("r-")].drop(columns="request_id").reset_index(drop=True)
    assert columnar.equals(plain)
    shadow = ShadowRows(
        [f"c-{i}" for i in range(6)],
        ["challenger"] * 6,
        [r["created_at"] for r in records],
        ["v2"] * 6,
        [{**o, "score": 0.4} for o in outputs],
        [2.0] * 6,
    )
    assert store.log_shadow_many(shadow) == 6
    paired = store.paired()
    assert list(paired["request_id"]) == [f"c-{i}" for i in range(6)]
    assert list(paired["challenger_score"]) == [0.4] * 6 and list(paired["production_score"]) == [0.7] * 6


def test_batching_logger_writes_columnar_rows_and_counts_them(store):
    from gitops_ml.prediction_store.codecs import PredictionRows

    with BatchingLogger(store, batch_size=8, flush_interval_s=0.01) as logger:
        for k in range(5):
            n = 3 + k
            logger.log_rows(
                PredictionRows(
                    [f"q{k}-{i}" for i in range(n)],
                    [T0] * n,
                    ["v1"] * n,
                    ["production"] * n,
                    [{"x": i} for i in range(n)],
                    [{"prediction": 1, "score": 0.5, "probabilities": None}] * n,
                    [1.0] * n,
                )
            )
        assert logger.flush()
    assert store.count_predictions() == logger.written == sum(3 + k for k in range(5))


def test_stores_opening_a_new_database_at_once_all_open_it(store_url):
    """`serve --workers N` on a fresh store: every worker creates the tables at the same moment
    (each store here has its own engine and connections, as a process would)."""
    start = threading.Barrier(8)

    def open_store() -> int:
        start.wait()
        opened = PredictionStore(store_url)
        try:
            return opened.count_predictions()
        finally:
            opened.dispose()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda _: open_store(), range(8))) == [0] * 8
