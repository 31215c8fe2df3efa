"""deepchecks suites built from an explicit list of checks in config.

The default deepchecks suites are too slow on real data (model_evaluation took 85 s at
100k rows here, mostly WeakSegmentsPerformance), so a suite here is exactly the checks listed under
`evaluation.deepchecks.<suite>.checks`, each on a seeded sample of at most `sample_size` rows.

A fitted model is scored once per dataset and deepchecks gets the predictions (its documented
static-predictions input); only checks that need the model object itself get the model.

Every outcome is explicit: a check that crashed is "error", one that does not apply to the
inputs (no label, no model, too few rows) is "not_run", one that ran without conditions is
"info". Only a check whose conditions all passed is "passed". The runners never raise because a
check failed; they raise `ConfigError` for names in config that do not exist.

deepchecks takes ~3.5 s to import, so it is imported inside functions only.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from gitops_ml.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from gitops_ml.config import CheckSpec, DeepchecksConfig, SuiteConfig

Status = Literal["passed", "warned", "failed", "error", "not_run", "info"]
# Worst first: a check run on train and test gets the worst status of its results.
STATUSES: tuple[Status, ...] = ("failed", "error", "not_run", "warned", "passed", "info")
# Statuses of a blocking check that fail the gates. "warned" is included because deepchecks
# hard-codes WARN as the only failing category of many conditions (DataDuplicates,
# StringMismatch, ...): a condition the config chose and marked blocking did not hold. A check
# that could not be evaluated must not let a candidate through either (fail closed).
BLOCKING_STATUSES: frozenset[str] = frozenset({"failed", "warned", "error", "not_run"})

SuiteName = Literal["data_integrity", "train_test_validation", "model_evaluation"]
SUITES: tuple[SuiteName, ...] = ("data_integrity", "train_test_validation", "model_evaluation")
_TITLES = {
    "data_integrity": "Data Integrity",
    "train_test_validation": "Train Test Validation",
    "model_evaluation": "Model Evaluation",
}

# The conditions deepchecks' own default suites add (deepchecks 0.19.1,
# deepchecks/tabular/suites/default_suites.py); a check listed in config with no
# `conditions` gets these. Checks missing here have no default condition and report "info".
# tests/quality check this table against deepchecks' full_suite, so a version bump that
# changes the defaults is noticed.
DEFAULT_CONDITIONS: dict[str, tuple[str, ...]] = {
    "IsSingleValue": ("add_condition_not_single_value",),
    "SpecialCharacters": ("add_condition_ratio_of_special_characters_less_or_equal",),
    "MixedNulls": ("add_condition_different_nulls_less_equal_to",),
    "MixedDataTypes": ("add_condition_rare_type_ratio_not_in_range",),
    "StringMismatch": ("add_condition_no_variants",),
    "DataDuplicates": ("add_condition_ratio_less_or_equal",),
    "StringLengthOutOfBounds": ("add_condition_ratio_of_outliers_less_or_equal",),
    "ConflictingLabels": ("add_condition_ratio_of_conflicting_labels_less_or_equal",),
    "FeatureLabelCorrelation": ("add_condition_feature_pps_less_than",),
    "FeatureFeatureCorrelation": ("add_condition_max_number_of_pairs_above_threshold",),
    "IdentifierLabelCorrelation": ("add_condition_pps_less_or_equal",),
    "DatasetsSizeComparison": ("add_condition_test_train_size_ratio_greater_than",),
    "NewLabelTrainTest": ("add_condition_new_labels_number_less_or_equal",),
    "NewCategoryTrainTest": ("add_condition_new_category_ratio_less_or_equal",),
    "StringMismatchComparison": ("add_condition_no_new_variants",),
    "DateTrainTestLeakageDuplicates": ("add_condition_leakage_ratio_less_or_equal",),
    "DateTrainTestLeakageOverlap": ("add_condition_leakage_ratio_less_or_equal",),
    "IndexTrainTestLeakage": ("add_condition_ratio_less_or_equal",),
    "TrainTestSamplesMix": ("add_condition_duplicates_ratio_less_or_equal",),
    "FeatureLabelCorrelationChange": (
        "add_condition_feature_pps_difference_less_than",
        "add_condition_feature_pps_in_train_less_than",
    ),
    "FeatureDrift": ("add_condition_drift_score_less_than",),
    "LabelDrift": ("add_condition_drift_score_less_than",),
    "MultivariateDrift": ("add_condition_overall_drift_value_less_than",),
    "TrainTestPerformance": ("add_condition_train_test_relative_degradation_less_than",),
    "RocReport": ("add_condition_auc_greater_than",),
    "PredictionDrift": ("add_condition_drift_score_less_than",),
    "SimpleModelComparison": ("add_condition_gain_greater_than",),
    "WeakSegmentsPerformance": ("add_condition_segments_relative_performance_greater_than",),
    "RegressionErrorDistribution": (
        "add_condition_kurtosis_greater_than",
        "add_condition_systematic_error_ratio_to_rmse_less_than",
    ),
    "UnusedFeatures": ("add_condition_number_of_high_variance_unused_features_less_or_equal",),
    "BoostingOverfit": ("add_condition_test_score_percent_decline_less_than",),
    "ModelInferenceTime": ("add_condition_inference_time_less_than",),
}


class ConditionOutcome(NamedTuple):
    name: str
    status: Literal["passed", "warned", "failed", "error"]
    details: str


@dataclass(frozen=True)
class CheckOutcome:
    """What one configured check concluded (over train and test when it ran on both)."""

    check: str
    status: Status
    blocking: bool
    conditions: tuple[ConditionOutcome, ...] = ()
    error: str | None = None

    @property
    def blocks(self) -> bool:
        """True when this outcome fails the gates: blocking, and not shown to hold."""
        return self.blocking and self.status in BLOCKING_STATUSES

    def __str__(self) -> str:
        return f"{self.check} ({self.status})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "blocking": self.blocking,
            "blocks": self.blocks,
            "conditions": [c._asdict() for c in self.conditions],
            "error": self.error,
        }


@dataclass(frozen=True)
class SuiteSummary:
    """Result of one suite; `sample_sizes` are the rows handed to deepchecks per dataset."""

    suite: str
    checks: tuple[CheckOutcome, ...] = ()
    sample_sizes: dict[str, int] = field(default_factory=dict)
    input_sizes: dict[str, int] = field(default_factory=dict)
    html_path: Path | None = None
    seconds: float = 0.0
    skipped: bool = False

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(c.status for c in self.checks)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def blocking_failures(self) -> tuple[CheckOutcome, ...]:
        return tuple(c for c in self.checks if c.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "skipped": self.skipped,
            "sample_sizes": dict(self.sample_sizes),
            "input_sizes": dict(self.input_sizes),
            "seconds": round(self.seconds, 3),
            "html_path": str(self.html_path) if self.html_path else None,
            "counts": self.counts,
            "blocking_failures": [c.check for c in self.blocking_failures],
            "checks": [c.to_dict() for c in self.checks],
        }


# --------------------------------------------------------------------------- config resolution


def _checks_module() -> Any:
    import deepchecks.tabular.checks as checks

    return checks


def _where(suite: str, index: int | None = None, key: str | None = None) -> str:
    path = f"evaluation.deepchecks.{suite}.checks"
    if index is not None:
        path += f"[{index}]"
    if key:
        path += f".{key}"
    return path


def _check_class(name: str, suite: str, index: int) -> type:
    module = _checks_module()
    known = list(getattr(module, "__all__", []))
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{_where(suite, index, 'check')}: unknown deepchecks check '{name}' "
            f"(a class name from deepchecks.tabular.checks){hint}"
        )
    return getattr(module, name)


def _condition_methods(cls: type, spec: CheckSpec, suite: str, index: int) -> list[tuple[str, dict[str, Any]]]:
    """Condition methods to call, with kwargs checked against their signatures."""
    if not spec.conditions:
        return [(name, {}) for name in DEFAULT_CONDITIONS.get(spec.check, ())]
    methods = []
    for method_name, kwargs in spec.conditions.items():
        method = getattr(cls, method_name, None) if method_name.startswith("add_condition_") else None
        if method is None:
            available = sorted(m for m in dir(cls) if m.startswith("add_condition_"))
            raise ConfigError(
                f"{_where(suite, index, 'conditions')}: {spec.check} has no condition '{method_name}' "
                f"(available: {', '.join(available) or 'none'})"
            )
        try:
            inspect.signature(method).bind(None, **(kwargs or {}))
        except TypeError as exc:
            raise ConfigError(
                f"{_where(suite, index, 'conditions')}.{method_name}: {exc} "
                f"(signature: {method_name}{inspect.signature(method)})"
            ) from exc
        methods.append((method_name, dict(kwargs or {})))
    return methods


def _check_params(cls: type, spec: CheckSpec, random_state: int) -> dict[str, Any]:
    params = dict(spec.params)
    # Seed every check that samples, unless config chose a seed for it.
    if "random_state" in inspect.signature(cls.__init__).parameters:
        params.setdefault("random_state", random_state)
    return params


def _param_names_problem(cls: type, params: dict[str, Any]) -> str | None:
    signature = inspect.signature(cls.__init__)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        # Most checks take **kwargs and silently ignore unknown names; check what we can.
        accepted = {n for n, p in signature.parameters.items() if p.kind is not p.VAR_KEYWORD}
        accepted |= {"n_samples", "random_state", "columns", "ignore_columns", "n_top_columns", "n_to_show"}
        unknown = sorted(set(params) - accepted - {"self"})
        return f"unknown parameter(s) {unknown}" if unknown else None
    try:
        signature.bind(None, **params)
    except TypeError as exc:
        return str(exc)
    return None


def _suite_kind_problem(cls: type, suite: str) -> str | None:
    from deepchecks.tabular import Suite
    from deepchecks.tabular.base_checks import ModelOnlyCheck, TrainTestCheck

    if not issubclass(cls, Suite.supported_checks()):
        return "cannot run in a suite (e.g. it compares several models)"
    needs_model = issubclass(cls, ModelOnlyCheck) or ".model_evaluation." in cls.__module__
    if suite != "model_evaluation" and needs_model:
        return "needs a model; list it under model_evaluation"
    if suite == "data_integrity" and issubclass(cls, TrainTestCheck):
        return "compares train and test; list it under train_test_validation or model_evaluation"
    return None


def validate_deepchecks_config(cfg: DeepchecksConfig) -> None:
    """Check every check class, parameter name and condition in config without running anything.

    Raises ConfigError listing every problem found, each with its `evaluation.deepchecks` path.
    """
    problems: list[str] = []
    for suite in SUITES:
        suite_cfg: SuiteConfig = getattr(cfg, suite)
        for index, spec in enumerate(suite_cfg.checks):
            try:
                cls = _check_class(spec.check, suite, index)
                methods = _condition_methods(cls, spec, suite, index)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            where = _where(suite, index)
            kind = _suite_kind_problem(cls, suite)
            if kind:
                problems.append(f"{where}: {spec.check} {kind}")
            params = _check_params(cls, spec, cfg.random_state)
            names = _param_names_problem(cls, params)
            if names:
                problems.append(f"{_where(suite, index, 'params')}: {spec.check}: {names}")
                continue
            try:
                _instantiate(cls, params, methods)
            except Exception as exc:  # deepchecks validates values in __init__ / add_condition_*
                problems.append(f"{where}: {spec.check} rejects its params/conditions: {_describe(exc)}")
    if problems:
        raise ConfigError("invalid deepchecks config:\n  " + "\n  ".join(problems))


def _instantiate(cls: type, params: dict[str, Any], methods: list[tuple[str, dict[str, Any]]]) -> Any:
    check = cls(**params)
    for method_name, kwargs in methods:
        getattr(check, method_name)(**kwargs)
    return check


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- data


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df.sample(n=n, random_state=seed) if len(df) > n else df


def _dataset(
    df: pd.DataFrame,
    *,
    label: str | None,
    features: Sequence[str],
    cat_features: Sequence[str],
    task: str | None,
    name: str,
) -> Any:
    from deepchecks.tabular import Dataset

    columns = [*features, *([label] if label else [])]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"deepchecks {name} data: missing column(s) {missing} (have {list(df.columns)[:20]})")
    if len(df) == 0:
        raise DataError(f"deepchecks {name} data: no rows")
    not_features = sorted(set(cat_features) - set(features))
    if not_features:
        raise ConfigError(f"deepchecks: categorical feature(s) {not_features} are not in the feature list")
    frame = df.loc[:, columns].copy()
    label_type = None
    if label:
        frame[label], label_type = _label_for(frame[label], task)
    return Dataset(
        frame,
        label=label,
        features=list(features),
        cat_features=list(cat_features),
        label_type=label_type,
        dataset_name=name,
    )


def _label_for(y: pd.Series, task: str | None) -> tuple[pd.Series, str | None]:
    """Binary labels as int: deepchecks infers the task and the classes from the label dtype."""
    import pandas as pd

    values = y.dropna().unique()
    binary = task == "binary" or (task is None and len(values) == 2)
    if binary and (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
        if y.isna().any():
            return y.astype("float64"), "binary"  # int cannot hold NaN; deepchecks skips NaN labels
        return y.astype("int64"), "binary"
    return y, task if task in ("binary", "multiclass", "regression") else None


# --------------------------------------------------------------------------- running


@contextmanager
def _deepchecks_run_context() -> Iterator[None]:
    """Settings for the duration of a run only.

    - deepchecks' progress bars (INFO level) and its pandas FutureWarnings are hidden;
    - OpenMP is limited to one thread: deepchecks makes many small predict calls and
      HistGradientBoosting's OpenMP threads made them ~15x slower on a busy 2-core machine
      (model_evaluation at 10k rows: 24 s -> 1.5 s wall).
    """
    from deepchecks.utils.logger import get_verbosity, set_verbosity
    from threadpoolctl import threadpool_limits

    before = get_verbosity()
    set_verbosity(max(before, logging.WARNING))
    try:
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"deepchecks\.")
            yield
    finally:
        set_verbosity(before)


def _outcome_from_results(spec: CheckSpec, results: list[Any]) -> CheckOutcome:
    from deepchecks.core.check_result import CheckFailure
    from deepchecks.core.errors import DeepchecksNotSupportedError, NotEnoughSamplesError

    if not results:
        return CheckOutcome(spec.check, "not_run", spec.blocking, error="deepchecks returned no result")
    statuses: list[Status] = []
    conditions: list[ConditionOutcome] = []
    errors: list[str] = []
    several = len(results) > 1
    for result in results:
        where = _dataset_suffix(result) if several else ""
        if isinstance(result, CheckFailure):
            not_applicable = isinstance(result.exception, (DeepchecksNotSupportedError, NotEnoughSamplesError))
            statuses.append("not_run" if not_applicable else "error")
            errors.append(f"{where}{_describe(result.exception)}")
            continue
        if not result.conditions_results:
            statuses.append("info")
            continue
        for cond in result.conditions_results:
            status = _CATEGORY_STATUS[cond.category.value]
            conditions.append(ConditionOutcome(f"{where}{cond.name}", status, str(cond.details or "")))
            statuses.append(status)
    worst = min(statuses, key=STATUSES.index)
    return CheckOutcome(
        spec.check, worst, spec.blocking, tuple(conditions), error="; ".join(errors) or None
    )


_CATEGORY_STATUS: dict[str, Literal["passed", "warned", "failed", "error"]] = {
    "PASS": "passed",
    "WARN": "warned",
    "FAIL": "failed",
    "ERROR": "error",
}


def _dataset_suffix(result: Any) -> str:
    header = str(getattr(result, "header", "") or "")
    for kind in ("Train", "Test"):
        if header.endswith(f"{kind} Dataset"):
            return f"[{kind.lower()}] "
    return ""


def _write_html(suite_result: Any, path: Path) -> Path:
    """Write the HTML report atomically (deepchecks would rename on collision, so use a handle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            suite_result.save_as_html(handle, as_widget=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _run_suite(
    suite: SuiteName,
    cfg: DeepchecksConfig,
    frames: dict[str, pd.DataFrame],
    *,
    label: str | None,
    features: Sequence[str],
    cat_features: Sequence[str],
    task: str | None,
    model: Any,
    html_path: Path | None,
) -> SuiteSummary:
    suite_cfg: SuiteConfig = getattr(cfg, suite)
    input_sizes = {kind: len(df) for kind, df in frames.items()}
    if not cfg.enabled or not suite_cfg.enabled:
        return SuiteSummary(suite, input_sizes=input_sizes, skipped=True)
    if not suite_cfg.checks:
        return SuiteSummary(suite, input_sizes=input_sizes)

    started = time.perf_counter()
    # Resolve every name first, so a typo in config fails before minutes of work.
    resolved = []
    for index, spec in enumerate(suite_cfg.checks):
        cls = _check_class(spec.check, suite, index)
        resolved.append((spec, cls, _condition_methods(cls, spec, suite, index)))

    from deepchecks.tabular import Suite

    outcomes: list[CheckOutcome | None] = []
    runnable: list[tuple[int, Any]] = []
    for position, (spec, cls, methods) in enumerate(resolved):
        params = _check_params(cls, spec, cfg.random_state)
        # deepchecks swallows unknown keyword arguments; a typo must not pass silently.
        problem = _param_names_problem(cls, params)
        if problem:
            outcomes.append(CheckOutcome(spec.check, "error", spec.blocking, error=f"params: {problem}"))
            continue
        try:
            check = _instantiate(cls, params, methods)
        except Exception as exc:  # bad param values are a failed check, not a crash of the run
            outcomes.append(CheckOutcome(spec.check, "error", spec.blocking, error=_describe(exc)))
            continue
        if not isinstance(check, Suite.supported_checks()):
            error = f"{spec.check} cannot run in a deepchecks Suite (it compares several models)"
            outcomes.append(CheckOutcome(spec.check, "error", spec.blocking, error=error))
            continue
        outcomes.append(None)
        runnable.append((position, check))

    samples = {kind: _sample(df, cfg.sample_size, cfg.random_state) for kind, df in frames.items()}
    if model is not None:
        samples = _distinct_indexes(samples)
    datasets = {
        kind: _dataset(df, label=label, features=features, cat_features=cat_features, task=task, name=kind)
        for kind, df in samples.items()
    }
    suite_result = None
    if runnable:
        title = f"{_TITLES[suite]} (gitops-ml)"
        run_kwargs = {
            "train_dataset": datasets.get("train", datasets.get("data")),
            "test_dataset": datasets.get("test"),
            # Displays are only needed for the HTML report and cost most of the time.
            "with_display": html_path is not None,
        }
        suite_result, failed = _run_checks(title, [check for _, check in runnable], model, run_kwargs)
        by_check: dict[int, list[Any]] = {id(check): [] for _, check in runnable}
        for result in suite_result.results if suite_result else ():
            by_check.setdefault(id(result.check), []).append(result)
        for position, check in runnable:
            spec = resolved[position][0]
            if failed:
                outcomes[position] = CheckOutcome(spec.check, "error", spec.blocking, error=failed)
            else:
                outcomes[position] = _outcome_from_results(spec, by_check[id(check)])

    written = _write_html(suite_result, html_path) if html_path is not None and suite_result else None
    return SuiteSummary(
        suite,
        checks=tuple(o for o in outcomes if o is not None),
        sample_sizes={kind: len(df) for kind, df in samples.items()},
        input_sizes=input_sizes,
        html_path=written,
        seconds=time.perf_counter() - started,
    )


# Checks that need the model object itself, not only its predictions (they refit, time,
# permute or inspect it). All other checks get predictions computed once: deepchecks does not
# cache them and predicts again in every check (19 HistGradientBoosting predict calls instead
# of 4 for the churn model_evaluation suite; 2.4 s -> 1.0 s at 5k + 5k rows).
MODEL_OBJECT_CHECKS = frozenset(
    {"BoostingOverfit", "ModelInferenceTime", "UnusedFeatures", "ModelInfo", "SegmentPerformance"}
)


def _distinct_indexes(samples: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Static predictions are matched to rows by index: make it unique within and across datasets."""
    import pandas as pd

    out, start = {}, 0
    for kind, df in samples.items():
        out[kind] = df.set_axis(pd.RangeIndex(start, start + len(df)))
        start += len(df)
    return out


def _predictions(model: Any, run_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Predict once per dataset, in deepchecks' documented format for static predictions."""
    out: dict[str, Any] = {}
    for kind, key in (("train", "train_dataset"), ("test", "test_dataset")):
        dataset = run_kwargs.get(key)
        if dataset is None:
            continue
        features = dataset.features_columns
        out[f"y_pred_{kind}"] = model.predict(features)
        if hasattr(model, "predict_proba"):
            out[f"y_proba_{kind}"] = model.predict_proba(features)
    classes = getattr(model, "classes_", None)
    if classes is not None:
        out["model_classes"] = sorted(classes.tolist())
    return out


def _run_checks(
    title: str, checks: list[Any], model: Any, run_kwargs: dict[str, Any]
) -> tuple[Any, str | None]:
    """Run checks as one or two deepchecks suites; returns (SuiteResult, error for all or None)."""
    from deepchecks.core.suite import SuiteResult
    from deepchecks.tabular import Suite

    needs_model = [model is not None and type(c).__name__ in MODEL_OBJECT_CHECKS for c in checks]
    with_model = [c for c, needs in zip(checks, needs_model, strict=True) if needs]
    with_predictions = [c for c, needs in zip(checks, needs_model, strict=True) if not needs]
    results: list[Any] = []
    with _deepchecks_run_context():
        if with_predictions:
            static: dict[str, Any] = {}
            if model is not None:
                try:
                    static = _predictions(model, run_kwargs)
                except Exception as exc:  # the model cannot score this data: every check is affected
                    return None, f"model could not predict on the data: {_describe(exc)}"
            results += Suite(title, *with_predictions).run(**run_kwargs, **static).results
        if with_model:
            results += Suite(title, *with_model).run(**run_kwargs, model=model).results
    return SuiteResult(title, results), None


def run_data_integrity(
    df: pd.DataFrame,
    *,
    label: str | None,
    features: list[str],
    cat_features: list[str],
    cfg: DeepchecksConfig,
    html_path: Path | None = None,
    task: str | None = None,
) -> SuiteSummary:
    """Single-dataset integrity checks (duplicates, mixed nulls, conflicting labels, ...).

    `label` may be None for unlabelled data; label-needing checks then report "not_run".
    `task` ("binary"/"multiclass"/"regression") fixes deepchecks' task type; None = inferred.
    """
    return _run_suite(
        "data_integrity",
        cfg,
        {"data": df},
        label=label,
        features=features,
        cat_features=cat_features,
        task=task,
        model=None,
        html_path=html_path,
    )


def run_train_test_validation(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    *,
    label: str | None,
    features: list[str],
    cat_features: list[str],
    cfg: DeepchecksConfig,
    html_path: Path | None = None,
    task: str | None = None,
) -> SuiteSummary:
    """Train-vs-test checks (drift, new categories/labels, leakage) without a model."""
    return _run_suite(
        "train_test_validation",
        cfg,
        {"train": train_df, "test": test_df},
        label=label,
        features=features,
        cat_features=cat_features,
        task=task,
        model=None,
        html_path=html_path,
    )


def run_model_evaluation(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    model: Any,
    *,
    label: str,
    features: list[str],
    cat_features: list[str],
    cfg: DeepchecksConfig,
    html_path: Path | None = None,
    task: str | None = None,
) -> SuiteSummary:
    """Model checks on train and test; `model` is a fitted Pipeline that takes the raw features."""
    return _run_suite(
        "model_evaluation",
        cfg,
        {"train": train_df, "test": test_df},
        label=label,
        features=features,
        cat_features=cat_features,
        task=task,
        model=model,
        html_path=html_path,
    )
