"""The config loader: the committed config is valid; every kind of mistake names file, key path and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_ml.cli import main
from gitops_ml.config import load_settings
from gitops_ml.errors import ConfigError
from tests.fixtures.projects import CHURN, make_config_project

FIXTURE_CONFIG = CHURN / "config"


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture config in a project folder (contract + manifest beside it), which is the cwd:
    commands check the contract the config names, relative to the project root."""
    monkeypatch.chdir(make_config_project(tmp_path))
    return tmp_path / "config"


def test_example_config_loads_and_is_frozen():
    settings = load_settings(FIXTURE_CONFIG)
    assert settings.dataset.task == "binary" and settings.split.strategy == "time"
    with pytest.raises(Exception, match="frozen"):
        settings.dataset.target = "x"  # type: ignore[misc]


def test_config_hash_is_stable_and_sensitive(config_dir: Path):
    first = load_settings(config_dir).config_hash()
    assert load_settings(config_dir).config_hash() == first
    (config_dir / "split.yaml").write_text(
        (config_dir / "split.yaml").read_text().replace("seed: 42", "seed: 43")
    )
    assert load_settings(config_dir).config_hash() != first


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        (
            "split.yaml",
            "strategy: time\nholdout_period: 1\n",
            ["split.yaml", "split.holdout_period", "Extra inputs"],
        ),
        (
            "estimator.yaml",
            "class_path: x\nparams: {a: 1}\nsearch: {method: grid, param_grid: {a: [1]}, cv: 1}\n",
            ["estimator.yaml", "estimator.search.cv", "greater than or equal to 2"],
        ),
        ("split.yaml", "strategy: sometimes\n", ["split.yaml", "split.strategy", "'time'"]),
        ("gates.yaml", "minimums: [roc_auc]\n", ["gates.yaml", "gates.minimums", "dictionary"]),
        ("features.yaml", "numeric: [a]\ncategorical: [a]\n", ["features", "both numeric and categorical"]),
        ("split.yaml", "strategy: [time\n", ["split.yaml", "not valid YAML"]),
        ("split.yaml", "- time\n", ["split.yaml", "expected a mapping"]),
        ("splits.yaml", "strategy: time\n", ["splits.yaml", "unknown config file"]),
        (
            "evaluation.yaml",
            "segments: [tenure_months]\n",
            ["evaluation.segments", "not a categorical feature"],
        ),
    ],
)
def test_invalid_config_names_file_key_and_reason(
    config_dir: Path, file: str, text: str, expected: list[str]
):
    (config_dir / file).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config_dir)
    for word in expected:
        assert word in str(info.value), str(info.value)


def test_missing_required_section(config_dir: Path):
    (config_dir / "dataset.yaml").unlink()
    with pytest.raises(ConfigError, match="dataset"):
        load_settings(config_dir)


def test_cli_show_schema_and_bad_config_exit_code(config_dir: Path, capsys):
    assert main(["config", "show", "--config-dir", str(config_dir)]) == 0
    shown = capsys.readouterr().out
    assert "target: churned" in shown and "# config hash:" in shown
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False and "dataset" in schema["properties"]
    (config_dir / "split.yaml").write_text("holdout_period: 1\n")
    assert main(["config", "show", "--config-dir", str(config_dir)]) == 2
    assert "split.holdout_period" in capsys.readouterr().err
