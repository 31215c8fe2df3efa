"""The PR check's use case: the run state, the contract diff, the candidate artifact and the outputs.

flows/pr_check.py runs the stages as Prefect tasks and fills a `PrCheckRun`; this module turns the
run into the typed `PrCheckResult`, saves the candidate artifact and writes report.md + summary.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_ml.config import Settings
from gitops_ml.io_utils import atomic_write_json, atomic_write_text
from gitops_ml.reporting.pr_report import PrCheckResult, render_pr_report
from gitops_ml.runinfo import library_versions

if TYPE_CHECKING:
    import pandas as pd

    from gitops_ml.contracts.diff import ContractDiff
    from gitops_ml.contracts.validate import ValidationReport
    from gitops_ml.data.acquire import AcquiredData
    from gitops_ml.data.split import SplitResult
    from gitops_ml.evaluation.compare import Comparison
    from gitops_ml.evaluation.decision import DecisionRule
    from gitops_ml.evaluation.gates import Verdict
    from gitops_ml.evaluation.metrics import Predictions
    from gitops_ml.monitoring.drift import ReferenceProfile
    from gitops_ml.quality.deepchecks_suites import SuiteSummary
    from gitops_ml.registry.artifacts import ModelArtifact
    from gitops_ml.registry.production import LoadedModel
    from gitops_ml.training.pipeline import TrainedModel


@dataclass
class PrCheckRun:
    """Everything a PR check produced so far; fields stay None for stages that did not run."""

    out_dir: Path
    commit: str
    flow_run: str = "none"  # the orchestrator's run id, recorded for reproducibility
    settings: Settings | None = None
    acquired: AcquiredData | None = None
    contract: ValidationReport | None = None
    contract_diff: ContractDiff | None = None
    contract_diff_note: str | None = None
    split: SplitResult | None = None
    trained: TrainedModel | None = None
    decision: DecisionRule | None = None  # how the candidate decides (stored in its metadata)
    candidate: Predictions | None = None
    production: Predictions | None = None
    production_model: LoadedModel | None = None
    comparison: Comparison | None = None
    segments: pd.DataFrame | None = None
    plots: dict[str, Path] = field(default_factory=dict)
    deepchecks: dict[str, SuiteSummary] = field(default_factory=dict)
    verdict: Verdict | None = None
    candidate_artifact: ModelArtifact | None = None


def _reproducibility(run: PrCheckRun) -> dict[str, Any]:
    info: dict[str, Any] = {"commit": run.commit}
    if run.acquired is not None:
        info["data hash"] = run.acquired.manifest_hash
    if run.settings is not None:
        info["config hash"] = run.settings.config_hash()
        info["estimator"] = run.settings.estimator.class_path
    if run.candidate_artifact is not None:
        info["model version"] = run.candidate_artifact.version
        info["model sha256"] = run.candidate_artifact.sha256
    if run.trained is not None:
        info["fit seconds"] = f"{run.trained.fit_seconds:.1f}"
        if run.trained.best_params:
            info["best params"] = run.trained.best_params
    info["flow run"] = run.flow_run
    info["libraries"] = library_versions()
    return info


def _data_facts(run: PrCheckRun) -> dict[str, Any]:
    if run.acquired is None:
        return {}
    facts: dict[str, Any] = {
        "rows": len(run.acquired.frame),
        "batches": len(run.acquired.batches),
        "manifest_hash": run.acquired.manifest_hash,
    }
    if run.split is not None:
        facts["split"] = run.split.description
    return facts


def _relative_plots(run: PrCheckRun) -> dict[str, str]:
    return {name: os.path.relpath(path, run.out_dir) for name, path in run.plots.items()}


def result_from_run(run: PrCheckRun, timings: dict[str, float]) -> PrCheckResult:
    settings = run.settings
    assert settings is not None and run.verdict is not None
    return PrCheckResult(
        status="pass" if run.verdict.passed else "fail",
        verdict=run.verdict,
        comparison=run.comparison,
        primary_metric=settings.evaluation.primary_metric,
        candidate_version=run.candidate_artifact.version if run.candidate_artifact else None,
        production_version=run.production_model.version if run.production_model else None,
        segments=run.segments,
        per_class=_per_class(run.candidate),
        per_class_production=_per_class(run.production),
        costs_note=_costs_note(settings),
        curves=_curves(run),
        decisions=_decisions(run),
        decision_warnings=_decision_warnings(run),
        contract=run.contract,
        contract_diff=run.contract_diff,
        contract_diff_note=run.contract_diff_note,
        data=_data_facts(run),
        deepchecks=dict(run.deepchecks),
        plots=_relative_plots(run),
        reproducibility=_reproducibility(run),
        timings=dict(timings),
    )


def _curves(run: PrCheckRun) -> Any:
    from gitops_ml.evaluation.curves import task_curves

    if run.candidate is None:
        return None
    production = run.production_model.decision if run.production_model is not None else None
    thresholds = {"candidate": _threshold(run.decision), "production": _threshold(production)}
    return task_curves(run.candidate, run.production, thresholds=thresholds)


def _threshold(rule: DecisionRule | None) -> float | None:
    from gitops_ml.evaluation.decision import DEFAULT_THRESHOLD

    if rule is None:
        return DEFAULT_THRESHOLD
    return rule.threshold if rule.kind == "threshold" else None


def _decisions(run: PrCheckRun) -> dict[str, str]:
    """Each classifier's decision rule in words (regression decides nothing: empty)."""
    if run.settings is None or run.settings.dataset.task == "regression":
        return {}
    default = "the most probable class (no `evaluation.costs`)"
    out = {"candidate": run.decision.describe() if run.decision is not None else default}
    if run.production_model is not None:
        rule = run.production_model.decision
        out["production"] = rule.describe() if rule is not None else "the most probable class"
    return out


