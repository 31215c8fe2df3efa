"""Checks of whatever this repository holds in config/, data/ and its contract (dataset-agnostic).

The only tests that read them: the product's own tests run on fixtures, so a fork that replaces
the bundled example with its own data keeps a green suite, and these then check the fork's setup.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_ml.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings() -> Settings:
    from gitops_ml.jobs.config_check import check_config

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO_ROOT)  # config paths are relative to the repository root
        result = check_config(REPO_ROOT / "config")
    assert result.ok, "\n".join(result.problems)
    assert result.settings is not None
    return result.settings


def test_config_loads_and_passes_config_check(settings: Settings):
    assert settings.features.all


def test_contract_lints_with_datacontract_cli(settings: Settings):
    beside = Path(sys.executable).parent / "datacontract"
    cli = str(beside) if beside.exists() else shutil.which("datacontract")
    if cli is None:
        pytest.skip("datacontract-cli (dev dependency) is not installed")
    result = subprocess.run(
        [cli, "lint", str(REPO_ROOT / settings.dataset.contract)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifest_hashes_and_row_counts_match(settings: Settings):
    from gitops_ml.data.acquire import acquire

    data = acquire(REPO_ROOT / settings.dataset.manifest, time_column=settings.dataset.time_column)
    assert data.rows > 0


def test_each_batch_passes_its_contract(settings: Settings):
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.contracts.validate import validate_frame
    from gitops_ml.data.acquire import read_file_batch
    from gitops_ml.data.manifest import load_manifest, resolve_uri

    contract = load_contract(REPO_ROOT / settings.dataset.contract)
    manifest_path = REPO_ROOT / settings.dataset.manifest
    failures = []
    for entry in load_manifest(manifest_path).batches:
        if entry.format == "sql":
            continue  # a database is not part of the repository
        assert entry.uri is not None
        source = resolve_uri(entry.uri, manifest_path.parent)
        frame, _ = read_file_batch(source, entry.format, label=entry.name, expected_sha256=entry.sha256)
        report = validate_frame(frame, contract, source=entry.uri)
        if not report.passed:
            failures.append(report.summary_table())
    assert not failures, "\n\n".join(failures)


def test_init_still_recognises_the_bundled_example(settings: Settings):
    """While the repository holds the churn example, `init` replaces it without --force."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.jobs.init import is_bundled_example

    if load_contract(REPO_ROOT / settings.dataset.contract).id != "urn:datacontract:gitops-ml:churn":
        pytest.skip("the repository holds its own dataset (gitops-ml init ran)")
    assert is_bundled_example(REPO_ROOT), (
        "the example's contract or manifest changed: update EXAMPLE_FINGERPRINTS"
    )
