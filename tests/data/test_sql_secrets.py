"""SQL credentials come from `${ENV_VAR}`s and are never shown: not in errors, not in what reports print.

The attack (L): a password given as a URL query parameter (`?password=...`) was printed in errors
and reports, because only the userinfo password was hidden.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from gitops_ml.data.acquire import acquire
from gitops_ml.data.sql_url import expand_env, redact_url
from gitops_ml.errors import ConfigError, DataError

from .helpers import write_manifest

SECRET = "hunter2-query-secret"


def test_a_password_in_query_parameters_is_never_printed(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://alice@127.0.0.1:1/churn?sslmode=disable&password={SECRET}"
    path = write_manifest(tmp_path, [{"name": "pg", "format": "sql", "sql": {"url": url, "table": "churn"}}])
    with pytest.raises(DataError) as info:
        acquire(path)
    message = str(info.value)
    assert "batch 'pg'" in message and "password=***" in message
    assert SECRET not in message


def test_sqlite_errors_hide_query_parameters_too(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        [
            {
                "name": "db",
                "format": "sql",
                "sql": {"url": f"sqlite:///absent.db?password={SECRET}", "table": "t"},
            }
        ],
    )
    with pytest.raises(DataError) as info:
        acquire(path)
    assert SECRET not in str(info.value) and "not found" in str(info.value)


def test_credentials_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(tmp_path / "churn.db") as conn:
        pd.DataFrame({"a": [1, 2, 3]}).to_sql("t", conn, index=False)
    monkeypatch.setenv("CHURN_DB", "churn.db")
    path = write_manifest(
        tmp_path, [{"name": "db", "format": "sql", "sql": {"url": "sqlite:///${CHURN_DB}", "table": "t"}}]
    )
    data = acquire(path)
    assert len(data.frame) == 3
    monkeypatch.delenv("CHURN_DB")
    with pytest.raises(
        ConfigError, match=r"batch 'db'.*sql\.url: environment variable\(s\) CHURN_DB not set"
    ):
        acquire(path)


@pytest.mark.skipif(
    not os.environ.get("GITOPS_ML_TEST_POSTGRES_URL"), reason="needs GITOPS_ML_TEST_POSTGRES_URL"
)
def test_postgres_reads_with_a_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    base = sa.make_url(os.environ["GITOPS_ML_TEST_POSTGRES_URL"])
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        pd.DataFrame({"a": [1, 2]}).to_sql("sql_secrets_t", conn, index=False, if_exists="replace")
    engine.dispose()
    monkeypatch.setenv("PG_PASSWORD", SECRET)
    url = (
        f"postgresql+psycopg://{base.username}:${{PG_PASSWORD}}@{base.host}:{base.port}/{base.database}"
        f"?application_name={SECRET}"
    )
    path = write_manifest(
        tmp_path, [{"name": "pg", "format": "sql", "sql": {"url": url, "table": "sql_secrets_t"}}]
    )
    data = acquire(path)
    assert len(data.frame) == 2
    assert all(SECRET not in b.source for b in data.batches)
    bad = write_manifest(
        tmp_path, [{"name": "pg", "format": "sql", "sql": {"url": url, "table": "no_such_table"}}]
    )
    with pytest.raises(DataError) as info:
        acquire(bad)
    assert SECRET not in str(info.value) and "no_such_table" in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://u:pw@h/db?sslmode=require&password=x",
            "postgresql://u:***@h/db?password=***&sslmode=***",
        ),
        ("${DATABASE_URL}", "${DATABASE_URL}"),
        ("not a url :: at all", "<invalid URL>"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_expansion_quotes_inside_a_url() -> None:
    env = {"PW": "p@ss/word", "URL": "sqlite:///x.db"}
    assert expand_env("postgresql://u:${PW}@h/db", "x", env) == "postgresql://u:p%40ss%2Fword@h/db"
    assert expand_env("${URL}", "x", env) == "sqlite:///x.db"
