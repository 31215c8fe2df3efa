"""The prediction store's tables (SQLAlchemy Core): predictions, shadow scores, labels, monitor runs,
retraining PRs.

`predictions` holds the answer each request got, with the `role` of the model that gave it
("production", or "challenger" for a canary caller). `shadow_predictions` holds the other model's
score of the same request, computed off the response path, so both models are compared on the
same rows (`PredictionStore.paired`). Columns added after a store was first created are added by
`migrate` (additive only: existing rows read as "production"), and indexes no query needs dropped.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

PRODUCTION = "production"
CHALLENGER = "challenger"
ROLES = (PRODUCTION, CHALLENGER)

predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    # not indexed: no query filters on it, and the index cost every logged row (measured: a sixth
    # of a SQLite insert); `migrate` drops it from older stores (DROPPED_INDEXES)
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("inputs", JSONType, nullable=False),
    sa.Column("output", JSONType, nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("prediction", JSONType, nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=True),
    # added in a later release: `migrate` adds it to older stores, whose rows were all production's
    sa.Column("role", sa.String(16), nullable=False, server_default=PRODUCTION),
)

shadow_predictions_table = sa.Table(
    "shadow_predictions",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("output", JSONType, nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("prediction", JSONType, nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=True),
)

labels_table = sa.Table(
    "labels",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("label", JSONType, nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
)

monitor_runs_table = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("window_start", sa.DateTime(), nullable=True),
    sa.Column("window_end", sa.DateTime(), nullable=True),
    sa.Column("payload", JSONType, nullable=False),
)

retrain_prs_table = sa.Table(
    "retrain_prs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("pr_number", sa.Integer(), nullable=True),
    sa.Column("url", sa.String(1024), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
)

PREDICTION_FIELDS = (
    "request_id",
    "created_at",
    "model_version",
    "inputs",
    "output",
    "score",
    "prediction",
    "latency_ms",
    "role",
)
PREDICTION_FIELDS_SET = frozenset(PREDICTION_FIELDS)

SHADOW_FIELDS = (
    "request_id",
    "role",
    "created_at",
    "model_version",
    "output",
    "score",
    "prediction",
    "latency_ms",
)
SHADOW_FIELDS_SET = frozenset(SHADOW_FIELDS)

# (table, column) pairs added after the first release, for `migrate`; each has a server default.
ADDED_COLUMNS = ((predictions_table, "role"),)
# (table, index) pairs of earlier releases that no query uses, dropped by `migrate`.
DROPPED_INDEXES = ((predictions_table, "ix_predictions_model_version"),)


def _create_missing_tables(engine: sa.Engine) -> None:
    """`create_all` checks, then creates: two processes opening a new store at once both find a
    table missing and the second CREATE fails (`serve --workers N` on a fresh store did). Each
    retry checks again and creates only what is still missing; every failure means another process
    created something, so there are at most as many failures as tables and indexes."""
    attempts = 1 + sum(1 + len(table.indexes) for table in metadata.tables.values())
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise


def migrate(engine: sa.Engine) -> None:
    """Create missing tables, add missing columns and drop unused indexes (no data is removed),
    idempotent and safe to race: two processes opening an old store at once both try; the loser
    finds the column there, the index gone, the table created."""
    _create_missing_tables(engine)
    for table, index in DROPPED_INDEXES:
        if index in {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
    for table, name in ADDED_COLUMNS:
        if name in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        default = column.server_default.arg  # type: ignore[union-attr]
        ddl = f"ALTER TABLE {table.name} ADD COLUMN {name} {kind} NOT NULL DEFAULT '{default}'"
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(ddl)
        except sa.exc.DBAPIError:
            if name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                raise
