"""The closed config vocabulary: each attack a config-only PR could try is refused at load time,
as a config error naming the file and key path (so `config check` and every command report it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.cli import main
from gitops_ml.config import SEARCHABLE_PREPROCESSING, load_settings
from gitops_ml.errors import ConfigError

ESTIMATOR = {"class_path": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 20}}


def _config(tmp_path: Path, estimator: dict) -> Path:
    """A small, complete config folder (fixture data, not the repository's config/)."""
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    sections = {
        "dataset": {
            "name": "t",
            "contract": "c.odcs.yaml",
            "manifest": "m.yaml",
            "target": "y",
            "id_column": "id",
            "time_column": None,
            "task": "binary",
        },
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "split": {"strategy": "random"},
        "estimator": estimator,
    }
    for name, body in sections.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    return folder


def _refused(tmp_path: Path, estimator: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path, estimator))
    return str(info.value)


def test_a_plain_config_loads(tmp_path: Path) -> None:
    grid = {
        "max_depth": [2, None],
        "model__learning_rate": [0.1],
        "preprocess__numeric__imputer__strategy": ["mean"],
    }
    settings = load_settings(_config(tmp_path, {**ESTIMATOR, "search": {"param_grid": grid}}))
    assert settings.estimator.search is not None and settings.estimator.search.param_grid == grid


def test_joblib_memory_in_a_grid_is_refused(tmp_path: Path) -> None:
    # H1: joblib.Memory unpickles files committed in the PR, inside the job that trains
    grid = {"preprocess__numeric__memory": ["data/.jlcache"]}
    message = _refused(tmp_path, {**ESTIMATOR, "search": {"param_grid": grid}})
    assert "estimator.yaml: estimator.search.param_grid.preprocess__numeric__memory:" in message
    assert "joblib cache" in message


@pytest.mark.parametrize("key", ["memory", "model__memory"])
def test_memory_is_refused_for_the_estimator_too(tmp_path: Path, key: str) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "search": {"param_grid": {key: ["cache"]}}})
    assert f"estimator.search.param_grid.{key}:" in message
    message = _refused(tmp_path, {**ESTIMATOR, "params": {"memory": "cache"}})
    assert "estimator.params.memory:" in message


def test_a_cache_path_as_a_value_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "params": {"max_depth": "data/.jlcache"}})
    assert "estimator.params.max_depth:" in message and "file path" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("os.system", "import path"),
        ("builtins:eval", "import path"),
        ("lambda x: x", "callable"),
        ("sklearn.metrics.accuracy_score", "import path"),
    ],
)
def test_callable_looking_params_are_refused(tmp_path: Path, value: str, reason: str) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "params": {"loss": value}})
    assert "estimator.params.loss:" in message and reason in message
    message = _refused(tmp_path, {**ESTIMATOR, "search": {"param_grid": {"loss": ["log_loss", value]}}})
    assert "estimator.search.param_grid.loss[1]:" in message and reason in message


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"class_weight": {"0": 1}}, "estimator.params.class_weight"),
        ({"max_depth": "2026-01-01"}, None),  # a string stays a string
        ({"interaction_cst": [[0, 1]]}, "estimator.params.interaction_cst"),
    ],
)
def test_only_plain_values(tmp_path: Path, params: dict, where: str | None) -> None:
    if where is None:
        load_settings(_config(tmp_path, {**ESTIMATOR, "params": params}))
        return
    message = _refused(tmp_path, {**ESTIMATOR, "params": params})
    assert f"{where}:" in message and "plain values only" in message


@pytest.mark.parametrize(
    "key",
    ["preprocess__numeric__imputer__add_indicator", "model__estimator__memory", "preprocess__remainder"],
)
def test_grid_paths_beyond_our_preprocessing_settings_are_refused(tmp_path: Path, key: str) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "search": {"param_grid": {key: [True]}}})
    assert f"estimator.search.param_grid.{key}:" in message


def test_an_empty_grid_list_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "search": {"param_grid": {"max_depth": []}}})
    assert "estimator.search.param_grid.max_depth:" in message and "non-empty" in message


def test_nested_estimator_params_are_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "params": {"estimator__max_depth": 3}})
    assert "estimator.params.estimator__max_depth:" in message


@pytest.mark.parametrize(
    "class_path",
    [
        "os.system",
        "builtins.eval",
        "HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier;import os",
    ],
)
def test_class_paths_beyond_the_allow_list_are_refused_at_load(tmp_path: Path, class_path: str) -> None:
    message = _refused(tmp_path, {**ESTIMATOR, "class_path": class_path})
    assert "estimator.yaml: estimator.class_path:" in message and "not allowed" in message


def test_a_dask_address_in_config_is_refused(tmp_path: Path) -> None:
    # H1: the PR could name a scheduler that receives the training frame and returns pickles
    search = {"param_grid": {"max_depth": [2]}, "parallel": "dask", "dask_address": "tcp://attacker:8786"}
    message = _refused(tmp_path, {**ESTIMATOR, "search": search})
    assert "estimator.yaml: estimator.search.dask_address:" in message
    assert "GITOPS_ML_DASK_ADDRESS" in message


def test_the_refusal_exits_2_through_the_cli(tmp_path: Path, capsys) -> None:
    folder = _config(
        tmp_path, {**ESTIMATOR, "search": {"param_grid": {"preprocess__numeric__memory": ["x"]}}}
    )
    assert main(["config", "check", "--config-dir", str(folder)]) == 2
    captured = capsys.readouterr()
    assert "estimator.search.param_grid.preprocess__numeric__memory" in captured.out + captured.err


