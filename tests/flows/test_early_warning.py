"""The monitor flow's early warning and events, on a promoted model and real logged traffic.

Covariate shift that lowers performance (`covariate-decay`: new customers replace established ones,
P(y|x) unchanged): the early warning fires, and its Prefect event is emitted, while no label has
arrived; stable traffic gives none. When the labels come, the realized accuracy confirms the drop,
the policy decides "retrain" and the decay event goes out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from flows import events
from flows.monitor import monitor_flow
from gitops_ml.cli import main
from gitops_ml.config import load_settings
from gitops_ml.data.generator import COVARIATE_DECAY, STABLE, Scenario, generate_records
from gitops_ml.jsonable import to_jsonable
from gitops_ml.prediction_store import PredictionStore
from gitops_ml.registry.production import load_production, score_with_production
from tests.flows.conftest import update_config

NOW = datetime(2026, 9, 8, tzinfo=UTC)
ROWS = 1500


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch):
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)

    def drained() -> list:
        worker.wait_until_empty()  # not drain(): that stops the worker for the next monitor run
        assert isinstance(worker._client, AssertingEventsClient)
        ours = [e for e in worker._client.events if e.event in events.EVENTS]
        worker._client.events = []
        return ours

    try:
        yield drained
    finally:
        worker.drain()


def _log_traffic(root: Path, store_url: str, scenario: Scenario, seed: int) -> list[tuple[str, int]]:
    """One week of traffic scored by production, logged without labels; returns (request_id, label)."""
    settings = load_settings(root / "config")
    production = load_production(settings.registry, root / ".cache")
    assert production is not None
    frame = generate_records(
        ROWS, seed=seed, scenario=scenario, start_time=NOW - timedelta(days=7), end_time=NOW
    )
    scored = score_with_production(production, frame, settings)
    assert scored.y_score is not None
    inputs = frame[settings.features.all]
    stamps = (NOW - timedelta(days=7)) + (np.arange(ROWS) * timedelta(days=7) / ROWS)
    records = [
        {
            "request_id": f"{scenario.name}-{i}",
            "created_at": stamps[i],
            "model_version": production.version,
            "inputs": to_jsonable(inputs.iloc[i].to_dict()),
            "output": {},
            "score": float(scored.y_score[i]),
            "prediction": to_jsonable(scored.y_pred[i]),
        }
        for i in range(ROWS)
    ]
    store = PredictionStore(store_url)
    try:
        store.log_many(records)
    finally:
        store.dispose()
    return [(r["request_id"], int(label)) for r, label in zip(records, frame["churned"], strict=True)]


def _monitor(root: Path, store_url: str, out: str):
    return monitor_flow(
        config_dir=str(root / "config"),
        out_dir=str(root / out),
        store_url=store_url,
        now=NOW.isoformat(),
        open_pr=False,
        repo_dir=str(root),
    )


def test_covariate_shift_warns_before_labels_then_labels_confirm_and_decay_is_emitted(
    mini_repo: Path, tmp_path: Path, sent
):
    update_config(
        mini_repo,
        "monitoring",
        {
            "min_window_rows": 500,
            "consecutive_bad_windows": 1,
            "performance_metric": "accuracy",
            # decide on performance alone here, with a margin this small window can resolve
            "max_performance_drop": 0.02,
            "max_drifted_features": 20,
            "thresholds": {"prediction_psi": 10.0},
        },
    )
    assert main(["promote", "--no-deepchecks"]) == 0

    stable_url = f"sqlite:///{tmp_path / 'stable.db'}"
    _log_traffic(mini_repo, stable_url, STABLE, seed=11)
    outcome = _monitor(mini_repo, stable_url, "reports/stable")
    summary = json.loads((mini_repo / "reports/stable/summary.json").read_text())
    estimate = summary["window"]["estimate"]
    assert estimate["status"] == "estimated", estimate["reason"]
    assert estimate["calibration"]["calibrated"], estimate["calibration"]["reason"]
    assert not outcome.early_warning, estimate["reason"]
    assert sent() == []

    shifted_url = f"sqlite:///{tmp_path / 'shifted.db'}"
    labels = _log_traffic(mini_repo, shifted_url, COVARIATE_DECAY, seed=11)
    outcome = _monitor(mini_repo, shifted_url, "reports/shifted")
    summary = json.loads((mini_repo / "reports/shifted/summary.json").read_text())
    window = summary["window"]
    assert window["performance"]["labelled"] == 0  # before any label arrived
    assert outcome.early_warning, window["estimate"]["reason"]
    assert outcome.action == "none"  # a warning, not a retrain trigger by default
    report = (mini_repo / "reports/shifted/report.md").read_text()
    assert "**WARNING**" in report and "No labels yet in this window" in report
    (warning,) = sent()
    assert warning.event == events.EARLY_WARNING
    assert warning.resource["gitops-ml.model-version"] == window["model_version"]
    assert warning.payload["metric"] == "accuracy"
    assert warning.payload["estimated_drop"] > 0.02

    # the labels arrive: realized beside estimated, the decay rule fires, the decay event goes out
    store = PredictionStore(shifted_url)
    try:
        store.add_labels(labels)
    finally:
        store.dispose()
    outcome = _monitor(mini_repo, shifted_url, "reports/labelled")
    summary = json.loads((mini_repo / "reports/labelled/summary.json").read_text())
    estimate = summary["window"]["estimate"]
    assert estimate["labelled"] == ROWS
    assert estimate["labelled_ci_low"] - 0.02 <= estimate["realized"] <= estimate["labelled_ci_high"] + 0.02
    assert summary["window"]["performance"]["decayed"], summary["window"]["performance"]["reason"]
    assert outcome.action == "retrain"
    report = (mini_repo / "reports/labelled/report.md").read_text()
    assert f"Estimated vs realized on the {ROWS:,} labelled rows" in report
    names = [e.event for e in sent()]
    assert names == [events.EARLY_WARNING, events.DECAY]
