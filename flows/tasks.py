"""Prefect tasks shared by the flows: thin wrappers over src/gitops_ml functions.

Every task uses NO_CACHE: inputs are DataFrames and fitted models, and hashing them for a cache
key costs time and buys nothing (each flow run must recompute from the commit it checks).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from gitops_ml.config import Settings


@task(name="acquire", cache_policy=NO_CACHE)
def acquire_task(settings: Settings):
    from gitops_ml.data.acquire import acquire

    return acquire(settings.dataset.manifest, time_column=settings.dataset.time_column)


@task(name="contract", cache_policy=NO_CACHE)
def contract_task(settings: Settings, frame, source: str):
    """Validate against the contract; returns (report, typed frame or None when it failed)."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.contracts.validate import coerce_frame, validate_frame

    contract = load_contract(settings.dataset.contract)
    report = validate_frame(frame, contract, source=source)
    typed = coerce_frame(frame, contract) if report.passed else None
    return report, typed


@task(name="data-integrity", cache_policy=NO_CACHE)
def integrity_task(settings: Settings, frame, html_path: Path | None):
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
