"""The deepchecks environment: missing, half-built, stale lock, wrong interpreter: never a pass."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gitops_ml.config import CheckSpec, DeepchecksConfig, SuiteConfig
from gitops_ml.quality import environment
from gitops_ml.quality.deepchecks_suites import CATALOGUE_PATH, run_data_integrity
from gitops_ml.quality.environment import DeepchecksEnvError
from gitops_ml.quality.support import check_support, support_table

REPO = Path(__file__).resolve().parents[2]


def _integrity(df: pd.DataFrame, columns: dict[str, Any]) -> Any:
    cfg = DeepchecksConfig(
        data_integrity=SuiteConfig(
            checks=[CheckSpec(check="MixedNulls", blocking=True), CheckSpec(check="DataDuplicates")]
        )
    )
    return run_data_integrity(df, cfg=cfg, **columns)


def _assert_error_rows(summary: Any, words: str) -> None:
    assert [c.status for c in summary.checks] == ["error", "error"]
    for outcome in summary.checks:
        assert words in (outcome.error or ""), outcome.error
        assert "make install" in (outcome.error or "")
    # the blocking check blocks; the other is still an error, never a pass
    assert [c.check for c in summary.blocking_failures] == ["MixedNulls"]


def _env_with_interpreter(tmp_path: Path) -> Path:
    """A folder that looks like a virtual environment: an interpreter (the core's, without deepchecks)."""
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    return env


def test_missing_environment_is_an_error_row_that_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(tmp_path / "nowhere"))
    _assert_error_rows(_integrity(train_df, columns), "is missing")


def test_environment_without_stamp_counts_as_half_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    env = _env_with_interpreter(tmp_path)  # an interpreter, but the build never finished
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(env))
    assert "half-built" in environment.status().reason
    _assert_error_rows(_integrity(train_df, columns), "half-built")


def test_environment_whose_deepchecks_does_not_import_is_marked_for_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    """A stamp that matches, but the packages are gone (a corrupted environment)."""
    env = _env_with_interpreter(tmp_path)  # the core's Python: it has no deepchecks
    stamp = env / environment.STAMP_NAME
    stamp.write_text(json.dumps({"lock_hash": environment.lock_hash()}), encoding="utf-8")
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(env))
    assert environment.status().ready
    _assert_error_rows(_integrity(train_df, columns), "deepchecks does not import")
    assert not stamp.exists()  # so the next `make install` rebuilds it
    assert not environment.status().ready


def test_stamp_of_another_lock_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env_with_interpreter(tmp_path)
    (env / environment.STAMP_NAME).write_text(json.dumps({"lock_hash": "0" * 64}), encoding="utf-8")
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(env))
    assert "built from another envs/deepchecks/uv.lock" in environment.status().reason


def _fake_python(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho {version}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_interpreter_too_new_is_refused_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(environment.PYTHON_VAR, str(_fake_python(tmp_path / "python3.14", "3.14")))
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(tmp_path / "env"))
    assert environment.main(["build"]) == 2
    err = capsys.readouterr().err
    assert "is Python 3.14, too new or too old for deepchecks 0.19.1" in err
    assert "install CPython 3.11 or 3.12" in err
    assert not (tmp_path / "env").exists()  # nothing half-written


def test_no_usable_interpreter_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(environment.PYTHON_VAR, raising=False)
    too_new = str(_fake_python(tmp_path / "python3.13", "3.13"))
    monkeypatch.setattr(environment, "_candidates", lambda: [too_new])
    with pytest.raises(DeepchecksEnvError) as err:
        environment.find_python()
    assert f"found: {too_new} (3.13)" in str(err.value)
    assert "pyenv install 3.11" in str(err.value)


def test_lock_that_does_not_match_its_pyproject_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "deepchecks-env"
    project.mkdir()
    shutil.copy(environment.project_dir() / "uv.lock", project / "uv.lock")
    pyproject = (environment.project_dir() / "pyproject.toml").read_text(encoding="utf-8")
    (project / "pyproject.toml").write_text(
        pyproject.replace('"setuptools<81"', '"setuptools<80"'), encoding="utf-8"
    )
    monkeypatch.setenv(environment.ENV_PROJECT_VAR, str(project))
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(tmp_path / "env"))
    with pytest.raises(DeepchecksEnvError, match="uv.lock does not match envs/deepchecks/pyproject.toml"):
        environment.build(log=lambda _: None)
    assert not (tmp_path / "env" / environment.STAMP_NAME).exists()


def test_core_lock_that_does_not_match_pyproject_fails_make_install(tmp_path: Path) -> None:
    """`make install` refuses a uv.lock that pyproject.toml has moved away from (before installing anything)."""
    for name in ("Makefile", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('"pyyaml>=6",', '"pyyaml>=6",\n    "tomli-w>=1",'), encoding="utf-8"
    )
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "uv"):
        (bin_dir / tool).symlink_to(Path(sys.executable).with_name(tool))
    done = subprocess.run(
        ["make", "install"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode != 0
    assert "needs to be updated" in done.stderr
    assert "uv lock" in done.stderr


@pytest.mark.slow
def test_build_killed_half_way_is_repaired_by_the_next_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    env = tmp_path / "env"
    monkeypatch.setenv(environment.ENV_DIR_VAR, str(env))
    build = [sys.executable, "-m", "gitops_ml.quality", "build"]
    proc = subprocess.Popen(
        build, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (env / "bin" / "python").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-install, uv included: packages partly there, no stamp
    proc.wait()
    assert not environment.status().ready
    _assert_error_rows(_integrity(train_df, columns), "half-built")
    done = subprocess.run(build, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert environment.status().ready
    summary = _integrity(train_df, columns)
    assert [c.status for c in summary.checks] == ["passed", "passed"]


def test_runner_imports_nothing_of_the_core() -> None:
    """It runs on the deepchecks environment's numpy<2: the core (numpy 2) must stay out of it."""
    tree = ast.parse(environment.RUNNER.read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.level)
    }
    third_party = imported - set(sys.stdlib_module_names)
    assert third_party <= {"deepchecks", "pandas", "numpy", "threadpoolctl"}, third_party


def test_support_table_per_task() -> None:
    # measured in the deepchecks environment (scikit-learn<1.6 there, static predictions as we pass them)
    assert check_support("RegressionErrorDistribution", "regression") is None
    assert check_support("TrainTestPerformance", "regression") is None
    assert check_support("SimpleModelComparison", "multiclass") is None
    assert "irrelevant for regression" in (check_support("RocReport", "regression") or "")
    assert "irrelevant for classification" in (check_support("RegressionErrorDistribution", "binary") or "")
    assert "live model" in (check_support("BoostingOverfit", "binary") or "")
    assert "several models" in (check_support("MultiModelPerformanceReport", "binary") or "")
    table = support_table()
    assert {row.task for row in table} == {"binary", "multiclass", "regression"}
    assert {row.check for row in table} == set(json.loads(CATALOGUE_PATH.read_text())["checks"])


@pytest.mark.slow
def test_catalogue_matches_the_locked_environment() -> None:
    """The committed catalogue is what the locked deepchecks offers: regenerate it when the lock moves."""
    current = environment.status()
    assert current.ready, current.reason
    done = subprocess.run(
        [str(current.python), "-I", str(environment.RUNNER), "catalogue"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == json.loads(CATALOGUE_PATH.read_text(encoding="utf-8")), (
        "regenerate: envs/deepchecks/.venv/bin/python -I src/gitops_ml/quality/deepchecks_runner.py catalogue "
        "> src/gitops_ml/quality/deepchecks_catalogue.json"
    )
