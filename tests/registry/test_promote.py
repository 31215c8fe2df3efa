"""Promotion and rollback: pointer, history, store, lock, idempotence, crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gitops_ml.config import MODEL_STORE_URL_ENV
from gitops_ml.errors import ArtifactError, GitopsMLError
from gitops_ml.registry.lock import LockTimeout, exclusive_lock
from gitops_ml.registry.pointer import read_history, read_pointer
from gitops_ml.registry.promote import promote_candidate, rollback

# The rest of what registry.artifacts.ArtifactMetadata requires of a metadata file.
TYPED_FIELDS = {"task": "binary", "target": "y", "features": ["a"], "created_at": "2026-12-01T00:00:00+00:00"}


def make_candidate(root: Path, version: str, payload: bytes | None = None) -> Path:
    folder = root / f"cand-{version}"
    folder.mkdir(parents=True)
    data = payload if payload is not None else f"model bytes of {version}".encode()
    (folder / "model.skops").write_bytes(data)
    meta = {
        "version": version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "git_commit": "abc123",
        "config_hash": "c" * 64,
        "data_hash": "d" * 64,
        "metrics": {"roc_auc": 0.81, "brier": None},
        **TYPED_FIELDS,
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def test_promote_writes_pointer_history_and_store(tmp_path, registry):
    change = promote_candidate(make_candidate(tmp_path, "v-1"), registry, reason="merge of #1")
    assert change.action == "promoted" and change.previous_version is None
    pointer = read_pointer(registry.pointer)
    assert pointer.version == "v-1"
    assert pointer.metrics == {"roc_auc": 0.81}
    stored = Path(pointer.artifact_uri)
    assert stored == tmp_path / "store" / "v-1" / "model.skops"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == pointer.sha256
    history = read_history(registry.history)
    assert [(e.action, e.version, e.reason) for e in history] == [("promote", "v-1", "merge of #1")]
    assert not list((tmp_path / "store").glob(".tmp-*")), "temporary upload left behind"
    # nothing but the pointer and its history in deploy/ (the lock lives in ignored .gitops-ml/)
    assert sorted(p.name for p in (tmp_path / "deploy").iterdir()) == ["history.yaml", "production.yaml"]


def test_promoting_the_same_version_twice_is_a_noop(tmp_path, registry):
    cand = make_candidate(tmp_path, "v-1")
    promote_candidate(cand, registry)
    before = registry.pointer.read_bytes()
    change = promote_candidate(cand, registry)
    assert change.action == "noop" and not change.changed
    assert registry.pointer.read_bytes() == before
    assert len(read_history(registry.history)) == 1


@pytest.mark.parametrize("remote", [False, True], ids=["local", "fsspec-memory"])
def test_repromoting_a_version_with_other_bytes_reuses_the_stored_artifact(
    tmp_path, registry, remote, monkeypatch
):
    # promoted, rolled back, promoted again: a rebuilt skops zip differs byte-wise from the stored one
    if remote:
        monkeypatch.setenv(MODEL_STORE_URL_ENV, f"memory://store-{tmp_path.name}")
    first = promote_candidate(make_candidate(tmp_path, "v-1", b"first build"), registry)
    promote_candidate(make_candidate(tmp_path, "v-2"), registry)
    change = promote_candidate(make_candidate(tmp_path / "rebuild", "v-1", b"second build"), registry)
    assert (change.action, change.artifact_uri) == ("promoted", first.artifact_uri)
    assert read_pointer(registry.pointer).sha256 == hashlib.sha256(b"first build").hexdigest()


def test_rollback_to_previous_and_named_version(tmp_path, registry):
    promote_candidate(make_candidate(tmp_path, "v-1"), registry)
    promote_candidate(make_candidate(tmp_path, "v-2"), registry)
    promote_candidate(make_candidate(tmp_path, "v-3"), registry)
    change = rollback(registry, reason="bad predictions")
    assert (change.action, change.version, change.previous_version) == ("rolled-back", "v-2", "v-3")
    assert read_pointer(registry.pointer).version == "v-2"
    change = rollback(registry, to_version="v-1")
    assert read_pointer(registry.pointer).version == "v-1"
    actions = [(e.action, e.version) for e in read_history(registry.history)]
    assert actions == [
        ("promote", "v-1"),
        ("promote", "v-2"),
        ("promote", "v-3"),
        ("rollback", "v-2"),
        ("rollback", "v-1"),
    ]


def test_rollback_errors_name_the_problem(tmp_path, registry):
    with pytest.raises(GitopsMLError, match="no history"):
        rollback(registry)
    promote_candidate(make_candidate(tmp_path, "v-1"), registry)
    with pytest.raises(GitopsMLError, match="v-9 is not in the history"):
        rollback(registry, to_version="v-9")
    with pytest.raises(GitopsMLError, match="no version other than the current one"):
        rollback(registry)


def test_candidate_whose_bytes_do_not_match_metadata_is_refused(tmp_path, registry):
    cand = make_candidate(tmp_path, "v-1")
    (cand / "model.skops").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        promote_candidate(cand, registry)
    assert not registry.pointer.exists() and not registry.history.exists()
    assert not (tmp_path / "store" / "v-1").exists()


def test_rollback_refuses_an_artifact_changed_in_the_store(tmp_path, registry):
    promote_candidate(make_candidate(tmp_path, "v-1"), registry)
    promote_candidate(make_candidate(tmp_path, "v-2"), registry)
    (tmp_path / "store" / "v-1" / "model.skops").write_bytes(b"evil")
    with pytest.raises(ArtifactError, match="sha256"):
        rollback(registry)
    assert read_pointer(registry.pointer).version == "v-2"


def test_lock_serializes_and_times_out(tmp_path):
    lock = tmp_path / "x.lock"
    order: list[str] = []

    def hold() -> None:
        with exclusive_lock(lock):
            order.append("a-in")
            time.sleep(0.3)
            order.append("a-out")

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.05)
    with (
        pytest.raises(LockTimeout, match="another promotion holds the lock"),
        exclusive_lock(lock, timeout_s=0.05),
    ):
        pass
    with exclusive_lock(lock, timeout_s=5):
        order.append("b-in")
    thread.join()
    assert order == ["a-in", "a-out", "b-in"]


def test_concurrent_promotions_of_different_versions_are_serialized(tmp_path, registry):
    cands = [make_candidate(tmp_path, f"v-{i}") for i in range(4)]
    threads = [threading.Thread(target=promote_candidate, args=(c, registry)) for c in cands]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = read_history(registry.history)
    assert len(history) == 4
    # each entry's previous_version is the version before it: no lost update
    assert [e.previous_version for e in history][1:] == [e.version for e in history][:-1]
    assert read_pointer(registry.pointer).version == history[-1].version


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gitops_ml.config import RegistryConfig
    import gitops_ml.registry.promote as promote
    stage = sys.argv[2]
    def stall(*args, **kwargs):
        print("STALLED", flush=True)
        time.sleep(60)
    if stage == "pointer":
        promote.write_pointer = stall
    elif stage == "history":
        promote.append_history = stall
    registry = RegistryConfig(pointer=Path(sys.argv[1]) / "deploy/production.yaml",
                              history=Path(sys.argv[1]) / "deploy/history.yaml")
    promote.promote_candidate(Path(sys.argv[3]), registry)
""")


@pytest.mark.parametrize("stage", ["history", "pointer"])
def test_promotion_killed_midway_leaves_old_pointer_and_a_clean_retry(tmp_path, registry, stage):
    promote_candidate(make_candidate(tmp_path, "v-1"), registry)
    old_pointer = registry.pointer.read_bytes()
    cand = make_candidate(tmp_path, "v-2")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path), stage, str(cand)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "STALLED"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    # the old pointer is intact and names a loadable (sha256-valid) artifact
    assert registry.pointer.read_bytes() == old_pointer
    pointer = read_pointer(registry.pointer)
    assert hashlib.sha256(Path(pointer.artifact_uri).read_bytes()).hexdigest() == pointer.sha256
    # the kernel released the lock; a retry completes without duplicating history
    change = promote_candidate(cand, registry)
    assert change.action == "promoted"
    versions = [e.version for e in read_history(registry.history)]
    assert versions == ["v-1", "v-2"]
