"""The deepchecks environment: where it is, whether it is usable, and how `make install` builds it.

deepchecks 0.19.1 needs numpy<2 (and an older scikit-learn, pandas and plotly), so it gets its own
virtual environment built by uv from `envs/deepchecks/uv.lock`, on an interpreter its pinned
numpy has binary wheels for (CPython 3.11 or 3.12). The core talks to it only through
`deepchecks_runner.py` (Parquet + JSON in, JSON + HTML out).

A build is recorded by a stamp file inside the environment, keyed by the hash of the lock and its
pyproject. The stamp is removed before a (re)build starts and written only after deepchecks imported
in the finished environment: a build killed half-way leaves no stamp, so the environment counts as
missing and the next `make install` rebuilds it from scratch.

Run as `python -m gitops_ml.quality build|status` (`make install` calls `build`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.errors import GitopsMLError

# The interpreters envs/deepchecks/uv.lock can be installed on from binary wheels (numpy 1.26).
SUPPORTED_PYTHONS: tuple[tuple[int, int], ...] = ((3, 11), (3, 12))
STAMP_NAME = ".gitops-ml-deepchecks-stamp.json"
ENV_PROJECT_VAR = "GITOPS_ML_DEEPCHECKS_PROJECT"  # folder with the env's pyproject.toml + uv.lock
ENV_DIR_VAR = "GITOPS_ML_DEEPCHECKS_ENV"  # where the virtual environment lives
PYTHON_VAR = "GITOPS_ML_DEEPCHECKS_PYTHON"  # interpreter to build it with
RUNNER = Path(__file__).with_name("deepchecks_runner.py")


class DeepchecksEnvError(GitopsMLError):
    """The deepchecks environment is missing, half-built, stale or cannot be built here."""


def _wanted() -> str:
    return " or ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHONS)


INSTALL_HINT = (
    f"install CPython {_wanted()} (e.g. `apt-get install python3.11`, `pyenv install 3.11`, or "
    f"`uv python install 3.11` where uv may download), or point {PYTHON_VAR} at one, then run `make install`"
)


def project_dir() -> Path:
    """envs/deepchecks of the checkout this package runs from (editable install)."""
    if os.environ.get(ENV_PROJECT_VAR):
        return Path(os.environ[ENV_PROJECT_VAR])
    return Path(__file__).resolve().parents[3] / "envs" / "deepchecks"


def env_dir() -> Path:
    if os.environ.get(ENV_DIR_VAR):
        return Path(os.environ[ENV_DIR_VAR])
    return project_dir() / ".venv"


def env_python(root: Path | None = None) -> Path:
    return (root or env_dir()) / "bin" / "python"


def lock_hash(project: Path | None = None) -> str:
    """What the stamp is keyed by: the environment's declared and locked dependencies."""
    project = project or project_dir()
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "uv.lock"):
        path = project / name
        if not path.is_file():
            raise DeepchecksEnvError(f"{path}: missing (the deepchecks environment is declared there)")
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class EnvStatus:
    ready: bool
    reason: str
    python: Path


def status() -> EnvStatus:
    """Usable or not, without starting it; the reason names the fix."""
    root = env_dir()
    python = env_python(root)
    stamp = root / STAMP_NAME
    if not stamp.is_file():
        what = "half-built (no stamp: its build did not finish)" if root.exists() else "missing"
        return EnvStatus(False, f"deepchecks environment {root} is {what}; run `make install`", python)
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8")).get("lock_hash")
        expected = lock_hash()
    except (ValueError, OSError, AttributeError) as exc:
        return EnvStatus(
            False, f"deepchecks environment {root}: unreadable stamp ({exc}); run `make install`", python
        )
    if recorded != expected:
        return EnvStatus(
            False,
            f"deepchecks environment {root} was built from another envs/deepchecks/uv.lock; run `make install`",
            python,
        )
    if not python.exists():
        return EnvStatus(
            False, f"deepchecks environment {root} has no interpreter; run `make install`", python
        )
    return EnvStatus(True, "ready", python)


def mark_broken(reason: str) -> None:
    """The environment failed at run time (deepchecks would not import): make the next install rebuild it."""
    (env_dir() / STAMP_NAME).unlink(missing_ok=True)


# --------------------------------------------------------------------------- interpreters


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)", done.stdout.strip())
    return (int(match[1]), int(match[2])) if done.returncode == 0 and match else None


