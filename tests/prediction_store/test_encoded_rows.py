"""The log worker's frames (`encode_rows` on the server, `EncodedRows.decode` in the worker) store
exactly what the serving path's `PredictionRows` store: the same JSON text, the same SQLite types."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from gitops_ml.prediction_store import BatchingLogger, PredictionStore
from gitops_ml.prediction_store.codecs import EncodedRows, JsonRows, PredictionRows, encode_rows
from gitops_ml.record_columns import ModelAnswers, RecordColumns

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# values that take every branch: `},{` and a newline inside strings and a list of objects (the
# exact fallback split), numpy scalars, NaN, a non-str key, a datetime, escapes and non-ASCII text
AWKWARD_INPUTS = [
    {"plan": "basic", "s": "x},{y", "n": None, "f": 1e-7, "big": 2**63, "neg": -0.0},
    {},
    {"u": 'é\n"\\', "np": np.float32(0.1), "i": np.int64(7), "nan": float("nan"), 1: "int key"},
    {"when": T0, "nested": [{"a": 1}, {"b": 2}], "t": (1, 2)},
]
AWKWARD_OUTPUTS = [
    {"prediction": "yes, sir", "score": np.float32(0.73), "probabilities": {"0": 0.27}},
    {"prediction": None, "score": float("inf"), "probabilities": None},
    {"prediction": 3, "score": 2, "probabilities": None},
    {"prediction": np.int64(1), "score": 0.5, "probabilities": {"0": 0.5, "1": 0.5}},
]


def rows_of(prefix: str, inputs: list[dict], outputs: list[dict], at: datetime = T0) -> PredictionRows:
    n = len(inputs)
    return PredictionRows(
        [f"{prefix}-{i}" for i in range(n)],
        [at] * n,
        ["v1"] * n,
        ["production", "challenger"] * (n // 2) + ["production"] * (n % 2),
        inputs,
        outputs,
        [1.5] * (n - 1) + [None],
    )


def plain(n: int) -> tuple[list[dict], list[dict]]:
    scores = np.random.default_rng(0).random(n)
    return (
        [{"tenure_months": i, "plan": "basic", "usage_minutes": 1.25 * i} for i in range(n)],
        [
            {"prediction": int(s > 0.5), "score": float(s), "probabilities": {"0": 1 - s, "1": float(s)}}
            for s in scores
        ],
    )


def by_column(records: list[dict]) -> RecordColumns:
    names = tuple(records[0])
    return RecordColumns(names, tuple([r[name] for r in records] for name in names))


def answers_of(outputs: list[dict]) -> ModelAnswers:
    return ModelAnswers(
        [o["prediction"] for o in outputs],
        [o["score"] for o in outputs],
        ("0", "1"),
        [[o["probabilities"]["0"], o["probabilities"]["1"]] for o in outputs],
    )


def through_a_frame(rows: PredictionRows) -> JsonRows:
    encoded = encode_rows(rows)
    assert isinstance(encoded, EncodedRows)
    decoded = pickle.loads(pickle.dumps(encoded, protocol=pickle.HIGHEST_PROTOCOL)).decode()
    assert isinstance(decoded, JsonRows)
    return decoded


def stored(store: PredictionStore, prefix: str) -> list[tuple]:
    """The raw SQLite values (their Python types are SQLite's storage classes), prefix cut off."""
    with store.engine.connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT * FROM predictions WHERE request_id LIKE ? ORDER BY request_id", (f"{prefix}-%",)
        )
        return [(r[0].split("-", 1)[1], *r[1:]) for r in result]


