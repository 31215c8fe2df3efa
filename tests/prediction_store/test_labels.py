"""`gitops-ml labels import`: counts, and a bad file rejected whole with the row and column named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml.cli import main
from gitops_ml.errors import DataError
from gitops_ml.prediction_store import PredictionStore
from gitops_ml.prediction_store.labels import read_labels_csv
from tests.fixtures.projects import make_config_project


@pytest.fixture(autouse=True)
def _project(tmp_path, monkeypatch):
    """labels import checks the config first: run it in a fixture project, not the repository."""
    monkeypatch.chdir(make_config_project(tmp_path / "project"))


CONFIG = Path("config")


def seed(store_url: str, n: int = 3) -> None:
    store = PredictionStore(store_url)
    store.log_many([{"request_id": f"r-{i}", "model_version": "v1", "inputs": {"x": i}} for i in range(n)])
    store.dispose()


def test_import_counts_matched_and_unknown(tmp_path, store_url, capsys):
    seed(store_url)
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr-0,1\nr-1,0\nnobody,1\n")
    code = main(["labels", "import", str(path), "--store-url", store_url, "--config-dir", str(CONFIG)])
    assert code == 0
    assert "2 matched" in capsys.readouterr().out
    store = PredictionStore(store_url)
    labels = store.window().set_index("request_id")["label"]
    store.dispose()
    assert labels["r-0"] == 1 and labels["r-1"] == 0 and labels.isna()["r-2"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id,label\nr-0,1\n", "missing column(s) ['request_id']"),
        ("request_id,label\nr-0,1\n,0\n", "row 3, column 'request_id': empty"),
        ("request_id,label\nr-0,1\nr-1,\n", "row 3, column 'label'"),
        ("request_id,label\nr-0,1\nr-0,0\n", "row 3, column 'label': request_id 'r-0'"),
        ("request_id,label\nr-0,1,extra\n", "row 2"),
        ("request_id,label\n", "no label rows"),
    ],
)
def test_bad_file_exits_2_and_writes_nothing(tmp_path, store_url, capsys, text, needle):
    seed(store_url)
    path = tmp_path / "labels.csv"
    path.write_text(text)
    code = main(["labels", "import", str(path), "--store-url", store_url, "--config-dir", str(CONFIG)])
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and str(path) in err
    store = PredictionStore(store_url)
    assert store.window()["label"].isna().all()
    store.dispose()


def test_regression_labels_must_be_numbers(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\na,1.5\nb,high\n")
    with pytest.raises(DataError, match="row 3, column 'label'"):
        read_labels_csv(path, "regression")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_labels_csv(tmp_path / "nope.csv")
