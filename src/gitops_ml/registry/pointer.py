"""The production pointer (`deploy/production.yaml`) and its append-only history.

The pointer is the GitOps source of truth: whatever it names is production. It is always replaced
atomically (temp file + rename), so a reader sees the old pointer or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gitops_ml.clock import utc_now_text
from gitops_ml.errors import GitopsMLError
from gitops_ml.io_utils import atomic_write_text
from gitops_ml.parsing import error_lines, load_yaml, read_yaml


class PointerError(GitopsMLError):
    """The pointer or history file is unreadable or malformed."""


class ProductionPointer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    artifact_uri: str = Field(description="model.skops in the model store")
    sha256: str
    metrics: dict[str, float] = Field(default_factory=dict)
    commit: str | None = None
    data_hash: str | None = None
    config_hash: str | None = None
    promoted_at: str = Field(default_factory=utc_now_text)
    metadata_uri: str | None = Field(None, description="metadata.json next to the artifact")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["promote", "rollback"]
    version: str
    previous_version: str | None
    at: str
    reason: str = ""
    pointer: ProductionPointer


def read_pointer(path: Path) -> ProductionPointer | None:
    """None means "no production model yet" (a valid state with its own verdict)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PointerError(f"{path}: cannot read: {exc}") from exc
    return parse_pointer(text, path)


def parse_pointer(text: bytes, source: Path) -> ProductionPointer | None:
    """The pointer in `text` (the bytes of `source`), validated; None for an empty file.

    The one parser of pointer files: the CLI, the flows and the serving app's hot reload (which
    hashes the bytes it read to notice a change) all come through here.
    """
    data = load_yaml(text, source, PointerError)
    if data is None:
        return None
    try:
        return ProductionPointer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(error_lines(exc, data))
        raise PointerError(f"{source}: invalid production pointer: {problems}") from exc


def write_pointer(path: Path, pointer: ProductionPointer) -> None:
    header = (
        "# Production model pointer: written by `gitops-ml promote` / `rollback`. Review changes in PRs.\n"
    )
    atomic_write_text(Path(path), header + yaml.safe_dump(pointer.model_dump(mode="json"), sort_keys=False))


def read_history(path: Path) -> list[HistoryEntry]:
    path = Path(path)
    if not path.exists():
        return []
    data = read_yaml(path, PointerError) or []
    if not isinstance(data, list):
        raise PointerError(f"{path}: expected a list of history entries")
    entries = []
    for index, item in enumerate(data):
        try:
            entries.append(HistoryEntry.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(error_lines(exc, item))
            raise PointerError(f"{path}: invalid history entry {index}: {problems}") from exc
    return entries


def append_history(path: Path, entry: HistoryEntry) -> None:
    """Append-only: earlier entries are copied through unchanged, the file is replaced atomically."""
    entries = read_history(path)
    payload: list[dict[str, Any]] = [e.model_dump(mode="json") for e in [*entries, entry]]
    header = "# Append-only history of production pointer changes (oldest first).\n"
    atomic_write_text(Path(path), header + yaml.safe_dump(payload, sort_keys=False))


def require_in_history(pointer: ProductionPointer, history_path: Path) -> None:
    """PointerError unless the history holds `pointer.version` with the same sha256.

    Promotion and rollback always append to the history before moving the pointer; a pointer
    naming anything else was edited by hand (or by an attacker) and is not served.
    """
    entries = [e for e in read_history(history_path) if e.version == pointer.version]
    if not entries:
        raise PointerError(
            f"{history_path}: version {pointer.version} of the pointer is not in the history; "
            "only promoted or rolled-back versions are served"
        )
    if not any(e.pointer.sha256 == pointer.sha256 for e in entries):
        raise PointerError(
            f"{history_path}: version {pointer.version} is in the history with sha256 "
            f"{entries[-1].pointer.sha256[:12]}, the pointer says {pointer.sha256[:12]}"
        )
