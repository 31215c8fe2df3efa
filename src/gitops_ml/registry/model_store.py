"""Model stores: where promoted artifacts live. Any fsspec URL; a local folder by default.

Publishing is crash-safe: files go to a temporary name, their sha256 is verified by reading them
back, and only then are they renamed into place. A store never holds a half-written version.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Protocol

import fsspec

from gitops_ml.errors import ArtifactError
from gitops_ml.io_utils import sha256_file, sha256_of
from gitops_ml.registry.artifacts import ARTIFACT_FILES, METADATA_FILE, MODEL_FILE, OPTIONAL_FILES
from gitops_ml.registry.github_release import GitHubReleaseStore


class VersionExists(ArtifactError):
    """The store already holds this version with other bytes (skops zips are not byte-stable).

    A version is a function of (commit, config, data), so the stored artifact is the same model:
    promotion reuses it rather than overwriting what may be serving.
    """

    def __init__(self, uri: str, sha256: str):
        super().__init__(f"{uri}: version already published (sha256 {sha256[:12]})")
        self.uri = uri
        self.sha256 = sha256


class ModelStore(Protocol):
    def publish(self, local_dir: Path, version: str, sha256: str) -> str:
        """Copy the artifact files (registry.artifacts.ARTIFACT_FILES) of `local_dir` into the store; return the model's URI."""

    def fetch(self, artifact_uri: str, cache_dir: Path) -> Path:
        """A local path to the artifact named by `artifact_uri` (downloaded if remote)."""


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> Path:
    return Path(url.removeprefix("file://"))


class FsspecStore:
    """A folder (local path or any fsspec URL: s3://, gs://, memory://, ...) of `<version>/<MODEL_FILE>`."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _uri(self, version: str, name: str = MODEL_FILE) -> str:
        return f"{self.url}/{version}/{name}"

    def publish(self, local_dir: Path, version: str, sha256: str) -> str:
        local_dir = Path(local_dir)
        if sha256_file(local_dir / MODEL_FILE) != sha256:
            raise ArtifactError(f"{local_dir / MODEL_FILE}: sha256 does not match the candidate's metadata")
        if _is_local(self.url):
            return self._publish_local(local_dir, version, sha256)
        fs, root = fsspec.core.url_to_fs(self.url)
        final = f"{root}/{version}"
        if fs.exists(f"{final}/{MODEL_FILE}"):
            stored = _fs_sha256(fs, f"{final}/{MODEL_FILE}")
            if stored != sha256:
                raise VersionExists(self._uri(version), stored)
            return self._uri(version)
        tmp = f"{root}/.tmp-{version}-{uuid.uuid4().hex[:8]}"
        for name in _files_to_publish(local_dir):
            fs.put_file(str(local_dir / name), f"{tmp}/{name}")
        self._verify_remote(fs, f"{tmp}/{MODEL_FILE}", sha256)
        fs.mv(tmp, final, recursive=True)
        return self._uri(version)

    def _publish_local(self, local_dir: Path, version: str, sha256: str) -> str:
        root = _local_path(self.url)
        final = root / version
        if (final / MODEL_FILE).exists():
            stored = sha256_file(final / MODEL_FILE)
            if stored != sha256:
                raise VersionExists(str(final / MODEL_FILE), stored)
            return str(final / MODEL_FILE)
        tmp = root / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            for name in _files_to_publish(local_dir):
                shutil.copyfile(local_dir / name, tmp / name)
            if sha256_file(tmp / MODEL_FILE) != sha256:
                raise ArtifactError(f"{tmp}: copy does not match sha256 {sha256[:12]}")
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(final / MODEL_FILE)

    @staticmethod
    def _verify_remote(fs: fsspec.AbstractFileSystem, path: str, sha256: str) -> None:
        actual = _fs_sha256(fs, path)
        if actual != sha256:
            raise ArtifactError(f"{path}: sha256 {actual[:12]} != expected {sha256[:12]}")

    def fetch(self, artifact_uri: str, cache_dir: Path) -> Path:
        return fetch_artifact(artifact_uri, cache_dir)


def _fs_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    with fs.open(path, "rb") as handle:
        return sha256_of(handle)


def _files_to_publish(local_dir: Path) -> list[str]:
    return [*ARTIFACT_FILES, *(name for name in OPTIONAL_FILES if (local_dir / name).exists())]


def fetch_artifact(artifact_uri: str, cache_dir: Path) -> Path:
    """Local path of an artifact; remote ones are downloaded once into `cache_dir` (temp + rename).

    The caller verifies sha256 on load (registry.artifacts.load_model), every time.
    """
    if artifact_uri.startswith("github-release://"):
        return GitHubReleaseStore.from_url(artifact_uri).fetch(artifact_uri, cache_dir)
    if _is_local(artifact_uri):
        path = _local_path(artifact_uri)
        if not path.exists():
            raise ArtifactError(f"{artifact_uri}: artifact not found in the model store")
        return path
    fs, path = fsspec.core.url_to_fs(artifact_uri)
    folder = Path(cache_dir) / hashlib.sha256(artifact_uri.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(path).name
    if not target.exists():
        tmp = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            fs.get_file(path, str(tmp))
        except FileNotFoundError as exc:
            raise ArtifactError(f"{artifact_uri}: artifact not found in the model store") from exc
        tmp.rename(target)
        for name in (METADATA_FILE, *OPTIONAL_FILES):
            sibling = path.rsplit("/", 1)[0] + "/" + name
            if fs.exists(sibling):
                fs.get_file(sibling, str(folder / name))
    return target


def open_store(url: str) -> ModelStore:
    """Pick the backend for a store URL from config (`registry.store_url`)."""
    if url.startswith("github-release://"):
        return GitHubReleaseStore.from_url(url)
    return FsspecStore(url)
