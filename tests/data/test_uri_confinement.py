"""Manifest entries stay inside the repository tree, or under the buckets config allows.

The attack (L): a PR's manifest could name any path or URL (`../`, `/etc/passwd`, `file:///etc/passwd`,
any host); the sha256 check came only after the read, so the job had already reached outside.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitops_ml.config import DatasetConfig
from gitops_ml.data.acquire import acquire
from gitops_ml.errors import DataError

from .helpers import file_entry, write_manifest

ROWS = b"a,b\n1,2\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with the manifest in data/ and a file just outside it."""
    root = tmp_path / "repo"
    (root / "data" / "batches").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data" / "batches" / "ok.csv").write_bytes(ROWS)
    (tmp_path / "outside.csv").write_bytes(ROWS)
    return root


@pytest.mark.parametrize(
    "uri",
    [
        "../../outside.csv",
        "batches/../../../outside.csv",
        "/etc/passwd",
        "file:///etc/passwd",
        "https://attacker.example/x.csv",
    ],
)
def test_a_batch_outside_the_repository_is_refused(repo: Path, uri: str) -> None:
    path = write_manifest(repo / "data", [file_entry("x", uri, ROWS)])
    with pytest.raises(DataError) as info:
        acquire(path)
    message = str(info.value)
    assert "batch 'x'" in message and repr(uri) in message
    assert "outside the repository" in message or "outside dataset.allowed_uri_prefixes" in message


def test_a_symlink_pointing_outside_is_refused(repo: Path) -> None:
    (repo / "data" / "batches" / "link.csv").symlink_to("/etc/passwd")
    path = write_manifest(repo / "data", [file_entry("x", "batches/link.csv", ROWS)])
    with pytest.raises(DataError, match="outside the repository"):
        acquire(path)


def test_files_inside_the_repository_are_read(repo: Path) -> None:
    # `..` that stays inside the tree is fine: data/ -> repo root -> data/batches
    path = write_manifest(repo / "data", [file_entry("x", "../data/batches/ok.csv", ROWS)])
    assert acquire(path).rows == 1


def test_urls_under_an_allowed_prefix_are_read(repo: Path, tmp_path: Path) -> None:
    uri = (tmp_path / "outside.csv").as_uri()
    path = write_manifest(repo / "data", [file_entry("x", uri, ROWS)])
    assert acquire(path, allowed_uri_prefixes=(tmp_path.as_uri() + "/",)).rows == 1
    with pytest.raises(DataError, match="outside dataset.allowed_uri_prefixes"):
        acquire(path, allowed_uri_prefixes=(tmp_path.as_uri() + "-other/",))


@pytest.mark.parametrize("prefix", ["s3://", "file://", "s3://bucket", "https://"])
def test_a_prefix_must_name_a_bucket(prefix: str) -> None:
    base = {"name": "t", "contract": "c", "manifest": "m", "target": "y", "id_column": "id"}
    with pytest.raises(ValueError, match="a scheme and a bucket"):
        DatasetConfig.model_validate({**base, "allowed_uri_prefixes": [prefix]})
    assert DatasetConfig.model_validate({**base, "allowed_uri_prefixes": ["s3://bucket/churn/"]})
