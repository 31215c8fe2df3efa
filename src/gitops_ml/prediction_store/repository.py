"""The prediction store: every served prediction, the labels that arrive later, and monitor history.

SQLAlchemy 2 Core, so one code path serves SQLite (the embedded default) and PostgreSQL (by URL,
`postgresql+psycopg://...`). Timestamps are stored as naive UTC in both backends and returned as
tz-aware UTC, so a window query means the same thing everywhere. SQLite runs in WAL mode with a
busy timeout, so several writers (the workers of `serve --workers N`, `labels import`) share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from gitops_ml.errors import DataError
from gitops_ml.jsonable import to_jsonable
from gitops_ml.prediction_store.codecs import (
    from_db_time,
    json_dumps,
    normalize_prediction_record,
    sqlite_row,
    to_db_time,
    utc_now,
)
from gitops_ml.prediction_store.schema import (
    PREDICTION_FIELDS,
    labels_table,
    metadata,
    monitor_runs_table,
    predictions_table,
    retrain_prs_table,
)

DEFAULT_URL = "sqlite:///predictions.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (the monitor) never block the writer (the serving app) and vice versa;
    # busy_timeout: a second writer (labels import) waits instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """An Engine for a store URL (credentials as `${ENV_VAR}`s); SQLite gets WAL + busy_timeout on
    every new connection."""
    from gitops_ml.data.sql_url import expand_env

    parsed = sa.make_url(expand_env(url, "prediction store URL"))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise DataError(f"{url}: an in-memory SQLite store cannot be shared across threads; use a file")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, json_serializer=json_dumps
        )
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, json_serializer=json_dumps)


def _insert(engine: Engine, table: sa.Table) -> Any:
    """The dialect's INSERT, which has on_conflict_* (SQLite and PostgreSQL share the API)."""
    name = engine.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise DataError(f"prediction store: unsupported database '{name}' (use SQLite or PostgreSQL)")


_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO predictions ({', '.join(PREDICTION_FIELDS)}) "
    f"VALUES ({', '.join('?' for _ in PREDICTION_FIELDS)})"
)


