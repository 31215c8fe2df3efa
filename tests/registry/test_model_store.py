"""The model store on its own: a local folder and an fsspec URL (memory://), publish and fetch."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from gitops_ml.errors import ArtifactError
from gitops_ml.registry.model_store import FsspecStore, VersionExists, fetch_artifact, open_store


def _candidate(folder: Path, payload: bytes) -> tuple[Path, str]:
    """A candidate folder as the PR check leaves it: model bytes, metadata and the monitor's reference."""
    folder.mkdir(parents=True)
    (folder / "model.skops").write_bytes(payload)
    (folder / "metadata.json").write_text(json.dumps({"version": "v-1"}))
    (folder / "reference.json").write_text("{}")
    return folder, hashlib.sha256(payload).hexdigest()


def test_a_local_store_publishes_each_version_once(tmp_path: Path):
    store = open_store(str(tmp_path / "store"))
    assert isinstance(store, FsspecStore)
    candidate, sha = _candidate(tmp_path / "candidate", b"model one")
    uri = store.publish(candidate, "v-1", sha)
    assert Path(uri) == tmp_path / "store" / "v-1" / "model.skops"
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == [
        "metadata.json",
        "model.skops",
        "reference.json",
    ]
    assert store.publish(candidate, "v-1", sha) == uri  # same bytes again: the same artifact
    other, other_sha = _candidate(tmp_path / "other", b"model two")
    with pytest.raises(VersionExists, match="version already published"):
        store.publish(other, "v-1", other_sha)
    assert Path(uri).read_bytes() == b"model one"  # what may be serving is never overwritten
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["v-1"]  # no temp folder left
    assert store.fetch(uri, tmp_path / "cache") == Path(uri)


def test_a_candidate_whose_bytes_do_not_match_its_sha256_is_refused(tmp_path: Path):
    store = open_store(str(tmp_path / "store"))
    candidate, _ = _candidate(tmp_path / "candidate", b"model one")
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        store.publish(candidate, "v-1", "0" * 64)
    assert not (tmp_path / "store" / "v-1").exists()


def test_an_fsspec_store_publishes_and_fetches_into_a_cache(tmp_path: Path):
    url = f"memory://model-store-{uuid.uuid4().hex[:8]}"
    store = open_store(url)
    candidate, sha = _candidate(tmp_path / "candidate", b"remote model")
    uri = store.publish(candidate, "v-1", sha)
    assert uri == f"{url}/v-1/model.skops"
    fetched = store.fetch(uri, tmp_path / "cache")
    assert fetched.read_bytes() == b"remote model"
    assert (fetched.parent / "metadata.json").exists() and (fetched.parent / "reference.json").exists()
    assert fetch_artifact(uri, tmp_path / "cache") == fetched  # downloaded once
    other, other_sha = _candidate(tmp_path / "other", b"another model")
    with pytest.raises(VersionExists):
        store.publish(other, "v-1", other_sha)


def test_a_missing_artifact_is_an_error_naming_it(tmp_path: Path):
    with pytest.raises(ArtifactError, match="artifact not found"):
        fetch_artifact(str(tmp_path / "store" / "v-9" / "model.skops"), tmp_path / "cache")
    missing = f"memory://model-store-{uuid.uuid4().hex[:8]}/v-9/model.skops"
    with pytest.raises(ArtifactError, match="artifact not found"):
        fetch_artifact(missing, tmp_path / "cache")
