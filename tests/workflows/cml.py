"""Real CML 0.20.6 for tests, and the fake GitHub served over HTTPS the way CML talks to an Enterprise host.

CML is found, in order: `GITOPS_ML_CML` (a cml executable), `GITOPS_ML_CML_TARBALL` or the packed
release next to the repository (`../shared/cml/dvcorg-cml-0.20.6.tgz`, for machines whose npm
registry does not carry @dvcorg/cml), else `npm ci` of the lockfile the workflow installs
(.github/cml/package-lock.json). Installed once per venv and reused. Without any of them the tests
fail saying so: they never pass without having run CML.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CML_VERSION = "0.20.6"
LOCK_DIR = REPO_ROOT / ".github" / "cml"


def _cache_dir() -> Path:
    base = (
        Path(sys.prefix) / ".cache" if sys.prefix != sys.base_prefix else Path.home() / ".cache" / "gitops-ml"
    )
    return base / f"cml-{CML_VERSION}"


def _installed(prefix: Path) -> Path | None:
    binary = prefix / "node_modules" / ".bin" / "cml"
    package = prefix / "node_modules" / "@dvcorg" / "cml" / "package.json"
    if binary.exists() and package.exists() and json.loads(package.read_text())["version"] == CML_VERSION:
        return binary
    return None


def find_cml() -> Path:
    override = os.environ.get("GITOPS_ML_CML")
    if override:
        return Path(override)
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        pytest.fail("CML runs on Node.js: install node and npm to run the sticky-comment tests")
    prefix = _cache_dir()
    found = _installed(prefix)
    if found:
        return found
    prefix.mkdir(parents=True, exist_ok=True)
    tarball = Path(
        os.environ.get("GITOPS_ML_CML_TARBALL")
        or REPO_ROOT.parent / "shared" / "cml" / f"dvcorg-cml-{CML_VERSION}.tgz"
    )
    if tarball.is_file():
        (prefix / "package.json").write_text('{"name": "cml-under-test", "private": true}')
        command = [npm, "install", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", str(tarball)]
    else:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(LOCK_DIR / name, prefix / name)
        command = [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]
    proc = subprocess.run(command, cwd=prefix, capture_output=True, text=True, timeout=600, check=False)
    found = _installed(prefix)
    if proc.returncode != 0 or found is None:
        pytest.fail(
            f"could not install CML {CML_VERSION} ({' '.join(command[:2])}, exit {proc.returncode}); set "
            f"GITOPS_ML_CML or GITOPS_ML_CML_TARBALL:\n{proc.stderr[-2000:]}"
        )
    return found


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 (CML only speaks HTTPS to a non-github.com host)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("openssl is needed to serve the fake GitHub over HTTPS for CML")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
