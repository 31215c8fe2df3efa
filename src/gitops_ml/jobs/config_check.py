"""`config check`: every config file and the contract, checked together before any data is read.

The loader (`gitops_ml.config`) checks each file's shape; this adds the rules that need the task,
the metric registry, the deepchecks support table or the contract: a wrong metric name for the
task, a deepchecks check that cannot run for it, a positive label the target never takes. Every
problem is reported at once, each naming the file and the key path, so a pull request is fixed in
one round instead of failing 35 s into a PR check, one name at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.config import (
    DEFAULT_CONFIG_DIR,
    DatasetConfig,
    EvaluationConfig,
    FeaturesConfig,
    GatesConfig,
    MonitoringConfig,
    ParsedConfig,
    RegistryConfig,
    Settings,
    parse_settings,
)
from gitops_ml.contracts.model import Contract, load_contract
from gitops_ml.errors import ConfigError, ContractError

SUITES = ("data_integrity", "train_test_validation", "model_evaluation")
# The declared meaning of a time column: dates/times, or integer period numbers (never guessed).
TIME_TYPES = ("date", "timestamp", "integer")


@dataclass(frozen=True)
class ConfigCheck:
    """The outcome of `check_config`: the settings when everything passed, else every problem."""

    config_dir: Path
    settings: Settings | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems and self.settings is not None


def check_config(
    config_dir: Path | str = DEFAULT_CONFIG_DIR, *, check_challenger: bool = True
) -> ConfigCheck:
    """Load every config file and the contract and run every check; never raises for bad input.

    `check_challenger=False`: deploy/challenger.yaml is not part of the check, for the commands that
    must work whatever it holds (the monitor judges production and reports a refused challenger;
    `challenger retire` removes even an unreadable one)."""
    parsed = parse_settings(config_dir)
    problems = list(parsed.problems)
    dataset = parsed.sections.get("dataset")
    if isinstance(dataset, DatasetConfig):
        problems.extend(_metric_problems(parsed, dataset))
        problems.extend(_deepchecks_problems(parsed, dataset))
        problems.extend(_cost_problems(parsed, dataset))
        problems.extend(_dataset_problems(parsed, dataset))
    if check_challenger:
        problems.extend(_challenger_problems(parsed))
    settings = parsed.settings if not problems else None
    return ConfigCheck(config_dir=parsed.config_dir, settings=settings, problems=tuple(problems))


def load_checked_settings(
    config_dir: Path | str = DEFAULT_CONFIG_DIR, *, check_challenger: bool = True
) -> Settings:
    """Settings that passed every check; ConfigError listing every problem otherwise.

    Every command starts with this, so no command trains on a config `config check` refuses.
    """
    result = check_config(config_dir, check_challenger=check_challenger)
    if result.settings is None:
        raise ConfigError(format_problems(result.problems))
    return result.settings


def format_problems(problems: Sequence[str]) -> str:
    return f"invalid config ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(
        problems
    )


# --------------------------------------------------------------------------- challenger


def _challenger_problems(parsed: ParsedConfig) -> list[str]:
    """A challenger pointer in the PR is checked with the config (shape, fraction, not production's
    version or artifact), so a malformed one fails the PR check instead of serving and the monitor."""
    registry = parsed.sections.get("registry")
    if not isinstance(registry, RegistryConfig):
        return []
    from gitops_ml.registry.challenger import challenger_path

    root = parsed.config_dir.parent  # pointer paths are relative to the repository root
    challenger_file = root / challenger_path(registry)
    if not challenger_file.exists():
        return []
    from gitops_ml.registry.challenger import ChallengerError, check_against_production, read_challenger
    from gitops_ml.registry.pointer import PointerError, read_pointer

    try:
        challenger = read_challenger(challenger_file)
        if challenger is not None:
            check_against_production(challenger, read_pointer(root / registry.pointer), challenger_file)
    except (ChallengerError, PointerError) as exc:
        return [str(exc)]
    return []


# --------------------------------------------------------------------------- metrics


def _metric_problems(parsed: ParsedConfig, dataset: DatasetConfig) -> list[str]:
    from gitops_ml.evaluation.metrics import metric_names  # the one metric registry

    task = dataset.task
    valid = tuple(metric_names(task))
    listed = ", ".join(valid)
    problems: list[str] = []

    def bad(section: str, key_path: str, names: Sequence[str]) -> None:
        wrong = [n for n in names if n not in valid]
        if wrong:
            quoted = ", ".join(f"'{n}'" for n in wrong)
            problems.append(
                f"{parsed.file_of(section)}: {key_path}: {quoted} not a {task} metric (valid: {listed})"
            )

    evaluation = parsed.sections.get("evaluation")
    computed: tuple[str, ...] = valid
    if isinstance(evaluation, EvaluationConfig):
        bad("evaluation", "evaluation.primary_metric", [evaluation.primary_metric])
        if evaluation.metrics is not None:
            bad("evaluation", "evaluation.metrics", evaluation.metrics)
            computed = tuple(m for m in evaluation.metrics if m in valid)
            if evaluation.primary_metric in valid and evaluation.primary_metric not in computed:
                problems.append(
                    f"{parsed.file_of('evaluation')}: evaluation.primary_metric: "
                    f"'{evaluation.primary_metric}' is not in evaluation.metrics"
                )
    gates = parsed.sections.get("gates")
    if isinstance(gates, GatesConfig):
        for key in ("minimums", "maximums", "max_regression", "required_improvement"):
            names = list(getattr(gates, key))
            bad("gates", f"gates.{key}", names)
            missing = [n for n in names if n in valid and n not in computed]
            if missing:
                problems.append(
                    f"{parsed.file_of('gates')}: gates.{key}: {', '.join(missing)} not computed; "
                    f"add to evaluation.metrics"
                )
    monitoring = parsed.sections.get("monitoring")
    if isinstance(monitoring, MonitoringConfig):
        bad("monitoring", "monitoring.performance_metric", [monitoring.performance_metric])
        if monitoring.performance_metric in valid:
            from gitops_ml.monitoring.performance import check_monitor_metric

            try:
                check_monitor_metric(task, monitoring.performance_metric)
            except ConfigError as exc:
                problems.append(f"{parsed.file_of('monitoring')}: {exc}")
        warning = monitoring.early_warning
        if warning.enabled and (warning.metric is None or warning.metric in valid or task == "multiclass"):
            from gitops_ml.monitoring.estimation import estimation_metric

            try:
                estimation_metric(task, warning.metric, monitoring.performance_metric)
            except ConfigError as exc:
                problems.append(f"{parsed.file_of('monitoring')}: {exc}")
        elif warning.enabled and warning.metric is not None:
            bad("monitoring", "monitoring.early_warning.metric", [warning.metric])
    return problems


def _cost_problems(parsed: ParsedConfig, dataset: DatasetConfig) -> list[str]:
    """evaluation.costs against the task and the target's allowed classes; expected_cost needs costs."""
    from gitops_ml.evaluation.costs import cost_problems

    evaluation = parsed.sections.get("evaluation")
    if not isinstance(evaluation, EvaluationConfig):
        return []
    where = parsed.file_of("evaluation")
    if evaluation.costs is None:
        gates = parsed.sections.get("gates")
        named = [
            ("evaluation.primary_metric", [evaluation.primary_metric]),
            ("evaluation.metrics", evaluation.metrics or []),
        ]
        if isinstance(gates, GatesConfig):
            named += [
                (f"gates.{key}", list(getattr(gates, key)))
                for key in ("minimums", "maximums", "max_regression", "required_improvement")
            ]
        return [
            f"{parsed.file_of(path.split('.')[0])}: {path}: 'expected_cost' needs evaluation.costs "
            "(what a decision costs)"
            for path, names in named
            if "expected_cost" in names
        ]
    classes = None
    if dataset.task == "multiclass":
        try:
            classes = load_contract(dataset.contract).column(dataset.target).valid_values
        except (ContractError, KeyError):  # reported by the dataset checks
            classes = None
    return [f"{where}: {problem}" for problem in cost_problems(dataset.task, evaluation.costs, classes)]


