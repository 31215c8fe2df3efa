"""flows/events.py: the one emit function, through Prefect's own asserting events client."""

from __future__ import annotations

import math

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
