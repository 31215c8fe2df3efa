"""Pipeline config: `config/*.yaml` loaded into frozen, strict pydantic models.

Each YAML file in the config folder is one top-level section, named by its file stem
(`config/gates.yaml` -> `Settings.gates`). Unknown files, unknown keys and wrong types are
errors that name the file and the key path, so a typo in a pull request never becomes a
silent default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gitops_ml.errors import ConfigError
from gitops_ml.parsing import key_path, read_yaml

DEFAULT_CONFIG_DIR = Path("config")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Task = Literal["binary", "multiclass", "regression"]


class DatasetConfig(StrictModel):
    """What the data is and where it comes from."""

    name: str
    contract: Path = Field(description="ODCS v3.1 data contract (the single source of truth for the schema)")
    manifest: Path = Field(description="manifest of data batches with sha256")
    target: str
    id_column: str | None = Field(
        None, description="row identifier (optional): excluded from features, de-duplicates exported labels"
    )
    time_column: str | None = Field(None, description="snapshot/event time; needed for a time-based split")
    task: Task = "binary"
    positive_label: int | str | None = Field(1, description="binary only: the class scored as positive")
    allowed_uri_prefixes: list[str] = Field(
        default_factory=list,
        description="URLs a manifest batch may name beyond files inside the repository, each a scheme and "
        "bucket (or host) with a trailing '/', e.g. s3://my-bucket/churn/; empty = repository files only",
    )

    @field_validator("allowed_uri_prefixes")
    @classmethod
    def _scheme_and_bucket(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not re.fullmatch(
                r"[a-z][a-z0-9+.-]*://[^/\s]+/\S*|file:///[^\s]+/", prefix
            ) or not prefix.endswith("/"):
                raise _refuse(
                    "'{prefix}': expected a scheme and a bucket or host ending in '/', e.g. "
                    "s3://my-bucket/ (a bare scheme would allow every bucket)",
                    prefix=prefix[:120],
                )
        return prefixes


class FeaturesConfig(StrictModel):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    categorical_encoding: Literal["onehot", "ordinal"] = "onehot"
    numeric_imputation: Literal["median", "mean", "constant"] = "median"
    scale_numeric: bool = True
    max_categories: int | None = Field(None, ge=2, description="rare categories beyond this are grouped")

    @model_validator(mode="after")
    def _disjoint(self) -> FeaturesConfig:
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {both}")
        if not self.numeric and not self.categorical:
            raise ValueError("no features: list at least one numeric or categorical column")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class SplitConfig(StrictModel):
    strategy: Literal["time", "stratified", "random"] = "time"
    holdout_periods: int = Field(1, ge=1, description="time split: newest N distinct periods are held out")
    train_periods: int | None = Field(
        None,
        ge=1,
        description="time split: train on the newest N periods before the holdout (sliding window); "
        "None = all. After concept drift, a window lets retraining forget the old relation",
    )
    period: Literal["D", "W", "M", "Q", "Y"] = "M"
    test_size: float = Field(0.2, gt=0, lt=1, description="stratified/random split: holdout fraction")
    seed: int = 42


# -- the closed vocabulary of estimator params and search grids --------------------------------
# Config comes from pull requests, so it may only hold plain values: a param that names a file
# (joblib `memory` unpickles whatever sits there), an import path or a callable would let a
# config-only PR run code in the job that trains. Everything else scikit-learn accepts as a
# plain value stays expressible.

# Estimators are imported by a path written in a pull request: only scikit-learn classes
# (which skops can serialise) are allowed, plus the explicit list below. A class added here
# must also have every type it needs listed in registry.artifacts.TRUSTED_TYPES, or its saved
# model will be refused at load time.
ALLOWED_ESTIMATOR_PREFIXES = ("sklearn.",)
EXTRA_ALLOWED_ESTIMATORS: frozenset[str] = frozenset()
# Pipeline paths of our own preprocessing (training.pipeline builds these steps) that a grid
# may search, each the counterpart of a `features` setting; any other `__` path is refused.
SEARCHABLE_PREPROCESSING: frozenset[str] = frozenset(
    {
        "preprocess__numeric__imputer__strategy",  # features.numeric_imputation
        "preprocess__numeric__scaler__with_mean",  # features.scale_numeric
        "preprocess__numeric__scaler__with_std",
        "preprocess__categorical__encoder__max_categories",  # features.max_categories
        "preprocess__categorical__encoder__min_frequency",
    }
)
# joblib.Memory(location) loads pickles from `location`: a cache is never configurable.
REFUSED_PARAMS: frozenset[str] = frozenset({"memory"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)+")
_PLAIN = "plain values only (numbers, strings, booleans, null, lists of those)"


def _refuse(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("gitops_ml_vocabulary", message, context)


def _plain_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _IMPORT_PATH.fullmatch(text):
            raise _refuse("'{value}' looks like an import path; " + _PLAIN + ", never code", value=value[:80])
        if text.startswith(("lambda", "<")):
            raise _refuse("'{value}' looks like a callable; " + _PLAIN + ", never code", value=value[:80])
        if "/" in text or "\\" in text or text.startswith("~"):
            raise _refuse(
                "'{value}' looks like a file path; config never names files for a job to read",
                value=value[:80],
            )
        return value
    raise _refuse("got a {kind}; " + _PLAIN, kind=type(value).__name__)


def plain_value(value: Any) -> Any:
    """A scalar, or a flat list of scalars (e.g. `hidden_layer_sizes: [64, 32]`); PydanticCustomError if not."""
    if isinstance(value, list):
        return [_plain_scalar(item) for item in value]
    return _plain_scalar(value)


def _refused_name(name: str) -> None:
    last = name.rsplit("__", 1)[-1]
    if last in REFUSED_PARAMS:
        raise _refuse("'{name}' is refused: a joblib cache location loads pickles from disk", name=name)


def estimator_param_name(name: str) -> str:
    """A parameter of the estimator itself: an identifier, no `__` path into nested objects."""
    _refused_name(name)
    if not _IDENTIFIER.fullmatch(name) or "__" in name:
        raise _refuse(
            "'{name}' is not a parameter name: estimator.params takes the estimator's own "
            "parameters (identifiers, no '__' paths)",
            name=name[:80],
        )
    return name


def grid_param_name(name: str) -> str:
    """An estimator parameter (`max_depth` or `model__max_depth`) or one of our preprocessing settings."""
    _refused_name(name)
    bare = name.removeprefix("model__")
    if name in SEARCHABLE_PREPROCESSING or (_IDENTIFIER.fullmatch(bare) and "__" not in bare):
        return name
    allowed = ", ".join(sorted(SEARCHABLE_PREPROCESSING))
    raise _refuse(
        "'{name}' is not searchable: a grid takes estimator parameters (`max_depth` or "
        "`model__max_depth`) and these preprocessing settings: {allowed}",
        name=name[:80],
        allowed=allowed,
    )


def _grid_candidates(values: list[Any]) -> list[Any]:
    if not values:
        raise _refuse("expected a non-empty list of candidate values")
    return values


PlainValue = Annotated[Any, AfterValidator(plain_value)]
EstimatorParams = dict[Annotated[str, AfterValidator(estimator_param_name)], PlainValue]
ParamGrid = dict[
    Annotated[str, AfterValidator(grid_param_name)],
    Annotated[list[PlainValue], AfterValidator(_grid_candidates)],
]


class SearchConfig(StrictModel):
    method: Literal["grid", "random"] = "random"
    param_grid: ParamGrid
    n_iter: int = Field(10, ge=1)
    cv: int = Field(3, ge=2)
    scoring: str | None = None
    seed: int = 0
    parallel: Literal["none", "dask"] = Field(
        "none",
        description="dask: trials on a Dask cluster; the scheduler address comes from the "
        "GITOPS_ML_DASK_ADDRESS environment variable of the machine running the job (else a LocalCluster)",
    )
    # Not configurable: refused with a reason rather than as an unknown key.
    dask_address: SkipJsonSchema[Any] = Field(None, exclude=True)
    n_workers: int = Field(2, ge=1)

    @field_validator("dask_address")
    @classmethod
    def _no_endpoint(cls, value: Any) -> None:
        if value is not None:
            raise _refuse(
                "endpoints never come from the repository (a PR could send the training data to, and "
                "unpickle results from, any scheduler): set GITOPS_ML_DASK_ADDRESS on the machine "
                "that runs the job"
            )
        return None


class EstimatorConfig(StrictModel):
    class_path: str = Field(description="import path, e.g. sklearn.ensemble.HistGradientBoostingClassifier")
    params: EstimatorParams = Field(default_factory=dict)
    search: SearchConfig | None = None
    threads: int | None = Field(
        1,
        ge=1,
        description="OpenMP/BLAS threads for fitting; None = all cores (oversubscribes a shared runner)",
    )

    @field_validator("class_path")
    @classmethod
    def _allowed_class_path(cls, value: str) -> str:
        allowed = value in EXTRA_ALLOWED_ESTIMATORS or value.startswith(ALLOWED_ESTIMATOR_PREFIXES)
        if not allowed or not all(_IDENTIFIER.fullmatch(part) for part in value.split(".")):
            raise _refuse(
                "'{value}' is not allowed; use a scikit-learn class such as "
                "sklearn.ensemble.HistGradientBoostingClassifier (only types the model store can load "
                "safely are accepted)",
                value=value[:120],
            )
        return value


class BootstrapConfig(StrictModel):
    n_resamples: int = Field(1000, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0


def keyword_name(name: str) -> str:
    """A keyword argument of a deepchecks check or condition: a public identifier."""
    if not _IDENTIFIER.fullmatch(name) or name.startswith("_"):
        raise _refuse("'{name}' is not a keyword argument name (a public identifier)", name=name[:80])
    return name


def condition_name(name: str) -> str:
    if not re.fullmatch(r"add_condition_[a-z0-9_]+", name):
        raise _refuse(
            "'{name}' is not a condition: conditions are the check's add_condition_* methods", name=name[:80]
        )
    return name


def keyword_value(value: Any) -> Any:
    """A plain value, or a flat mapping of names to plain values (e.g. deepchecks `scorers`)."""
    if isinstance(value, dict):
        return {str(_plain_scalar(k)): plain_value(v) for k, v in value.items()}
    return plain_value(value)


# Same vocabulary as estimator params: deepchecks runs in the trusted promotion job too.
CheckKwargs = dict[
    Annotated[str, AfterValidator(keyword_name)], Annotated[Any, AfterValidator(keyword_value)]
]


class CheckSpec(StrictModel):
    """One deepchecks check, chosen deliberately (the default suites are too slow on big data)."""

    check: str = Field(
        description="deepchecks check class name, e.g. FeatureDrift", pattern=r"^[A-Z][A-Za-z0-9]*$"
    )
    params: CheckKwargs = Field(
        default_factory=dict,
        description="keyword arguments of the check: " + _PLAIN + " or flat mappings of them",
    )
    conditions: dict[Annotated[str, AfterValidator(condition_name)], CheckKwargs] = Field(
        default_factory=dict, description="condition method name -> kwargs; empty uses the check's defaults"
    )
    blocking: bool = Field(False, description="a failed condition fails the gates")


class SuiteConfig(StrictModel):
    enabled: bool = True
    checks: list[CheckSpec] = Field(default_factory=list)


class DeepchecksConfig(StrictModel):
    enabled: bool = True
    sample_size: int = Field(
        10_000, ge=100, description="rows per dataset passed to deepchecks (seeded sample)"
    )
    random_state: int = 0
    data_integrity: SuiteConfig = SuiteConfig()
    train_test_validation: SuiteConfig = SuiteConfig()
    model_evaluation: SuiteConfig = SuiteConfig()


class CostsConfig(StrictModel):
    """What one decision costs (a negative value is a gain); which keys apply depends on the task.

    binary: the four outcomes; multiclass: `matrix[true class][predicted class]` (a pair not
    listed costs 0); regression: the cost per unit of error below and above the truth.
    Checked against the task (and the target's classes) by `evaluation.costs.check_costs`.
    """

    false_positive: float | None = Field(None, description="binary: a negative row predicted positive")
    false_negative: float | None = Field(None, description="binary: a positive row predicted negative")
    true_positive: float | None = Field(None, description="binary (often negative: a gain)")
    true_negative: float | None = Field(None, description="binary")
    matrix: dict[int | str, dict[int | str, float]] | None = Field(
        None, description="multiclass: true class -> predicted class -> cost; pairs not listed cost 0"
    )
    under_prediction: float | None = Field(None, description="regression: cost per unit predicted too low")
    over_prediction: float | None = Field(None, description="regression: cost per unit predicted too high")
    unit: str = Field("cost", description="what the numbers are in, for the report (e.g. EUR)")


class EvaluationConfig(StrictModel):
    primary_metric: str = "roc_auc"
    metrics: list[str] | None = Field(None, description="None = every metric of the task")
    segments: list[str] = Field(
        default_factory=list, description="categorical columns for per-segment metrics"
    )
    min_segment_size: int = Field(50, ge=1)
    bootstrap: BootstrapConfig = BootstrapConfig()
    deepchecks: DeepchecksConfig = DeepchecksConfig()
    costs: CostsConfig | None = Field(None, description="decision costs: enables the expected_cost metric")
    threshold_validation_size: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="binary with costs: share of the TRAINING rows held out to choose the decision "
        "threshold by cost (the newest rows with a time column, else a stratified sample); never the holdout",
    )


class GatesConfig(StrictModel):
    """Policy as code: what a candidate must satisfy to be promoted."""

    minimums: dict[str, float] = Field(default_factory=dict, description="metric -> lowest acceptable value")
    maximums: dict[str, float] = Field(
        default_factory=dict, description="metric -> highest acceptable (losses)"
    )
    max_regression: dict[str, float] = Field(
        default_factory=dict, description="metric -> largest allowed worsening vs production (point estimate)"
    )
    required_improvement: dict[str, float] = Field(
        default_factory=dict, description="metric -> improvement vs production the CI lower bound must exceed"
    )
    max_segment_regression: float | None = Field(
        None,
        ge=0,
        description="primary metric, per segment: fails a segment worse by more than this whose paired "
        "bootstrap interval also shows it worse",
    )
    fail_on_contract_violation: bool = True
    fail_on_blocking_deepchecks: bool = True


# Endpoints (buckets, hosts, databases) and paths outside the repository come from the machine
# that runs the job, never from a PR: these variables override the config's in-repository defaults.
MODEL_STORE_URL_ENV = "GITOPS_ML_MODEL_STORE_URL"
PREDICTION_STORE_URL_ENV = "GITOPS_ML_PREDICTION_STORE_URL"


def _inside_repository(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return bool(path) and not path.startswith(("/", "~")) and ".." not in parts and ":" not in path


class RegistryConfig(StrictModel):
    pointer: Path = Path("deploy/production.yaml")
    history: Path = Path("deploy/history.yaml")
    store_url: str = Field(
        ".model-store",
        description="a folder inside the repository or github-release:// (the repository's own releases); "
        f"any other store (s3://, gs://, a folder elsewhere) is set by {MODEL_STORE_URL_ENV} on the "
        "machine that runs the job",
    )
    lock_timeout_s: float = 60.0

    @field_validator("store_url")
    @classmethod
    def _no_store_endpoint(cls, value: str) -> str:
        if value.startswith("github-release://") or _inside_repository(value):
            return value
        raise _refuse(
            "'{value}': a model store elsewhere never comes from the repository (a PR could publish "
            "the model to, or load one from, any host or path): set "
            f"{MODEL_STORE_URL_ENV} on the machine that runs the job; in config only a folder "
            "inside the repository or github-release://",
            value=value[:80],
        )


def model_store_url(registry: RegistryConfig) -> str:
    """The machine's GITOPS_ML_MODEL_STORE_URL, else the config's in-repository store."""
    return os.environ.get(MODEL_STORE_URL_ENV, "").strip() or registry.store_url


def prediction_store_url(serving: ServingConfig, explicit: str | None = None) -> str:
    """--store-url, else the machine's GITOPS_ML_PREDICTION_STORE_URL, else the config's SQLite file."""
    return explicit or os.environ.get(PREDICTION_STORE_URL_ENV, "").strip() or serving.prediction_store_url


class ServingConfig(StrictModel):
    prediction_store_url: str = Field(
        "sqlite:///predictions.db",
        description="a SQLite file inside the repository (sqlite:///relative.db); a database server "
        f"or a file elsewhere is set by {PREDICTION_STORE_URL_ENV} (or --store-url) on the machine",
    )
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_batch_rows: int = Field(10_000, ge=1)
    log_batch_size: int = Field(256, ge=1)
    log_flush_interval_s: float = Field(0.2, gt=0)
    reload_interval_s: float = Field(5.0, gt=0)

    @field_validator("prediction_store_url")
    @classmethod
    def _no_database_endpoint(cls, value: str) -> str:
        if value == "sqlite://" or (
            value.startswith("sqlite:///")
            and _inside_repository(value.removeprefix("sqlite:///").split("?")[0])
        ):
            return value
        raise _refuse(
            "'{value}': a database server or a file elsewhere never comes from the repository "
            "(a PR could send the logged predictions and labels anywhere): set "
            f"{PREDICTION_STORE_URL_ENV} (or pass --store-url) on the machine that runs the job; in "
            "config only sqlite:///FILE inside the repository",
            value=value[:80],
        )


class DriftThresholds(StrictModel):
    psi: float = 0.2
    ks_pvalue: float = 0.01
    chi2_pvalue: float = 0.01
    prediction_psi: float = 0.2
    min_effect: float = Field(
        0.1,
        ge=0,
        le=1,
        description="KS D / total variation distance a significant KS/chi2 test must reach to count as drift",
    )


class EarlyWarningConfig(StrictModel):
    """Performance estimated from a classifier's own probabilities before labels arrive."""

    enabled: bool = Field(
        True, description="estimate each window's performance from the served probabilities"
    )
    metric: str | None = Field(
        None,
        description="metric to estimate; None = monitoring.performance_metric (binary), accuracy (multiclass); "
        "regression estimates nothing",
    )
    max_calibration_error: float = Field(
        0.05,
        ge=0,
        le=1,
        description="expected calibration error on the reference (holdout) above this = estimate not valid",
    )
    draws: int = Field(300, ge=50, le=5000, description="label vectors drawn from the probabilities")
    retrain: bool = Field(
        False,
        description="true = a window with an early warning counts as a bad window for the retraining policy",
    )


class MonitoringConfig(StrictModel):
    window: str = Field("7D", description="pandas offset alias of one monitoring window")
    min_window_rows: int = Field(500, ge=1)
    min_labelled_rows: int = Field(200, ge=1)
    thresholds: DriftThresholds = DriftThresholds()
    max_drifted_features: int = Field(2, ge=0, description="more drifted features than this = a bad window")
    performance_metric: str = "roc_auc"
    max_performance_drop: float = Field(
        0.05, ge=0, description="lower CI bound of (baseline - window) above this = decayed"
    )
    consecutive_bad_windows: int = Field(2, ge=1)
    cooldown_days: float = Field(7.0, ge=0)
    psi_bins: int = Field(10, ge=2)
    retrain_branch_prefix: str = "retrain/"
    retrain_label: str = "retraining"
    early_warning: EarlyWarningConfig = EarlyWarningConfig()


class ForgeConfig(StrictModel):
    repository: str | None = Field(None, description="owner/name; None = from the git remote")
    # Not configurable: the API host is GITHUB_API_URL or the remote's own host (forge.github_api.api_url_for).
    api_url: SkipJsonSchema[Any] = Field(None, exclude=True)
    token_secret_block: str | None = Field(None, description="Prefect Secret block holding the token")
    base_branch: str = "main"

    @field_validator("api_url")
    @classmethod
    def _no_api_host(cls, value: Any) -> None:
        if value is not None:
            raise _refuse(
                "the GitHub API host never comes from the repository (a PR could send the token "
                "anywhere): it is GITHUB_API_URL on the machine that runs the job, checked against "
                "the repository's remote (GitHub Enterprise: https://HOST/api/v3 of the remote's HOST)"
            )
        return None


class Settings(StrictModel):
    dataset: DatasetConfig
    features: FeaturesConfig
    split: SplitConfig = SplitConfig()
    estimator: EstimatorConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    gates: GatesConfig = GatesConfig()
    registry: RegistryConfig = RegistryConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    forge: ForgeConfig = ForgeConfig()

    def config_hash(self) -> str:
        """sha256 of the resolved config, stable across key order; recorded with every model."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def load_settings(config_dir: Path | str = DEFAULT_CONFIG_DIR) -> Settings:
    """Read every `*.yaml` in `config_dir` into Settings; raise ConfigError naming file and key path."""
    parsed = parse_settings(config_dir)
    if parsed.problems or parsed.settings is None:
        raise ConfigError("invalid config:\n  " + "\n  ".join(parsed.problems))
    return parsed.settings


@dataclass(frozen=True)
class ParsedConfig:
    """What `parse_settings` read: every problem found, and whatever validated.

    `sections` holds each section that validated on its own, so semantic checks can still run on
    `evaluation` when `gates` is broken: a user sees every mistake in one pass.
    """

    config_dir: Path
    settings: Settings | None
    sections: dict[str, Any]
    files: dict[str, Path]
    problems: list[str]

    def file_of(self, section: str) -> Path:
        return _file_of(section, self.files, self.config_dir)


def parse_settings(config_dir: Path | str = DEFAULT_CONFIG_DIR) -> ParsedConfig:
    """Read and validate every config file, collecting every problem instead of stopping at the first."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        return ParsedConfig(
            config_dir=config_dir,
            settings=None,
            sections={},
            files={},
            problems=[f"{config_dir}: config folder not found"],
        )
    raw: dict[str, Any] = {}
    files: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(config_dir.glob("*.y*ml")):
        section = path.stem
        if section not in Settings.model_fields:
            known = ", ".join(Settings.model_fields)
            problems.append(f"{path}: unknown config file '{path.name}' (known sections: {known})")
            continue
        try:
            data = read_yaml(path, ConfigError)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{path}: expected a mapping of keys, got {type(data).__name__}")
            continue
        raw[section] = data
        files[section] = path
    settings: Settings | None = None
    sections: dict[str, Any] = {}
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            section = str(error["loc"][0]) if error["loc"] else ""
            problems.append(
                f"{_file_of(section, files, config_dir)}: {key_path(error['loc'], raw)}: {error['msg']}"
            )
    if settings is not None:
        sections = {name: getattr(settings, name) for name in Settings.model_fields}
        problems.extend(_cross_reference_problems(settings, files, config_dir))
    else:
        for name, field in Settings.model_fields.items():
            model = field.annotation
            if name not in raw and field.is_required():
                continue
            try:
                sections[name] = model.model_validate(raw.get(name, {}))  # type: ignore[union-attr]
            except ValidationError:
                continue  # already reported above
    if problems:
        settings = None
    return ParsedConfig(
        config_dir=config_dir, settings=settings, sections=sections, files=files, problems=problems
    )


def _file_of(section: str, files: dict[str, Path], config_dir: Path) -> Path:
    """The file a section was read from, or the one that would hold it (a missing section)."""
    return files.get(section, config_dir / f"{section}.yaml")


def _cross_reference_problems(settings: Settings, files: dict[str, Path], config_dir: Path) -> list[str]:
    """Rules spanning sections that a single model cannot see."""
    problems = []
    features = settings.features
    for name in settings.evaluation.segments:
        if name not in features.categorical:
            problems.append(
                f"{_file_of('evaluation', files, config_dir)}: evaluation.segments: "
                f"'{name}' is not a categorical feature"
            )
    if settings.dataset.target in features.all:
        problems.append(
            f"{_file_of('features', files, config_dir)}: features: target "
            f"'{settings.dataset.target}' must not be a feature"
        )
    if settings.split.strategy == "time" and not settings.dataset.time_column:
        problems.append(
            f"{_file_of('split', files, config_dir)}: split.strategy: 'time' needs dataset.time_column"
        )
    return problems


def settings_json_schema() -> dict[str, Any]:
    return Settings.model_json_schema()