def _known_ids(conn: sa.Connection, ids: Sequence[str]) -> set[str]:
    """The subset of `ids` that has a logged prediction."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):  # stay far below any bind-parameter limit
        chunk = ids[start : start + 500]
        found.update(
            conn.execute(
                sa.select(predictions_table.c.request_id).where(predictions_table.c.request_id.in_(chunk))
            ).scalars()
        )
    return found


class PredictionStore:
    """Predictions, labels, monitor runs and retraining PRs in one database.

    Tables are created on first use (idempotent), so pointing the app at a new URL just works.
    """

    def __init__(self, url: str = DEFAULT_URL, *, create: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if create:
            metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- predictions -------------------------------------------------------------------------

    def log_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Insert prediction records in one transaction; returns how many rows were given.

        Each record: request_id, model_version, inputs (dict) required; created_at (default now),
        output (dict), score, prediction, latency_ms optional. A request_id already stored is
        skipped (a client retrying the same id must not fail the whole batch).
        """
        if self.engine.dialect.name == "sqlite":
            return self._log_many_sqlite(records)
        rows = [normalize_prediction_record(r) for r in records]
        if not rows:
            return 0
        statement = _insert(self.engine, predictions_table).on_conflict_do_nothing(
            index_elements=["request_id"]
        )
        with self.engine.begin() as conn:
            conn.execute(statement, rows)
        return len(rows)

    def _log_many_sqlite(self, records: Iterable[Mapping[str, Any]]) -> int:
        # The serving hot path: a plain executemany of pre-encoded tuples is ~6x faster than
        # Core's per-row bind processing (measured: 1000 rows 11 ms vs 73 ms), and the logger
        # thread shares the GIL with the predictions. Values are stored exactly as Core would.
        rows = [sqlite_row(r) for r in records]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.exec_driver_sql(_SQLITE_INSERT, rows)
        return len(rows)

    def count_predictions(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(predictions_table)).scalar_one())

    def known_request_ids(self, request_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(str(i) for i in request_ids))
        with self.engine.connect() as conn:
            return _known_ids(conn, ids)

    # -- labels ------------------------------------------------------------------------------

    def add_labels(
        self, pairs: Iterable[tuple[str, Any]], *, received_at: datetime | None = None
    ) -> tuple[int, int]:
        """Store labels for known predictions, in one transaction. Returns (matched, unknown).

        A label for a request id never served is counted as unknown and not stored; a second label
        for the same id replaces the first (corrections happen).
        """
        latest: dict[str, Any] = {}
        for request_id, label in pairs:
            latest[str(request_id)] = to_jsonable(label)  # last one wins within one call
        if not latest:
            return 0, 0
        when = to_db_time(received_at or utc_now())
        with self.engine.begin() as conn:
            known = _known_ids(conn, list(latest))
            rows = [{"request_id": i, "label": latest[i], "received_at": when} for i in latest if i in known]
            if rows:
                statement = _insert(self.engine, labels_table)
                statement = statement.on_conflict_do_update(
                    index_elements=["request_id"],
                    set_={"label": statement.excluded.label, "received_at": statement.excluded.received_at},
                )
                conn.execute(statement, rows)
        return len(rows), len(latest) - len(rows)

    # -- monitoring window -------------------------------------------------------------------

    def window(self, start: datetime | str | None = None, end: datetime | str | None = None) -> pd.DataFrame:
        """Predictions with created_at in [start, end), inputs expanded to columns, label joined.

        Columns: request_id, created_at (UTC), model_version, <input features...>, prediction,
        score, latency_ms, label (NaN/None when no label yet), label_received_at.
        """
        p, lab = predictions_table, labels_table
        query = (
            sa.select(
                p.c.request_id,
                p.c.created_at,
                p.c.model_version,
                p.c.inputs,
                p.c.prediction,
                p.c.score,
                p.c.latency_ms,
                lab.c.label,
                lab.c.received_at.label("label_received_at"),
            )
            .select_from(p.outerjoin(lab, lab.c.request_id == p.c.request_id))
            .order_by(p.c.created_at, p.c.request_id)
        )
        if start is not None:
            query = query.where(p.c.created_at >= to_db_time(start))
        if end is not None:
            query = query.where(p.c.created_at < to_db_time(end))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        head = ["request_id", "created_at", "model_version"]
        tail = ["prediction", "score", "latency_ms", "label", "label_received_at"]
        if not rows:
            frame = pd.DataFrame(columns=[*head, *tail])
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
            return frame
        inputs = pd.DataFrame.from_records([row.inputs for row in rows])
        inputs = inputs.drop(columns=[c for c in inputs.columns if c in head or c in tail])
        frame = pd.DataFrame(
            {
                "request_id": [r.request_id for r in rows],
                "created_at": pd.to_datetime([from_db_time(r.created_at) for r in rows], utc=True),
                "model_version": [r.model_version for r in rows],
            }
        )
        extra = pd.DataFrame(
            {
                "prediction": [r.prediction for r in rows],
                "score": pd.array([r.score for r in rows], dtype="float64"),
                "latency_ms": pd.array([r.latency_ms for r in rows], dtype="float64"),
                "label": [r.label for r in rows],
                "label_received_at": pd.to_datetime(
                    [from_db_time(r.label_received_at) for r in rows], utc=True
                ),
            }
        )
        frame = pd.concat([frame, inputs, extra], axis=1)
        # Object columns holding only numbers/None become numeric (label 0/1 -> float with NaN).
        for column in ("prediction", "label"):
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].notna().sum():
                frame[column] = converted
        return frame

    # -- monitor runs and retraining PRs -----------------------------------------------------

    def add_monitor_run(
        self,
        payload: Mapping[str, Any],
        *,
        window_start: datetime | str | None = None,
        window_end: datetime | str | None = None,
    ) -> int:
        """Store one monitor run; the window defaults to payload['window_start'/'window_end']."""
        window_start = window_start if window_start is not None else payload.get("window_start")
        window_end = window_end if window_end is not None else payload.get("window_end")
        with self.engine.begin() as conn:
            result = conn.execute(
                monitor_runs_table.insert().values(
                    created_at=to_db_time(utc_now()),
                    window_start=to_db_time(window_start),
                    window_end=to_db_time(window_end),
                    payload=to_jsonable(payload),
                )
            )
            return _inserted_id(result)

    def monitor_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` monitor runs, newest first."""
        t = monitor_runs_table
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "id": row["id"],
                "created_at": from_db_time(row["created_at"]),
                "window_start": from_db_time(row["window_start"]),
                "window_end": from_db_time(row["window_end"]),
                "payload": row["payload"],
            }
            for row in rows
        ]

    def add_retrain_pr(self, *, branch: str, pr_number: int | None, url: str | None, action: str) -> int:
        """Record that the monitor opened/updated/closed a retraining PR (`action`)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                retrain_prs_table.insert().values(
                    created_at=to_db_time(utc_now()),
                    branch=branch,
                    pr_number=pr_number,
                    url=url,
                    action=action,
                )
            )
            return _inserted_id(result)

    def last_retrain_pr(self) -> dict[str, Any] | None:
        t = retrain_prs_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).order_by(t.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        return {**dict(row), "created_at": from_db_time(row["created_at"])}


def _inserted_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    return int(key[0])