# --------------------------------------------------------------------------- deepchecks


def deepchecks_support(check: str, task: str) -> str | None:
    """Why `check` cannot run for `task` with our deepchecks version, or None when it can."""
    from gitops_ml.quality.support import check_support

    return check_support(check, task)


def _deepchecks_problems(parsed: ParsedConfig, dataset: DatasetConfig) -> list[str]:
    evaluation = parsed.sections.get("evaluation")
    if not isinstance(evaluation, EvaluationConfig) or not evaluation.deepchecks.enabled:
        return []
    problems = []
    for suite in SUITES:
        for index, spec in enumerate(getattr(evaluation.deepchecks, suite).checks):
            reason = deepchecks_support(spec.check, dataset.task)
            if reason:
                problems.append(
                    f"{parsed.file_of('evaluation')}: evaluation.deepchecks.{suite}.checks[{index}]: "
                    f"{spec.check}: {reason}; remove it"
                )
    return problems


# --------------------------------------------------------------------------- dataset vs contract


def _dataset_problems(parsed: ParsedConfig, dataset: DatasetConfig) -> list[str]:
    where = parsed.file_of("dataset")
    problems: list[str] = []
    if not dataset.manifest.is_file():
        problems.append(f"{where}: dataset.manifest: {dataset.manifest} not found")
    try:
        contract = load_contract(dataset.contract)
    except ContractError as exc:
        return [*problems, f"{where}: dataset.contract: {exc}"]
    columns = set(contract.column_names)

    def unknown(section: str, key_path: str, names: Sequence[str | None]) -> None:
        missing = [n for n in names if n is not None and n not in columns]
        if missing:
            problems.append(
                f"{parsed.file_of(section)}: {key_path}: {', '.join(map(repr, missing))} "
                f"not a column of {dataset.contract}"
            )

    unknown("dataset", "dataset.target", [dataset.target])
    unknown("dataset", "dataset.id_column", [dataset.id_column])
    unknown("dataset", "dataset.time_column", [dataset.time_column])
    features = parsed.sections.get("features")
    if isinstance(features, FeaturesConfig):
        unknown("features", "features.numeric", features.numeric)
        unknown("features", "features.categorical", features.categorical)
    if dataset.target in columns:
        problems.extend(_target_problems(where, dataset, contract))
    if dataset.time_column in columns:
        kind = contract.column(dataset.time_column).logical_type
        if kind not in TIME_TYPES:
            problems.append(
                f"{where}: dataset.time_column: '{dataset.time_column}' is {kind} in {dataset.contract}; a time "
                "column is declared as date or timestamp, or as integer for a period number (day index, year)"
            )
    return problems


def _target_problems(where: Path, dataset: DatasetConfig, contract: Contract) -> list[str]:
    column = contract.column(dataset.target)
    if dataset.task == "regression":
        if column.logical_type not in ("number", "integer"):
            return [
                (
                    f"{where}: dataset.task: regression needs a numeric target; "
                    f"'{dataset.target}' is {column.logical_type} in {dataset.contract}"
                )
            ]
        return []
    allowed = column.valid_values
    if dataset.task == "binary" and allowed is not None:
        if len(allowed) != 2:
            return [
                (
                    f"{where}: dataset.task: binary but '{dataset.target}' allows {len(allowed)} values "
                    f"{list(allowed)} in {dataset.contract}"
                )
            ]
        if dataset.positive_label is not None and not _among(dataset.positive_label, allowed):
            return [
                (
                    f"{where}: dataset.positive_label: {dataset.positive_label!r} is not an allowed value of "
                    f"'{dataset.target}' (allowed: {', '.join(map(repr, allowed))})"
                )
            ]
    return []


def _among(value: Any, allowed: Sequence[Any]) -> bool:
    # 1 == 1.0 is the same label; "1" is not 1 (training compares labels with ==).
    return any(value == v for v in allowed)