def _decision_warnings(run: PrCheckRun) -> list[str]:
    """Said in the report, never silently: a rule that decides every row the same way."""
    from gitops_ml.evaluation.decision import one_way_note

    warnings = [run.decision.warning] if run.decision is not None and run.decision.warning else []
    for name, preds in (("the candidate", run.candidate), ("production", run.production)):
        if preds is not None and preds.task != "regression":
            note = one_way_note(preds.y_pred, f"on the holdout, {name}")
            if note:
                warnings.append(note + ": check `evaluation.costs` and the class balance")
    return warnings


def _costs_note(settings: Settings) -> str | None:
    from gitops_ml.evaluation.costs import describe_costs

    costs = settings.evaluation.costs
    return None if costs is None else describe_costs(settings.dataset.task, costs)


def _per_class(preds: Any) -> Any:
    from gitops_ml.evaluation.metrics import per_class_metrics

    return None if preds is None or preds.task == "regression" else per_class_metrics(preds)


def bad_input_result(run: PrCheckRun, message: str, timings: dict[str, float]) -> PrCheckResult:
    return PrCheckResult(
        status="error",
        error=message,
        contract=run.contract,
        contract_diff=run.contract_diff,
        contract_diff_note=run.contract_diff_note,
        data=_data_facts(run),
        reproducibility=_reproducibility(run),
        timings=dict(timings),
    )


def save_candidate(run: PrCheckRun) -> ModelArtifact:
    """The candidate artifact (model, metadata, reference profile) under reports/pr/candidate/."""
    from gitops_ml.monitoring.drift import write_reference
    from gitops_ml.registry.artifacts import REFERENCE_FILE, ModelInfo, model_version, save_model

    settings, acquired, split, trained = run.settings, run.acquired, run.split, run.trained
    assert settings is not None and acquired is not None and split is not None and trained is not None
    config_hash = settings.config_hash()
    data_hash = acquired.manifest_hash
    metrics = {m.metric: m.candidate for m in run.comparison} if run.comparison is not None else {}
    info = ModelInfo(
        version=model_version(run.commit, config_hash, data_hash),
        git_commit=run.commit,
        config_hash=config_hash,
        data_hash=data_hash,
        dataset=settings.dataset.name,
        task=settings.dataset.task,
        target=settings.dataset.target,
        numeric_features=tuple(settings.features.numeric),
        categorical_features=tuple(settings.features.categorical),
        features=tuple(settings.features.all),
        estimator=settings.estimator.class_path,
        best_params=dict(trained.best_params or {}),
        metrics=metrics,
        holdout_rows=len(split.holdout),
        split=split.description,
        training_seconds=trained.fit_seconds,
        sample_record=_sample_record(settings, split),
        decision=run.decision,
    )
    artifact = save_model(trained.pipeline, run.out_dir / "candidate", info)
    write_reference(_reference_profile(run), run.out_dir / "candidate" / REFERENCE_FILE)
    return artifact