def _candidates() -> list[str]:
    found: list[str] = [getattr(sys, "_base_executable", sys.executable)]
    for major, minor in SUPPORTED_PYTHONS:
        name = f"python{major}.{minor}"
        if path := shutil.which(name):
            found.append(path)
        found += [f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for major, minor in SUPPORTED_PYTHONS:
        found += sorted(str(p) for p in pyenv_root.glob(f"versions/{major}.{minor}.*/bin/python3"))
    return [c for c in dict.fromkeys(found) if Path(c).exists()]  # first of each, in order


def find_python() -> tuple[str, tuple[int, int]]:
    """An interpreter the deepchecks lock installs on; the message says what to install when none."""
    chosen = os.environ.get(PYTHON_VAR)
    if chosen:
        version = _version_of(chosen)
        if version is None:
            raise DeepchecksEnvError(
                f"{PYTHON_VAR}={chosen}: not a working Python interpreter; {INSTALL_HINT}"
            )
        if version not in SUPPORTED_PYTHONS:
            raise DeepchecksEnvError(
                f"{PYTHON_VAR}={chosen} is Python {version[0]}.{version[1]}, too new or too old for deepchecks "
                f"0.19.1 (its numpy<2 has binary wheels for Python {_wanted()} only); {INSTALL_HINT}"
            )
        return chosen, version
    seen = []
    for candidate in _candidates():
        version = _version_of(candidate)
        if version in SUPPORTED_PYTHONS:
            return candidate, version
        if version:
            seen.append(f"{candidate} ({version[0]}.{version[1]})")
    raise DeepchecksEnvError(
        f"no Python {_wanted()} found for the deepchecks environment (deepchecks 0.19.1 needs numpy<2, which "
        f"has binary wheels for Python {_wanted()} only; found: {', '.join(seen) or 'none'}); {INSTALL_HINT}"
    )


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return str(beside)
    if found := shutil.which("uv"):
        return found
    raise DeepchecksEnvError("uv not found (it is a dev dependency of the project): run `make install`")


# --------------------------------------------------------------------------- build


def build(*, force: bool = False, log: Callable[[str], object] = print) -> Path:
    """Create or repair the environment from its lock; a no-op when the stamp matches."""
    current = status()
    if current.ready and not force:
        log(f"deepchecks environment ready: {env_dir()}")
        return current.python
    project, root = project_dir(), env_dir()
    expected = lock_hash(project)
    python, version = find_python()
    stamp = root / STAMP_NAME
    stamp.unlink(missing_ok=True)
    if root.exists():
        # Rebuilt from nothing: a venv left by a killed build cannot be trusted file by file.
        shutil.rmtree(root)
    log(f"building the deepchecks environment {root} with Python {version[0]}.{version[1]} ({python})")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(root)}
    env.pop("VIRTUAL_ENV", None)
    command = [_uv(), "sync", "--locked", "--no-build", "--compile-bytecode", "--quiet", "--python", python]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        hint = ""
        if "needs to be updated" in detail or "--locked" in detail:
            hint = "; envs/deepchecks/uv.lock does not match envs/deepchecks/pyproject.toml: run `uv lock` there and commit it"
        raise DeepchecksEnvError(
            f"building the deepchecks environment failed ({' '.join(command[:3])}): {detail}{hint}"
        )
    smoke = subprocess.run(
        [
            str(env_python(root)),
            "-I",
            "-W",
            "ignore",
            "-c",
            "import deepchecks.tabular, pyarrow; print(deepchecks.__version__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if smoke.returncode != 0:
        raise DeepchecksEnvError(
            f"deepchecks does not import in the new environment {root}: {smoke.stderr.strip()[-2000:]}"
        )
    stamp.write_text(
        json.dumps(
            {
                "lock_hash": expected,
                "python": f"{version[0]}.{version[1]}",
                "deepchecks": smoke.stdout.strip(),
            }
        ),
        encoding="utf-8",
    )
    log(f"deepchecks environment ready: {root} (deepchecks {smoke.stdout.strip()})")
    return env_python(root)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    try:
        if command == "build":
            build(force="--force" in args)
            return 0
        if command == "status":
            current = status()
            print(current.reason)
            return 0 if current.ready else 1
    except DeepchecksEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("usage: python -m gitops_ml.quality build [--force] | status", file=sys.stderr)
    return 2
