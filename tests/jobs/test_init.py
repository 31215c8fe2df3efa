"""`gitops-ml init`: a working setup from one file, and bad input refused with nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gitops_ml.cli import main
from gitops_ml.contracts.model import load_contract
from gitops_ml.contracts.validate import validate_frame
from gitops_ml.data.acquire import acquire
from gitops_ml.data.split import split_frame
from gitops_ml.jobs.config_check import check_config
from gitops_ml.jobs.init import is_bundled_example
from tests.fixtures.projects import CHURN


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "fork"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "row_id": [f"r{i:05d}" for i in range(n)],
            "day": np.repeat(np.arange(1, 13), n // 12),
            "size": rng.uniform(1, 50, n).round(2),
            "count": rng.integers(0, 20, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "note": [f"free text {i}" for i in range(n)],
            "x": x,
        }
    )
    frame.loc[rng.choice(n, 10, replace=False), "colour"] = None
    frame.loc[rng.choice(n, 7, replace=False), "size"] = np.nan
    frame["kind"] = np.where(x > 0.8, "high", np.where(x < -0.8, "low", "mid"))
    frame["churn"] = np.where(x + rng.normal(scale=0.5, size=n) > 1.0, "Yes", "No")
    frame["amount"] = 100 + 30 * x + rng.normal(size=n)
    return frame


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def assert_setup_works(root: Path) -> None:
    """What validate and pr-check need: config check passes, every batch passes, the split works."""
    result = check_config("config")
    assert result.ok, result.problems
    settings = result.settings
    assert settings is not None
    data = acquire(settings.dataset.manifest, time_column=settings.dataset.time_column)
    report = validate_frame(data.frame, load_contract(settings.dataset.contract), source="all batches")
    assert report.passed, report.summary_table()
    split = split_frame(data.frame, settings)
    assert len(split.train) and len(split.holdout)


def test_multiclass_with_string_labels_and_nulls(root: Path, capsys):
    table().drop(columns=["churn", "amount"]).to_csv(root / "things.csv", index=False)
    assert (
        main(["init", "things.csv", "--target", "kind", "--task", "multiclass", "--id-column", "row_id"]) == 0
    )
    out = capsys.readouterr().out
    assert "wrote   data_contracts/things.odcs.yaml" in out and "Next: gitops-ml config check" in out
    assert "not used as features" in out and "note (string" in out
    assert_setup_works(root)
    features = yaml.safe_load((root / "config" / "features.yaml").read_text())
    assert features == {**features, "numeric": ["day", "size", "count", "x"], "categorical": ["colour"]}
    evaluation = yaml.safe_load((root / "config" / "evaluation.yaml").read_text())
    checks = [
        c["check"]
        for suite in ("data_integrity", "train_test_validation", "model_evaluation")
        for c in evaluation["deepchecks"][suite]["checks"]
    ]
    # string classes are encoded for deepchecks, so TrainTestPerformance runs on them
    assert "TrainTestPerformance" in checks and "RocReport" in checks
    contract = load_contract(root / "data_contracts" / "things.odcs.yaml")
    assert contract.column("kind").valid_values == ("high", "low", "mid")
    assert (
        contract.column("colour").valid_values == ("blue", "green", "red")
        and contract.column("colour").nullable
    )
    size = contract.column("size")
    assert size.minimum == 0 and size.maximum >= 90  # widened beyond the observed 1..50
    assert contract.column("row_id").must_be_unique


def test_binary_with_yes_no_labels_picks_the_minority_class_and_says_so(root: Path, capsys):
    table().drop(columns=["kind", "amount"]).to_csv(root / "churn_like.csv", index=False)
    assert main(["init", "churn_like.csv", "--target", "churn", "--task", "binary"]) == 0
    out = capsys.readouterr().out
    assert "picked the minority class 'Yes'" in out
    dataset = yaml.safe_load((root / "config" / "dataset.yaml").read_text())
    assert dataset["positive_label"] == "Yes" and dataset["id_column"] is None
    assert_setup_works(root)


def test_binary_positive_label_option(root: Path):
    table().drop(columns=["kind", "amount"]).to_csv(root / "t.csv", index=False)
    assert main(["init", "t.csv", "--target", "churn", "--task", "binary", "--positive-label", "No"]) == 0
    assert yaml.safe_load((root / "config" / "dataset.yaml").read_text())["positive_label"] == "No"


def test_regression_with_an_integer_time_column(root: Path):
    table().drop(columns=["kind", "churn"]).to_parquet(root / "sales.parquet", index=False)
    assert (
        main(
            [
                "init",
                "sales.parquet",
                "--target",
                "amount",
                "--task",
                "regression",
                "--time-column",
                "day",
                "--name",
                "sales",
            ]
        )
        == 0
    )
    manifest = yaml.safe_load((root / "data" / "manifest.yaml").read_text())
    ranges = [(b["time_range"]["start"], b["time_range"]["end"]) for b in manifest["batches"]]
    assert ranges == [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)]  # day numbers, never 1970 timestamps
    split = yaml.safe_load((root / "config" / "split.yaml").read_text())
    assert split["strategy"] == "time" and split["holdout_periods"] == 2 and "period" not in split
    assert_setup_works(root)
    settings = check_config("config").settings
    assert settings is not None
    data = acquire(settings.dataset.manifest, time_column="day")
    assert sorted(split_frame(data.frame, settings).holdout["day"].unique()) == [11, 12]


def test_dates_become_monthly_batches(root: Path):
    frame = table(n=360).drop(columns=["kind", "churn"])
    frame["when"] = pd.date_range("2025-01-01", periods=360, freq="D").strftime("%Y-%m-%d")
    frame.drop(columns=["day"]).to_csv(root / "daily.csv", index=False)
    assert (
        main(["init", "daily.csv", "--target", "amount", "--task", "regression", "--time-column", "when"])
        == 0
    )
    manifest = yaml.safe_load((root / "data" / "manifest.yaml").read_text())
    assert [b["name"] for b in manifest["batches"]] == [
        "daily-2025Q1",
        "daily-2025Q2",
        "daily-2025Q3",
        "daily-2025Q4",
    ]
    assert yaml.safe_load((root / "config" / "split.yaml").read_text())["period"] == "Q"
    assert load_contract(root / "data_contracts" / "daily.odcs.yaml").column("when").logical_type == "date"
    assert_setup_works(root)


def test_replaces_the_bundled_example_but_not_another_setup(root: Path, capsys):
    import shutil

    shutil.copytree(CHURN / "config", root / "config")
    shutil.copytree(CHURN / "data_contracts", root / "data_contracts")
    assert main(["data", "generate", "--out", "data"]) == 0  # the bundled example's data, byte for byte
    assert is_bundled_example(root)
    table().drop(columns=["kind", "amount"]).to_csv(root / "mine.csv", index=False)
    assert main(["init", "mine.csv", "--target", "churn", "--task", "binary"]) == 0
    out = capsys.readouterr().out
    assert "removed data_contracts/churn.odcs.yaml" in out and "removed data/batches/churn-2026-01.csv" in out
    assert sorted(p.name for p in (root / "data_contracts").iterdir()) == ["mine.odcs.yaml"]
    assert_setup_works(root)

    before = snapshot(root)
    assert main(["init", "mine.csv", "--target", "count", "--task", "regression", "--name", "other"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert snapshot(root) == before
    assert (
        main(["init", "mine.csv", "--target", "count", "--task", "regression", "--name", "other", "--force"])
        == 0
    )
    assert sorted(p.name for p in (root / "data_contracts").iterdir()) == ["other.odcs.yaml"]


BAD_INPUTS = {
    "missing file": (None, ["--target", "churn"], ["nope.csv", "file not found"]),
    "unreadable file": (b"\xff\xfe\x00garbage\n", ["--target", "churn"], ["bad.csv", "not UTF-8"]),
    "empty file": (b"", ["--target", "churn"], ["bad.csv", "empty file"]),
    "missing target": ("table", ["--target", "nope"], ["bad.csv", "column 'nope'", "not found"]),
    "one class": ("one-class", ["--target", "churn"], ["bad.csv", "column 'churn'", "found one"]),
    "non-numeric regression target": (
        "table",
        ["--target", "colour", "--task", "regression"],
        ["bad.csv", "column 'colour'", "must be numeric"],
    ),
    "unparseable time column": (
        "table",
        ["--target", "churn", "--time-column", "note"],
        ["bad.csv", "column 'note'", "cannot be read as dates"],
    ),
    "duplicate ids": (
        "duplicate-ids",
        ["--target", "churn", "--id-column", "row_id"],
        ["bad.csv", "column 'row_id'", "duplicate values", "r00000"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_file_column_and_problem_and_writes_nothing(root: Path, capsys, case: str):
    content, options, expected = BAD_INPUTS[case]
    path = root / ("nope.csv" if content is None else "bad.csv")
    frame = table().drop(columns=["kind", "amount"])
    if content == "table":
        frame.to_csv(path, index=False)
    elif content == "one-class":
        frame.assign(churn="No").to_csv(path, index=False)
    elif content == "duplicate-ids":
        frame.assign(row_id=["r00000", *frame["row_id"][1:-1], "r00000"]).to_csv(path, index=False)
    elif content is not None:
        path.write_bytes(content)
    (root / "config").mkdir()
    (root / "config" / "dataset.yaml").write_text("name: keep\n")
    before = snapshot(root)
    task = [] if "--task" in options else ["--task", "binary"]
    assert main(["init", path.name, *options, *task]) == 2
    err = capsys.readouterr().err
    for word in expected:
        assert word in err, err
    assert "nothing written" in err
    assert snapshot(root) == before
