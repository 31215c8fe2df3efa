"""Prefect tasks shared by the flows: thin wrappers over src/gitops_ml functions.

Every task uses NO_CACHE: inputs are DataFrames and fitted models, and hashing them for a cache
key costs time and buys nothing (each flow run must recompute from the commit it checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gitops_ml.config import Settings

if TYPE_CHECKING:  # each task imports what it runs, so importing the flows stays cheap
    import pandas as pd

    from gitops_ml.contracts.validate import ValidationReport
    from gitops_ml.data.acquire import AcquiredData
    from gitops_ml.data.split import SplitResult
    from gitops_ml.evaluation.compare import Comparison
    from gitops_ml.evaluation.decision import DecisionRule
    from gitops_ml.evaluation.gates import Verdict
    from gitops_ml.evaluation.metrics import Predictions
    from gitops_ml.quality.deepchecks_suites import SuiteSummary
    from gitops_ml.registry.production import LoadedModel
    from gitops_ml.training.pipeline import TrainedModel


@task(name="acquire", cache_policy=NO_CACHE)
def acquire_task(settings: Settings) -> AcquiredData:
    from gitops_ml.data.acquire import acquire

    return acquire(
        settings.dataset.manifest,
        time_column=settings.dataset.time_column,
        allowed_uri_prefixes=settings.dataset.allowed_uri_prefixes,
    )


@task(name="contract", cache_policy=NO_CACHE)
def contract_task(
    settings: Settings, frame: pd.DataFrame, source: str, origins: tuple[tuple[str, int], ...] = ()
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Validate against the contract; returns (report, typed frame or None when it failed).

    `origins` (file, rows per batch) lets a failure name the batch file and line, not a global row.
    """
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.contracts.validate import coerce_frame, validate_frame

    contract = load_contract(settings.dataset.contract)
    report = validate_frame(frame, contract, source=source, origins=origins)
    typed = coerce_frame(frame, contract) if report.passed else None
    return report, typed


@task(name="data-integrity", cache_policy=NO_CACHE)
def integrity_task(settings: Settings, frame: pd.DataFrame, html_path: Path | None) -> SuiteSummary:
    from gitops_ml.quality.deepchecks_suites import run_data_integrity

    features = settings.features
    return run_data_integrity(
        frame,
        label=settings.dataset.target,
        features=features.all,
        cat_features=features.categorical,
        cfg=settings.evaluation.deepchecks,
        html_path=html_path,
    )


@task(name="split", cache_policy=NO_CACHE)
def split_task(settings: Settings, frame: pd.DataFrame) -> SplitResult:
    from gitops_ml.data.split import split_frame

    return split_frame(frame, settings)


@task(name="train", cache_policy=NO_CACHE)
def train_task(settings: Settings, train_frame: pd.DataFrame) -> TrainedModel:
    from gitops_ml.training.pipeline import train_model

    logger = get_run_logger()
    return train_model(train_frame, settings, progress=logger.info, threads=settings.estimator.threads)


@task(name="decision-rule", cache_policy=NO_CACHE)
def decision_task(settings: Settings, pipeline: Any, train_frame: pd.DataFrame) -> DecisionRule | None:
    from gitops_ml.training.threshold import fit_decision_rule

    return fit_decision_rule(pipeline, train_frame, settings)


@task(name="score-candidate", cache_policy=NO_CACHE)
def score_task(
    settings: Settings, pipeline: Any, holdout: pd.DataFrame, decision: DecisionRule | None = None
) -> Predictions:
    from gitops_ml.evaluation.metrics import predict
    from gitops_ml.training.pipeline import prepare_features, training_target

    preds = predict(
        pipeline,
        prepare_features(holdout, settings),
        training_target(holdout, settings),
        settings.dataset.task,
        settings.dataset.positive_label,
        decision,
    )
    return preds.with_costs(settings.evaluation.costs)


@task(name="score-production", cache_policy=NO_CACHE)
def score_production_task(
    settings: Settings, holdout: pd.DataFrame, cache_dir: Path
) -> tuple[LoadedModel | None, Predictions | None]:
    """The current production model on the SAME holdout; None when there is none yet."""
    from gitops_ml.registry.production import load_production, score_with_production

    production = load_production(settings.registry, cache_dir)
    if production is None:
        return None, None
    return production, score_with_production(production, holdout, settings).with_costs(
        settings.evaluation.costs
    )


