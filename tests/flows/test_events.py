"""flows/events.py: the one emit function, through Prefect's own asserting events client."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from flows import events


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, prefect_harness):
    """The events Prefect would send, captured by its asserting client (the worker enriches them
    through the session's Prefect API, so the harness runs)."""
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    monkeypatch.setattr("prefect.events.utilities.should_emit_events", lambda: True)

    def drained() -> list:
        worker.drain()
        assert isinstance(worker._client, AssertingEventsClient)
        return [e for e in worker._client.events if e.event in events.EVENTS]

    try:
        yield drained
    finally:
        worker.drain()


def test_an_event_names_the_model_version_and_carries_plain_json(sent):
    emitted = events.emit(
        events.CHALLENGER_DECISION,
        dataset="churn",
        model_version="v-b",
        payload={"decision": "promote", "delta": math.nan, "reasons": ["x" * 2000] * 50},
        related_versions={"production": "v-a"},
    )
    assert emitted is not None
    (event,) = sent()
    assert event.event == "gitops-ml.challenger.decision"
    assert event.resource.id == "gitops-ml.model.churn.v-b"
    assert event.resource["gitops-ml.model-version"] == "v-b"
    assert [(r.id, r.role) for r in event.related] == [("gitops-ml.model.churn.v-a", "production")]
    assert event.payload["decision"] == "promote"
    assert event.payload["delta"] is None  # NaN is not JSON
    assert len(event.payload["reasons"]) == 20
    assert all(len(r) == 500 for r in event.payload["reasons"])


def test_an_unknown_event_name_is_refused_before_anything_is_sent(sent):
    with pytest.raises(ValueError, match=r"unknown gitops-ml event 'gitops-ml.monitor.decayed'"):
        events.emit("gitops-ml.monitor.decayed", dataset="churn", model_version="v-a")
    assert sent() == []


def test_the_monitor_emits_the_challenger_decision_with_its_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent
) -> None:
    """A real monitor run on three windows in which the challenger is truly better: the decision
    event names the challenger, relates production, and carries the decision and its evidence."""
    from flows.monitor import monitor_flow
    from gitops_ml.config import load_settings
    from gitops_ml.registry.challenger import read_challenger
    from gitops_ml.registry.production import load_production
    from tests.fixtures.git import GIT_IDENTITY
    from tests.flows.conftest import log_better_windows, make_challenger_repo

    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    root = make_challenger_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    settings = load_settings(Path("config"))
    production = load_production(settings.registry, tmp_path / "cache")
    challenger = read_challenger(Path("deploy/challenger.yaml"))
    assert production is not None and challenger is not None
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    now, _ = log_better_windows(root, store_url)
    outcome = monitor_flow(store_url=store_url, window="1D", now=now.isoformat(), open_pr=False)
    assert outcome.challenger is not None and outcome.challenger.action == "promote"

    (event,) = [e for e in sent() if e.event == events.CHALLENGER_DECISION]
    assert event.event == "gitops-ml.challenger.decision"
    assert event.resource.id == f"gitops-ml.model.churn.{challenger.version}"
    assert event.resource["gitops-ml.dataset"] == "churn"
    related = {r.role: r.id for r in event.related}
    assert related["production"] == f"gitops-ml.model.churn.{production.version}"
    # Prefect relates the event to the monitor's flow run (an automation can follow it there)
    assert related["flow-run"].startswith("prefect.flow-run.") and "flow" in related
    payload = event.payload
    assert set(payload) == {
        "action", "reasons", "windows", "required_windows", "metric",
        "delta", "ci_low", "ci_high", "rows", "rows_needed",
    }  # fmt: skip
    latest = outcome.challenger.windows[-1]
    assert payload["action"] == "promote" and payload["windows"] == ["better"] * 3
    assert payload["required_windows"] == 3 and payload["rows"] == 300
    assert payload["metric"] == settings.evaluation.primary_metric
    assert payload["delta"] == pytest.approx(latest.delta) and payload["delta"] > 0
    assert payload["ci_low"] == pytest.approx(latest.ci_low) and payload["ci_low"] > 0
    assert payload["ci_high"] == pytest.approx(latest.ci_high)
    assert payload["rows_needed"] is None  # only an inconclusive window needs more rows
    assert payload["reasons"] == ["better than production in 3 consecutive window(s)"]