def test_a_frame_stores_byte_for_byte_what_the_rows_store(tmp_path: Path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    inputs, outputs = plain(50)
    later = T0 + timedelta(seconds=1)
    cases = {
        "awkward": (AWKWARD_INPUTS, AWKWARD_OUTPUTS, T0),
        "plain": (inputs, outputs, later),
        # no None among them, so one encoder call, unless a text holds a comma
        "labels": (inputs[:3], [{"prediction": p, "score": 0.5} for p in ("a,b", "c", [1, 2])], T0),
        "label": (inputs[:2], [{"prediction": p, "score": 0.5} for p in ("a", 2.5)], T0),
        # a batch's inputs held by column: they cross pickled and the worker encodes them
        "columns": (by_column(inputs), outputs, later),
        # and a model's answers by column, as a batch's are logged
        "answers": (by_column(inputs), answers_of(outputs), later),
        "answers_only": (inputs, answers_of(outputs), T0),
        "regression": (inputs[:3], ModelAnswers([1.5, np.float32(2.5), 3.0], [1.5, float("nan"), None]), T0),
    }
    for name, (ins, outs, at) in cases.items():
        store.log_many(rows_of(f"{name}_rows", ins, outs, at))
        store.log_many(through_a_frame(rows_of(f"{name}_frame", ins, outs, at)))
        store.log_many(list(rows_of(f"{name}_records", ins, outs, at)))  # the per-record path
        expected = stored(store, f"{name}_rows")
        assert len(expected) == len(ins)
        for path in ("frame", "records"):
            got = stored(store, f"{name}_{path}")
            assert got == expected and [list(map(type, r)) for r in got] == [
                list(map(type, r)) for r in expected
            ]
    # a frame of two requests at their own times, concatenated as the worker does
    for path in ("rows", "frame"):
        first = rows_of(f"cat_{path}", inputs[:3], outputs[:3], T0)
        second = rows_of(f"cat_{path}", inputs[3:6], outputs[3:6], later)
        second = replace(second, request_ids=[f"cat_{path}-{i + 3}" for i in range(3)])
        if path == "rows":
            store.log_many(PredictionRows.concat([first, second]))
        else:
            store.log_many(JsonRows.concat([through_a_frame(first), through_a_frame(second)]))
    concatenated = stored(store, "cat_frame")
    assert concatenated == stored(store, "cat_rows") and len({r[1] for r in concatenated}) == 2
    store.dispose()


def test_json_text_is_what_was_served(tmp_path: Path):
    # read back through the store's own reader: the values the caller was served
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    store.log_many(through_a_frame(rows_of("f", AWKWARD_INPUTS, AWKWARD_OUTPUTS)))
    frame = store.window().set_index("request_id")
    assert frame.loc["f-0", "s"] == "x},{y" and frame.loc["f-2", "u"] == 'é\n"\\'
    assert frame.loc["f-3", "nested"] == [{"a": 1}, {"b": 2}] and frame.loc["f-3", "when"] == T0.isoformat()
    assert frame.loc["f-0", "big"] == 2**63 and math.isnan(frame.loc["f-1", "score"])  # inf -> NULL
    assert (
        frame.loc["f-0", "score"] == float(np.float32(0.73)) and frame.loc["f-0", "prediction"] == "yes, sir"
    )
    store.dispose()


def test_the_backends_read_back_a_frame_as_the_rows(store):
    # SQLite and PostgreSQL (the worker writes either): window() of a frame equals that of the rows
    inputs, outputs = plain(20)
    store.log_many(rows_of("a", inputs, outputs))
    store.log_many(through_a_frame(rows_of("b", inputs, outputs)))
    frame = store.window()
    a = frame[frame["request_id"].str.startswith("a-")].drop(columns="request_id").reset_index(drop=True)
    b = frame[frame["request_id"].str.startswith("b-")].drop(columns="request_id").reset_index(drop=True)
    assert len(a) == 20 and a.equals(b)


def test_rows_that_do_not_encode_travel_as_they_are():
    rows = rows_of("x", [{"a": object()}], [{"prediction": 1, "score": 0.5}])
    assert encode_rows(rows) is rows  # the worker stores or drops each such row on its own
    assert isinstance(encode_rows(rows_of("y", [{"a": 1}], [{"prediction": 1}])), EncodedRows)


def test_inputs_by_column_that_do_not_encode_are_stored_or_dropped_row_by_row(tmp_path: Path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    outputs = [{"prediction": 1, "score": np.float32(0.3), "probabilities": None} for _ in range(3)]
    inputs = RecordColumns(("a",), ([1, object(), 3],))
    encoded = encode_rows(rows_of("bad", inputs, outputs))  # by column: the server does not encode them
    assert isinstance(encoded, EncodedRows)
    decoded = encoded.decode()
    assert isinstance(decoded, PredictionRows)
    with BatchingLogger(store, batch_size=8, flush_interval_s=0.01) as logger:
        logger.log_rows(decoded)
        assert logger.flush()
    assert (logger.written, logger.dropped) == (2, 1)
    store.log_many(rows_of("good", RecordColumns(("a",), ([1, 2, 3],)), outputs)[0:1])
    bad, good = stored(store, "bad"), stored(store, "good")
    assert len(bad) == 2 and bad[0][1:] == good[0][1:]  # the score the sender had, not JSON's float32
    store.dispose()


def test_an_unused_index_is_dropped_from_an_older_store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE predictions (request_id VARCHAR(128) PRIMARY KEY, created_at DATETIME NOT NULL,"
            " model_version VARCHAR(128) NOT NULL, inputs JSON NOT NULL, output JSON NOT NULL, score FLOAT,"
            " prediction JSON, latency_ms FLOAT, role VARCHAR(16) NOT NULL DEFAULT 'production')"
        )
        conn.exec_driver_sql("CREATE INDEX ix_predictions_created_at ON predictions (created_at)")
        conn.exec_driver_sql("CREATE INDEX ix_predictions_model_version ON predictions (model_version)")
        conn.exec_driver_sql(
            "INSERT INTO predictions VALUES ('old', '2026-03-01 12:00:00.000000', 'v0', '{}', '{}', 0.5, '1', 1.0,"
            " 'production')"
        )
    engine.dispose()
    store = PredictionStore(url)
    names = {i["name"] for i in sa.inspect(store.engine).get_indexes("predictions")}
    assert names == {"ix_predictions_created_at"} and store.count_predictions() == 1
    PredictionStore(url).dispose()  # a second open finds it done
    store.dispose()