@task(name="compare", cache_policy=NO_CACHE)
def compare_task(settings: Settings, candidate: Predictions, production: Predictions | None) -> Comparison:
    from gitops_ml.evaluation.compare import compare_models

    return compare_models(candidate, production, settings.evaluation.metrics, settings.evaluation.bootstrap)


@task(name="segments", cache_policy=NO_CACHE)
def segments_task(
    settings: Settings, candidate: Predictions, production: Predictions | None, holdout: pd.DataFrame
) -> pd.DataFrame | None:
    from gitops_ml.evaluation.segments import segment_comparison, segment_metrics

    ev = settings.evaluation
    if not ev.segments:
        return None
    if production is None:
        return segment_metrics(
            candidate, holdout, ev.segments, min_size=ev.min_segment_size, metric=ev.primary_metric
        )
    return segment_comparison(
        candidate,
        production,
        holdout,
        ev.segments,
        min_size=ev.min_segment_size,
        metric=ev.primary_metric,
        bootstrap=ev.bootstrap,
        max_regression=settings.gates.max_segment_regression,
    )


@task(name="deepchecks-train-test", cache_policy=NO_CACHE)
def train_test_task(
    settings: Settings, train: pd.DataFrame, holdout: pd.DataFrame, html_path: Path | None
) -> SuiteSummary:
    from gitops_ml.quality.deepchecks_suites import run_train_test_validation

    f = settings.features
    return run_train_test_validation(
        train,
        holdout,
        label=settings.dataset.target,
        features=f.all,
        cat_features=f.categorical,
        cfg=settings.evaluation.deepchecks,
        html_path=html_path,
        task=settings.dataset.task,
    )


@task(name="deepchecks-model-evaluation", cache_policy=NO_CACHE)
def model_evaluation_task(
    settings: Settings, train: pd.DataFrame, holdout: pd.DataFrame, pipeline: Any, html_path: Path | None
) -> SuiteSummary:
    from gitops_ml.quality.deepchecks_suites import run_model_evaluation
    from gitops_ml.training.pipeline import prepare_features

    f = settings.features
    target = settings.dataset.target
    # deepchecks hands the raw feature columns to the pipeline: give it the canonical dtypes.
    train_x = prepare_features(train, settings).assign(**{target: train[target].to_numpy()})
    test_x = prepare_features(holdout, settings).assign(**{target: holdout[target].to_numpy()})
    return run_model_evaluation(
        train_x,
        test_x,
        pipeline,
        label=target,
        features=f.all,
        cat_features=f.categorical,
        cfg=settings.evaluation.deepchecks,
        html_path=html_path,
        task=settings.dataset.task,
    )


@task(name="gates", cache_policy=NO_CACHE)
def gates_task(
    settings: Settings,
    comparison: Comparison,
    segments: pd.DataFrame | None,
    contract_report: ValidationReport,
    deepchecks: dict[str, SuiteSummary],
) -> Verdict:
    from gitops_ml.evaluation.gates import blocking_deepchecks_outcome, evaluate_gates

    failures = [f"{r.column}: {r.rule}" for r in contract_report.rules if not r.passed]
    failed, not_run, configured = blocking_deepchecks_outcome(settings.evaluation.deepchecks, deepchecks)
    return evaluate_gates(
        comparison,
        settings.gates,
        primary_metric=settings.evaluation.primary_metric,
        segment_rows=segments if segments is not None and "delta" in segments else None,
        contract_passed=contract_report.passed,
        contract_failures=failures,
        blocking_deepchecks=failed,
        blocking_not_run=not_run,
        blocking_configured=configured,
    )


@task(name="plots", cache_policy=NO_CACHE)
def plots_task(
    settings: Settings,
    candidate: Predictions,
    production: Predictions | None,
    pipeline: Any,
    holdout: pd.DataFrame,
    out_dir: Path,
) -> dict[str, Path]:
    from gitops_ml.evaluation.plots import permutation_importance_series, write_plots
    from gitops_ml.training.pipeline import prepare_features, training_target
    from gitops_ml.training.search import default_scoring

    scoring = default_scoring(settings.dataset.task)  # the search's scorer: one default per task
    importance = permutation_importance_series(
        pipeline,
        prepare_features(holdout, settings),
        training_target(holdout, settings),
        scoring=scoring,
        seed=settings.split.seed,
    )
    return write_plots(candidate, production, out_dir, feature_importance=importance)