def test_every_searchable_preprocessing_path_exists_in_the_pipeline() -> None:
    from gitops_ml.config import Settings
    from gitops_ml.training.pipeline import build_preprocessor

    settings = Settings.model_validate(
        {
            "dataset": {"name": "t", "contract": "c", "manifest": "m", "target": "y", "id_column": "id"},
            "features": {"numeric": ["a"], "categorical": ["c"]},
            "estimator": ESTIMATOR,
        }
    )
    params = {f"preprocess__{k}" for k in build_preprocessor(settings).get_params(deep=True)}
    assert params >= SEARCHABLE_PREPROCESSING, SEARCHABLE_PREPROCESSING - params


def test_an_api_host_in_config_is_refused(tmp_path: Path) -> None:
    # L: forge.api_url sent RETRAIN_TOKEN to any host the config named
    folder = _config(tmp_path, ESTIMATOR)
    (folder / "forge.yaml").write_text("repository: acme/churn\napi_url: https://attacker.example/api/v3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(folder)
    assert "forge.yaml: forge.api_url:" in str(info.value) and "GITHUB_API_URL" in str(info.value)


def _with_section(tmp_path: Path, name: str, body: dict) -> Path:
    folder = _config(tmp_path, ESTIMATOR)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "url",
    [
        "s3://attacker-bucket/models",
        "https://attacker.example/m",
        "/srv/models",
        "../outside",
        "file:///tmp/m",
    ],
)
def test_a_model_store_elsewhere_in_config_is_refused(tmp_path: Path, url: str) -> None:
    # a PR could publish the production model to, or load a model from, any host or path
    with pytest.raises(ConfigError) as info:
        load_settings(_with_section(tmp_path, "registry", {"store_url": url}))
    message = str(info.value)
    assert "registry.yaml: registry.store_url:" in message and "GITOPS_ML_MODEL_STORE_URL" in message


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://u:p@attacker.example/db", "sqlite:////var/tmp/p.db", "sqlite:///../p.db"]
)
def test_a_prediction_store_elsewhere_in_config_is_refused(tmp_path: Path, url: str) -> None:
    # a PR could send the logged predictions and labels (and the monitor's reads) to any database
    with pytest.raises(ConfigError) as info:
        load_settings(_with_section(tmp_path, "serving", {"prediction_store_url": url}))
    message = str(info.value)
    assert "serving.yaml: serving.prediction_store_url:" in message
    assert "GITOPS_ML_PREDICTION_STORE_URL" in message


def test_stores_elsewhere_come_from_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitops_ml.config import model_store_url, prediction_store_url

    folder = _with_section(tmp_path, "registry", {"store_url": "models/store"})
    (folder / "serving.yaml").write_text(yaml.safe_dump({"prediction_store_url": "sqlite:///p.db"}))
    settings = load_settings(folder)
    assert model_store_url(settings.registry) == "models/store"
    assert prediction_store_url(settings.serving) == "sqlite:///p.db"
    monkeypatch.setenv("GITOPS_ML_MODEL_STORE_URL", "s3://bucket/models")
    monkeypatch.setenv("GITOPS_ML_PREDICTION_STORE_URL", "postgresql+psycopg://db/p")
    assert model_store_url(settings.registry) == "s3://bucket/models"
    assert prediction_store_url(settings.serving) == "postgresql+psycopg://db/p"
    assert prediction_store_url(settings.serving, "sqlite:///x.db") == "sqlite:///x.db"  # --store-url first
    (tmp_path / "gh").mkdir()
    github = _with_section(tmp_path / "gh", "registry", {"store_url": "github-release://"})
    assert load_settings(github).registry.store_url == "github-release://"


def _deepchecks(tmp_path: Path, spec: dict) -> Path:
    return _with_section(tmp_path, "evaluation", {"deepchecks": {"data_integrity": {"checks": [spec]}}})


def test_plain_deepchecks_params_and_conditions_load(tmp_path: Path) -> None:
    spec = {
        "check": "TrainTestPerformance",
        "params": {"scorers": {"acc": "accuracy"}, "n_samples": 1000, "columns": ["a", "b"]},
        "conditions": {"add_condition_train_test_relative_degradation_less_than": {"threshold": 0.1}},
    }
    settings = load_settings(_deepchecks(tmp_path, spec))
    assert settings.evaluation.deepchecks.data_integrity.checks[0].params["scorers"] == {"acc": "accuracy"}


@pytest.mark.parametrize(
    ("spec", "where", "rule"),
    [
        # deepchecks runs in the promotion job too: its kwargs follow the estimator's rules
        ({"check": "DataDuplicates", "params": {"scorers": "os.system"}}, "params.scorers", "import path"),
        ({"check": "DataDuplicates", "params": {"columns": "/etc/passwd"}}, "params.columns", "file path"),
        ({"check": "DataDuplicates", "params": {"n": {"a": {"b": 1}}}}, "params.n", "got a dict"),
        ({"check": "DataDuplicates", "params": {"__class__": 1}}, "params.__class__", "keyword argument"),
        (
            {"check": "DataDuplicates", "conditions": {"__init__": {}}},
            "conditions.__init__",
            "add_condition_",
        ),
        (
            {
                "check": "DataDuplicates",
                "conditions": {"add_condition_ratio_less_or_equal": {"max_ratio": "lambda: 1"}},
            },
            "conditions.add_condition_ratio_less_or_equal.max_ratio",
            "callable",
        ),
        ({"check": "os.system"}, "checks[0].check", "pattern"),
    ],
)
def test_deepchecks_kwargs_that_are_not_plain_values_are_refused(
    tmp_path: Path, spec: dict, where: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_deepchecks(tmp_path, spec))
    message = str(info.value)
    assert "evaluation.yaml: evaluation.deepchecks.data_integrity.checks[0]" in message
    assert where in message and rule in message, message
