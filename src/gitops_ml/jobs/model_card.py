"""The model card of a checked candidate: gathered from the check's outputs, the contract, the
manifest and the latest monitor report, rendered by `reporting.model_card`, written atomically.

The PR check writes it as a preview beside its report; promotion writes it as
`deploy/model-card.md` (beside the pointer) and commits it with the pointer, and publishes it with
the artifact so the store keeps the card of every version too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gitops_ml.config import RegistryConfig, Settings
from gitops_ml.errors import ArtifactError, GitopsMLError
from gitops_ml.io_utils import atomic_write_text
from gitops_ml.registry.artifacts import MODEL_CARD_FILE
from gitops_ml.reporting.model_card import CardInputs, render_model_card

MONITOR_SUMMARY = Path("reports/monitor/summary.json")  # where `gitops-ml monitor` writes by default


def model_card_path(registry: RegistryConfig) -> Path:
    """deploy/model-card.md: beside the production pointer, in the same commit."""
    return Path(registry.pointer).parent / MODEL_CARD_FILE


def card_inputs(
    metadata: Mapping[str, Any], summary: Mapping[str, Any], settings: Settings, repo_dir: Path | str = "."
) -> CardInputs:
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.data.manifest import load_manifest
    from gitops_ml.evaluation.costs import describe_costs

    try:
        contract = load_contract(settings.dataset.contract)
        description, named = contract.description, f"{settings.dataset.contract} (version {contract.version})"
    except GitopsMLError as exc:  # the check validated it; a card is still written, saying so
        description, named = {}, f"{settings.dataset.contract} (not readable at promotion: {exc})"
    try:
        batches = [b.model_dump(mode="json") for b in load_manifest(settings.dataset.manifest).batches]
    except Exception:  # noqa: BLE001 - the card says what it has; the check already validated the manifest
        batches = []
    costs = settings.evaluation.costs
    return CardInputs(
        metadata=metadata,
        summary=summary,
        contract_description=description,
        contract=named,
        owner=_owner(Path(settings.dataset.contract)),
        positive_label=settings.dataset.positive_label,
        costs_note=None if costs is None else describe_costs(settings.dataset.task, costs),
        batches=batches,
        min_segment_size=settings.evaluation.min_segment_size,
        monitoring=_json_or_none(Path(repo_dir) / MONITOR_SUMMARY),
    )


def write_model_card(
    report_dir: Path | str, settings: Settings, out: Path, repo_dir: Path | str = "."
) -> Path:
    """Render the card of `report_dir`'s candidate (metadata.json + summary.json) to `out`."""
    from gitops_ml.registry.artifacts import read_metadata

    report_dir = Path(report_dir)
    summary = _json_or_none(report_dir / "summary.json")
    if summary is None:
        raise ArtifactError(f"{report_dir / 'summary.json'}: the check's summary is missing or unreadable")
    metadata = read_metadata(report_dir / "candidate").model_dump(mode="json")
    atomic_write_text(out, render_model_card(card_inputs(metadata, summary, settings, repo_dir)))
    return out


def _owner(contract_path: Path) -> str | None:
    """ODCS `team`: a list of members (v3.0) or {name, members} (v3.1); names and roles only."""
    try:
        team = (yaml.safe_load(contract_path.read_text(encoding="utf-8")) or {}).get("team")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    members = team.get("members") if isinstance(team, dict) else team
    names = []
    if isinstance(team, dict) and team.get("name"):
        names.append(str(team["name"]))
    for m in members if isinstance(members, list) else []:
        if isinstance(m, dict) and (m.get("name") or m.get("username")):
            role = f" ({m['role']})" if m.get("role") else ""
            names.append(f"{m.get('name') or m.get('username')}{role}")
    return ", ".join(names) or None


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
