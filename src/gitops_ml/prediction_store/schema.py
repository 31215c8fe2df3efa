"""The prediction store's tables (SQLAlchemy Core): predictions, labels, monitor runs, retraining PRs."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("model_version", sa.String(128), nullable=False, index=True),
    sa.Column("inputs", JSONType, nullable=False),
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
)
PREDICTION_FIELDS_SET = frozenset(PREDICTION_FIELDS)
