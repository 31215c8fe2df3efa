"""Moving the production pointer: promote a candidate, roll back to an earlier version.

Order of writes is what makes a killed promotion safe: (1) the artifact is published under its
version (the old pointer stays valid meanwhile), (2) the history entry is appended, (3) the pointer
is replaced atomically. The pointer write is the commit point; a re-run after a crash at (2)
does not append the entry twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gitops_ml.clock import utc_now_text
from gitops_ml.config import RegistryConfig, model_store_url
from gitops_ml.errors import ArtifactError, GitopsMLError
from gitops_ml.io_utils import sha256_file
from gitops_ml.registry.artifacts import METADATA_FILE, MODEL_FILE, ArtifactMetadata, read_metadata
from gitops_ml.registry.lock import exclusive_lock
from gitops_ml.registry.model_store import VersionExists, open_store
from gitops_ml.registry.pointer import (
    HistoryEntry,
    ProductionPointer,
    append_history,
    read_history,
    read_pointer,
    write_pointer,
)

# Where a remote artifact is downloaded to check its sha256 before a rollback points at it.
ROLLBACK_CACHE = Path(".gitops-ml/model-cache")


@dataclass(frozen=True)
class PointerChange:
    action: Literal["promoted", "rolled-back", "noop"]
    version: str
    previous_version: str | None
    artifact_uri: str
    pointer_path: Path

    @property
    def changed(self) -> bool:
        return self.action != "noop"


def _lock_path(registry: RegistryConfig) -> Path:
    # beside the repository's other local state (.gitops-ml/, ignored), not in deploy/: a promotion
    # leaves nothing untracked in the work tree
    return Path(registry.pointer).parent.parent / ".gitops-ml" / "promote.lock"


def read_candidate_metadata(candidate_dir: Path) -> ArtifactMetadata:
    path = Path(candidate_dir) / METADATA_FILE
    if not path.exists():
        raise ArtifactError(f"{path}: candidate metadata not found")
    meta = read_metadata(candidate_dir)
    actual = sha256_file(Path(candidate_dir) / MODEL_FILE)
    if actual != meta.sha256:
        raise ArtifactError(
            f"{candidate_dir}/{MODEL_FILE}: sha256 {actual[:12]} != metadata {meta.sha256[:12]}"
        )
    return meta


def publish_candidate(candidate_dir: Path, registry: RegistryConfig) -> ProductionPointer:
    """Publish the candidate's artifact under its version; the pointer that would name it.

    A version already in the store with other bytes (promoted, rolled back, promoted again; or
    proposed as a challenger first) is reused: the same (commit, config, data) is the same model.
    """
    meta = read_candidate_metadata(candidate_dir)
    version, sha256 = meta.version, meta.sha256
    try:
        artifact_uri = open_store(model_store_url(registry)).publish(Path(candidate_dir), version, sha256)
    except VersionExists as exc:
        artifact_uri, sha256 = exc.uri, exc.sha256
    return ProductionPointer(
        version=version,
        artifact_uri=artifact_uri,
        sha256=sha256,
        metrics={k: float(v) for k, v in meta.metrics.items() if v is not None},
        commit=meta.git_commit,
        data_hash=meta.data_hash,
        config_hash=meta.config_hash,
        metadata_uri=artifact_uri.rsplit("/", 1)[0] + "/" + METADATA_FILE,
    )


def promote_candidate(candidate_dir: Path, registry: RegistryConfig, *, reason: str = "") -> PointerChange:
    """Publish the candidate to the store and point production at it (idempotent, serialized)."""
    meta = read_candidate_metadata(candidate_dir)
    with exclusive_lock(_lock_path(registry), registry.lock_timeout_s):
        current = read_pointer(registry.pointer)
        if current is not None and current.version == meta.version:
            return PointerChange(
                "noop", meta.version, current.version, current.artifact_uri, Path(registry.pointer)
            )
        pointer = publish_candidate(candidate_dir, registry)
        return _move_pointer(registry, pointer, current, reason)


def promote_published(
    pointer: ProductionPointer, registry: RegistryConfig, *, reason: str = ""
) -> PointerChange:
    """Point production at an artifact already in the store (a challenger), with its history entry."""
    with exclusive_lock(_lock_path(registry), registry.lock_timeout_s):
        current = read_pointer(registry.pointer)
        if current is not None and current.version == pointer.version:
            return PointerChange(
                "noop", pointer.version, current.version, current.artifact_uri, Path(registry.pointer)
            )
        return _move_pointer(
            registry, pointer.model_copy(update={"promoted_at": utc_now_text()}), current, reason
        )


def _move_pointer(
    registry: RegistryConfig,
    pointer: ProductionPointer,
    current: ProductionPointer | None,
    reason: str,
    action: Literal["promote", "rollback"] = "promote",
) -> PointerChange:
    """History first, then the pointer: a crash between the two leaves a history entry to redo."""
    _append_once(registry, action, pointer, current, reason)
    write_pointer(registry.pointer, pointer)
    return PointerChange(
        "promoted" if action == "promote" else "rolled-back",
        pointer.version,
        current.version if current else None,
        pointer.artifact_uri,
        Path(registry.pointer),
    )


def rollback(registry: RegistryConfig, *, to_version: str | None = None, reason: str = "") -> PointerChange:
    """Point production back at an earlier version from the history (default: the one before)."""
    with exclusive_lock(_lock_path(registry), registry.lock_timeout_s):
        current = read_pointer(registry.pointer)
        history = read_history(registry.history)
        target = _rollback_target(history, current, to_version)
        if current is not None and current.version == target.version:
            return PointerChange(
                "noop", target.version, current.version, current.artifact_uri, Path(registry.pointer)
            )
        path = open_store(model_store_url(registry)).fetch(target.artifact_uri, ROLLBACK_CACHE)
        if sha256_file(path) != target.sha256:
            raise ArtifactError(
                f"{target.artifact_uri}: sha256 no longer matches history; refusing to roll back"
            )
        pointer = target.model_copy(update={"promoted_at": utc_now_text()})
        return _move_pointer(registry, pointer, current, reason, "rollback")


def _rollback_target(
    history: list[HistoryEntry], current: ProductionPointer | None, to_version: str | None
) -> ProductionPointer:
    if not history:
        raise GitopsMLError(
            f"no history: nothing to roll back to{f' (asked for {to_version})' if to_version else ''}"
        )
    if to_version is not None:
        for entry in reversed(history):
            if entry.version == to_version:
                return entry.pointer
        known = ", ".join(dict.fromkeys(e.version for e in history))
        raise GitopsMLError(f"version {to_version} is not in the history (known: {known})")
    current_version = current.version if current else None
    for entry in reversed(history):
        if entry.version != current_version:
            return entry.pointer
    raise GitopsMLError(f"history holds no version other than the current one ({current_version})")


def _append_once(
    registry: RegistryConfig,
    action: str,
    pointer: ProductionPointer,
    current: ProductionPointer | None,
    reason: str,
) -> None:
    history = read_history(registry.history)
    last = history[-1] if history else None
    previous = current.version if current else None
    if (
        last is not None
        and last.action == action
        and last.version == pointer.version
        and last.previous_version == previous
    ):
        return  # written by a run that died before moving the pointer
    append_history(
        registry.history,
        HistoryEntry(
            action=action,
            version=pointer.version,
            previous_version=previous,
            at=utc_now_text(),
            reason=reason,
            pointer=pointer,
        ),
    )
