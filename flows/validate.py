"""`validate` flow: acquire -> contract -> deepchecks data integrity."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.tasks import acquire_task, contract_task, integrity_task
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.reporting.validation import ValidationOutcome, write_validation_outputs


@flow(name="validate", log_prints=True)
def validate_flow(
    config_dir: str = "config", out_dir: str = "reports/validation", run_deepchecks: bool = True
) -> ValidationOutcome:
    logger = get_run_logger()
    settings = load_checked_settings(config_dir)
    out = Path(out_dir)
    logger.info("[1/3] acquire: %s", settings.dataset.manifest)
    acquired = acquire_task(settings)
    logger.info("      %d rows from %d batches", len(acquired.frame), len(acquired.batches))
    logger.info("[2/3] contract: %s", settings.dataset.contract)
    report, typed = contract_task(settings, acquired.frame, str(settings.dataset.manifest), acquired.origins)
    integrity = None
    if typed is not None and run_deepchecks and settings.evaluation.deepchecks.enabled:
        logger.info(
            "[3/3] deepchecks data integrity (sample of %d rows)", settings.evaluation.deepchecks.sample_size
        )
        integrity = integrity_task(settings, typed, out / "data_integrity.html")
    else:
        logger.info(
            "[3/3] deepchecks data integrity: skipped (%s)",
            "contract failed" if typed is None else "disabled",
        )
    outcome = ValidationOutcome(acquired=acquired, contract=report, integrity=integrity)
    write_validation_outputs(outcome, out)
    return outcome