def _reference_profile(run: PrCheckRun) -> ReferenceProfile:
    """What the monitor compares production traffic with: training features + holdout scores."""
    from gitops_ml.monitoring.drift import build_reference
    from gitops_ml.monitoring.estimation import calibration_sample
    from gitops_ml.training.pipeline import prepare_features

    settings, split, candidate = run.settings, run.split, run.candidate
    assert settings is not None and split is not None and candidate is not None
    features = prepare_features(split.train, settings)
    # one score per row: P(positive) for binary, the prediction for regression; multiclass has
    # a probability vector, for which prediction drift is not computed
    task = settings.dataset.task
    scores = {"binary": candidate.y_score, "regression": candidate.y_pred}.get(task)
    return build_reference(
        features,
        settings.features.numeric,
        settings.features.categorical,
        bins=settings.monitoring.psi_bins,
        prediction_scores=scores,
        # the holdout's scores, truths and decisions: the early warning's calibration check
        calibration=calibration_sample(candidate),
    )


def _sample_record(settings: Settings, split: SplitResult) -> dict[str, Any]:
    """One holdout row: the serving app's smoke prediction before it swaps a model in."""
    row = split.holdout[settings.features.all].head(1)
    record: dict[str, Any] = json.loads(row.to_json(orient="records", date_format="iso"))[0]
    return record


def summary_dict(result: PrCheckResult, run: PrCheckRun) -> dict[str, Any]:
    verdict = result.verdict
    settings = run.settings
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "error": result.error,
        "candidate_version": result.candidate_version,
        "production_version": result.production_version,
        "primary_metric": result.primary_metric,
        "gates": [vars(g) for g in verdict.gates] if verdict is not None else [],
        "comparison": result.comparison.to_dict() if result.comparison is not None else None,
        "segments": (result.segments.to_dict(orient="records") if result.segments is not None else None),
        "per_class": ([c.to_dict() for c in result.per_class] if result.per_class is not None else None),
        "curves": [c.to_dict() for c in result.curves] if result.curves else None,
        "decision": run.decision.model_dump() if run.decision is not None else None,
        "decision_warnings": result.decision_warnings,
        "costs": (
            settings.evaluation.costs.model_dump(exclude_none=True)
            if settings is not None and settings.evaluation.costs is not None
            else None
        ),
        "contract": result.contract.to_dict() if result.contract is not None else None,
        "contract_diff": result.contract_diff.to_dict() if result.contract_diff is not None else None,
        "deepchecks": {k: v.to_dict() for k, v in result.deepchecks.items()},
        "plots": result.plots,
        "data": result.data,
        "reproducibility": result.reproducibility,
        "timings": result.timings,
        "candidate_dir": str(run.out_dir / "candidate") if run.candidate_artifact is not None else None,
    }


def write_pr_outputs(result: PrCheckResult, run: PrCheckRun) -> str:
    """report.md, summary.json and (with a candidate) the model card preview, each written
    atomically; returns the markdown."""
    summary = summary_dict(result, run)
    if run.candidate_artifact is not None and run.settings is not None:
        from gitops_ml.jobs.model_card import card_inputs
        from gitops_ml.registry.artifacts import MODEL_CARD_FILE
        from gitops_ml.reporting.model_card import render_model_card

        metadata = run.candidate_artifact.metadata.model_dump(mode="json")
        card = render_model_card(card_inputs(metadata, summary, run.settings))
        atomic_write_text(run.out_dir / MODEL_CARD_FILE, card)
        result.model_card = MODEL_CARD_FILE
    markdown = render_pr_report(result)
    atomic_write_text(run.out_dir / "report.md", markdown)
    atomic_write_json(run.out_dir / "summary.json", summary)
    return markdown
