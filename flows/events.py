"""Prefect events of gitops-ml: the ONE place that emits them (flows call `emit`, use cases never do).

Every event concerns one model version of one dataset, the resource
`gitops-ml.model.<dataset>.<version>`; automations match on the event name (prefect.yaml's retrain
trigger listens for DECAY). Names:

- DECAY             the monitor's policy decided "retrain" (bad windows in a row, outside the cool-down)
- EARLY_WARNING     before labels: the performance estimated from the model's own probabilities dropped
                    beyond the allowed margin (a warning, not a retrain trigger unless configured)
- CHALLENGER_DECISION  the monitor's champion/challenger decision (promote, retire or keep collecting)

Emitting never fails the flow: outside a Prefect API (tests, a bare `gitops-ml monitor` without a
server) Prefect drops the event, and an error while sending is logged by Prefect, not raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from gitops_ml.jsonable import to_jsonable

if TYPE_CHECKING:
    from prefect.events import Event

DECAY: Final = "gitops-ml.monitor.decay"
EARLY_WARNING: Final = "gitops-ml.monitor.early-warning"
CHALLENGER_DECISION: Final = "gitops-ml.challenger.decision"
EVENTS: Final = frozenset({DECAY, EARLY_WARNING, CHALLENGER_DECISION})

RESOURCE_PREFIX: Final = "gitops-ml.model."
# Prefect refuses events above its maximum size (1.5 MB by default); reasons are clipped well below it
_MAX_ITEMS = 20
_MAX_CHARS = 500


def model_resource(dataset: str, model_version: str) -> dict[str, str]:
    """The resource an event concerns: one model version of one dataset."""
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{dataset}.{model_version}",
        "prefect.resource.name": f"{dataset} {model_version}",
        "gitops-ml.dataset": dataset,
        "gitops-ml.model-version": model_version,
    }


def emit(
    event: str,
    *,
    dataset: str,
    model_version: str,
    payload: Mapping[str, Any] | None = None,
    related_versions: Mapping[str, str] | None = None,
) -> Event | None:
    """Emit one gitops-ml event; returns it, or None when Prefect is not sending events here.

    payload: plain JSON-able facts (NaN becomes null; long lists and strings are clipped).
    related_versions: other model versions involved, by role, e.g. {"production": "v-…"} on a
    challenger decision; each becomes a related resource with that role.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown gitops-ml event {event!r}; one of {sorted(EVENTS)}")
    from prefect.events import emit_event

    related = [
        {**model_resource(dataset, version), "prefect.resource.role": role}
        for role, version in (related_versions or {}).items()
    ]
    return emit_event(
        event,
        resource=model_resource(dataset, model_version),
        related=related or None,
        payload=_clipped(to_jsonable(dict(payload or {}))),
    )


def _clipped(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _MAX_CHARS else value[: _MAX_CHARS - 1] + "…"
    if isinstance(value, list):
        return [_clipped(v) for v in value[:_MAX_ITEMS]]
    if isinstance(value, dict):
        return {k: _clipped(v) for k, v in value.items()}
    return value
