"""Roles, shadow scores, the paired read and the additive migration, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gitops_ml.prediction_store import BatchingLogger, PredictionStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def served(i: int, *, role: str = "production", version: str = "v1", score: float = 0.7) -> dict:
    return {
        "request_id": f"r-{i}",
        "created_at": T0 + timedelta(minutes=i),
        "model_version": version,
        "role": role,
        "inputs": {"tenure_months": i, "plan": "basic"},
        "output": {"prediction": 1, "score": score, "probabilities": {"0": 1 - score, "1": score}},
        "score": score,
        "prediction": 1,
        "latency_ms": 1.0,
    }


def shadow(i: int, *, role: str = "challenger", version: str = "v2", score: float = 0.4) -> dict:
    return {
        "request_id": f"r-{i}",
        "role": role,
        "created_at": T0 + timedelta(minutes=i),
        "model_version": version,
        "output": {"prediction": 0, "score": score, "probabilities": {"0": 1 - score, "1": score}},
        "score": score,
        "prediction": 0,
        "latency_ms": 0.5,
    }


def test_role_defaults_to_production_and_window_says_who_answered(store):
    plain = served(0)
    del plain["role"]
    store.log_many([plain, served(1, role="challenger", version="v2")])
    frame = store.window().set_index("request_id")
    assert frame.loc["r-0", "served_role"] == "production" and frame.loc["r-0", "model_version"] == "v1"
    assert frame.loc["r-1", "served_role"] == "challenger" and frame.loc["r-1", "model_version"] == "v2"


def test_a_role_outside_production_and_challenger_is_refused(store):
    with pytest.raises(ValueError, match="role 'staging'"):
        store.log_many([served(0, role="staging")])
    with pytest.raises(ValueError, match="role 'staging'"):
        store.log_shadow_many([shadow(0, role="staging")])
    with pytest.raises(ValueError, match="missing 'role'"):
        store.log_shadow_many([{k: v for k, v in shadow(0).items() if k != "role"}])
    assert store.count_predictions() == 0 and store.count_shadow_predictions() == 0


def test_paired_read_joins_both_models_whichever_answered(store):
    # r-0, r-1: production answered, the challenger scored in the shadow; r-2: a canary caller,
    # the challenger answered and production scored in the shadow; r-3: no shadow score (not paired)
    store.log_many([served(0), served(1), served(2, role="challenger", version="v2", score=0.2), served(3)])
    store.log_shadow_many(
        [shadow(0), shadow(1, score=0.9), shadow(2, role="production", version="v1", score=0.6)]
    )
    store.add_labels([("r-0", 1), ("r-2", 0), ("r-3", 1)])
    frame = store.paired().set_index("request_id")
    assert list(frame.index) == ["r-0", "r-1", "r-2"]
    assert frame["served_role"].tolist() == ["production", "production", "challenger"]
    assert frame["production_version"].tolist() == ["v1"] * 3
    assert frame["challenger_version"].tolist() == ["v2"] * 3
    assert frame["production_score"].tolist() == [0.7, 0.7, 0.6]
    assert frame["challenger_score"].tolist() == [0.4, 0.9, 0.2]
    assert frame["production_prediction"].tolist() == [1, 1, 0]
    assert frame["challenger_prediction"].tolist() == [0, 0, 1]
    assert frame.loc["r-1", "challenger_probabilities"] == {"0": pytest.approx(0.1), "1": 0.9}
    assert frame.loc["r-0", "label"] == 1 and frame["label"].isna()["r-1"] and frame.loc["r-2", "label"] == 0
    assert frame["tenure_months"].tolist() == [0, 1, 2]
    assert str(frame["created_at"].dt.tz) == "UTC"
    labelled = store.paired(labelled_only=True)
    assert labelled["request_id"].tolist() == ["r-0", "r-2"]
    window = store.paired(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert window["request_id"].tolist() == ["r-1"]


def test_paired_read_keeps_only_the_named_challenger(store):
    store.log_many([served(0), served(1)])
    store.log_shadow_many([shadow(0, version="v2"), shadow(1, version="v3")])
    assert store.paired(challenger_version="v3")["request_id"].tolist() == ["r-1"]
    empty = store.paired(challenger_version="v9")
    assert len(empty) == 0 and {"request_id", "production_score", "challenger_score", "label"} <= set(
        empty.columns
    )


def test_a_repeated_shadow_score_is_skipped(store):
    store.log_many([served(0)])
    store.log_shadow_many([shadow(0, score=0.4)])
    store.log_shadow_many([shadow(0, score=0.8), shadow(1)])
    assert store.count_shadow_predictions() == 2
    assert store.paired()["challenger_score"].tolist() == [0.4]


def test_logger_writes_shadow_scores_beside_predictions(store):
    with BatchingLogger(store, batch_size=4, flush_interval_s=0.01) as logger:
        for i in range(10):
            logger.log_many([served(i)])
            logger.log_shadow_many([shadow(i)])
        logger.log_shadow_many([shadow(10, role="bogus")])  # unstorable: dropped alone, counted
        assert logger.flush()
    assert (logger.written, logger.shadow_written, logger.shadow_dropped, logger.dropped) == (10, 10, 1, 0)
    assert len(store.paired()) == 10


# The predictions table as the first release created it (no role column, no shadow table).
OLD_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OLD = sa.MetaData()
sa.Table(
    "predictions",
    OLD,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("model_version", sa.String(128), nullable=False, index=True),
    sa.Column("inputs", OLD_JSON, nullable=False),
    sa.Column("output", OLD_JSON, nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("prediction", OLD_JSON, nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=True),
)


def test_an_older_store_is_migrated_additively_and_keeps_its_rows(store_url):
    engine = sa.create_engine(store_url)
    OLD.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            OLD.tables["predictions"].insert(),
            [{**{k: v for k, v in served(0).items() if k != "role"}, "created_at": T0.replace(tzinfo=None)}],
        )
    engine.dispose()
    first, second = PredictionStore(store_url), PredictionStore(store_url)  # the second finds it done
    columns = {c["name"] for c in sa.inspect(second.engine).get_columns("predictions")}
    assert "role" in columns and "shadow_predictions" in sa.inspect(second.engine).get_table_names()
    old = second.window().set_index("request_id")
    assert old.loc["r-0", "served_role"] == "production" and old.loc["r-0", "score"] == 0.7
    second.log_many([served(1, role="challenger", version="v2")])
    second.log_shadow_many([shadow(0), shadow(1, role="production", version="v1")])
    assert second.paired()["request_id"].tolist() == ["r-0", "r-1"]
    first.dispose()
    second.dispose()
