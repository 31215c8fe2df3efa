"""A fork, for real: a git clone of this repository pointed at two other datasets with `gitops-ml init`.

wine (multiclass, string class labels, a few nulls) and diabetes (regression), both shipped inside
scikit-learn. In each fork: init, the fork's project suite (tests/project, the only tests that read
what init wrote), pr-check exits 0, promote succeeds, and a second pr-check after a config change
compares against the production model. The wine fork also serves the model and sends it traffic
resampled from its data (`simulate`).

The rest of the fork's suite is this suite: the product's tests run on fixtures, and the fork guard
in tests/conftest.py fails any of them that reads config/, data/, data_contracts/ or the production
pointer, on every run here (tests/architecture/test_fork_guard.py proves it catches them). So they
pass in a fork as they pass here, and are not re-run in one.

Bounded runtime: one venv (this one), the session's Prefect harness as the API of every CLI call,
the wine fork's project suite in the background while the diabetes fork runs its own, and the two
forks' PR loops side by side.
Set GITOPS_ML_FORK_REPORTS to a folder to keep both forks' PR reports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.flows.conftest import GIT_IDENTITY, REPO_ROOT
from tests.flows.processes import child_env, free_port, start_group, stop_group, tail

CLI_TIMEOUT_S = 900


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_IDENTITY},
    )
    return result.stdout


def _cli(fork: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "gitops_ml", *args], fork, env)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, (
        f"{what}: exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    return result.stdout


def _wine_csv(path: Path) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    rng = np.random.default_rng(0)
    for column in ("alcohol", "magnesium", "color_intensity"):
        frame.loc[rng.choice(len(frame), 6, replace=False), column] = np.nan
    frame.to_csv(path, index=False)


def _diabetes_csv(path: Path) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    frame.loc[np.random.default_rng(1).choice(len(frame), 8, replace=False), "bmi"] = np.nan
    frame.to_csv(path, index=False)


def _clone(tmp_path: Path, name: str) -> Path:
    """A clone at this checkout's commit (cloning a linked worktree would check out the main branch)."""
    fork = tmp_path / name
    commit = _git(REPO_ROOT, "rev-parse", "HEAD").strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO_ROOT), str(fork)], check=True)
    _git(fork, "checkout", "-q", commit)
    return fork


def _sections(report: str, *titles: str) -> str:
    """The named `## ` sections of a report, for the log and the closing note."""
    parts = re.split(r"(?m)^(?=## )", report)
    return "\n".join(p for p in parts if any(p.startswith(f"## {t}") for t in titles))


def _keep(report: Path, name: str) -> None:
    folder = os.environ.get("GITOPS_ML_FORK_REPORTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(report, Path(folder) / name)


def _pr_loop(fork: Path, env: dict[str, str], name: str) -> str:
    """pr-check, promote, a config change, pr-check again against production; returns that report."""
    first = _ok(_cli(fork, env, "pr-check", "--out", "reports/pr"), f"{name}: pr-check")
    assert "PASS" in first, first
    _ok(_cli(fork, env, "promote", "--out", "reports/promote"), f"{name}: promote")
    pointer = yaml.safe_load((fork / "deploy" / "production.yaml").read_text())
    version = pointer["version"]
    # promotion leaves nothing untracked in the work tree but the pointer, its history and the
    # version's model card (the lock lives in ignored .gitops-ml/)
    status = _git(fork, "status", "--porcelain", "--untracked-files=all")
    changed = {line[3:] for line in status.splitlines()}
    assert changed <= {"deploy/production.yaml", "deploy/history.yaml", "deploy/model-card.md"}, status
    assert (fork / "deploy" / "model-card.md").read_text().startswith(f"# Model card: `{version}`")
    _git(fork, "add", "-A")
    _git(fork, "commit", "-q", "-m", f"promote {version}")

    estimator = fork / "config" / "estimator.yaml"
    data = yaml.safe_load(estimator.read_text())
    data["params"]["random_state"] = 7  # a config change that leaves the model as good as before
    estimator.write_text(yaml.safe_dump(data, sort_keys=False))
    _ok(_cli(fork, env, "pr-check", "--out", "reports/pr2"), f"{name}: second pr-check")
    report = (fork / "reports" / "pr2" / "report.md").read_text()
    assert f"production `{version}`" in report, report[:3000]
    assert "no production model yet" not in report
    _keep(fork / "reports" / "pr2" / "report.md", f"{name}-pr-report.md")
    print(f"\n===== {name}: second PR report (vs production {version}) =====")
    print(_sections(report, "Metrics", "deepchecks", "Per-class"))
    return report


def _serve_and_simulate(fork: Path, env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    server = start_group(
        [sys.executable, "-m", "gitops_ml", "serve", "--port", str(port), "--log-level", "warning"],
        env,
        tmp_path / "serve.log",
        fork,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve not ready:\n{tail(tmp_path / 'serve.log')}")
            time.sleep(0.5)
        out = _ok(
            _cli(
                fork,
                env,
                "simulate",
                "--url",
                f"http://127.0.0.1:{port}",
                "--rows",
                "40",
                "--batch-size",
                "20",
                "--label-delay",
                "0",
                "--scenario",
                "covariate-drift",
            ),
            "wine: simulate",
        )
        assert "sent 40, predicted 40, labelled 40, errors 0" in out, out
    finally:
        stop_group(server)


def _project_suite_checked_the_fork(out: str, name: str) -> None:
    """tests/project ran on the fork's own setup: config check, contract lint, manifest, batches."""
    assert re.search(r"\b\d+ passed\b", out), f"{name}: {out[-3000:]}"
    # the one skip: the bundled example is gone (init ran), so there is nothing to fingerprint
    assert "1 skipped" in out and "the repository holds its own dataset" in out, f"{name}: {out[-3000:]}"


@pytest.mark.slow
def test_a_fork_on_two_other_datasets_is_green(tmp_path: Path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    suite = None
    try:
        wine, diabetes = _clone(tmp_path, "wine-fork"), _clone(tmp_path, "diabetes-fork")
        _wine_csv(tmp_path / "wine.csv")
        _diabetes_csv(tmp_path / "diabetes.csv")
        env = child_env(tmp_path / "prefect-home", PREFECT_API_URL=str(PREFECT_API_URL.value()))
        tests_env = child_env(tmp_path / "tests-home")

        out = _ok(
            _cli(
                wine, env, "init", str(tmp_path / "wine.csv"), "--target", "cultivar", "--task", "multiclass"
            ),
            "wine: init",
        )
        assert "Next: gitops-ml config check" in out
        _ok(
            _cli(
                diabetes,
                env,
                "init",
                str(tmp_path / "diabetes.csv"),
                "--target",
                "progression",
                "--task",
                "regression",
            ),
            "diabetes: init",
        )
        for fork in (wine, diabetes):
            _git(fork, "add", "-A")
            _git(fork, "commit", "-q", "-m", "gitops-ml init")
            assert not (fork / "data_contracts" / "churn.odcs.yaml").exists()

        project_suite = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/project",
        ]
        log = tmp_path / "wine-pytest.log"
        suite = start_group(project_suite, tests_env, log, wine)
        out = _ok(_run(project_suite, diabetes, tests_env), "diabetes: pytest tests/project")
        _project_suite_checked_the_fork(out, "diabetes")
        # the two forks' PR loops side by side (each CLI call is one single-threaded process), each
        # with its own Prefect home on the same API
        diabetes_env = child_env(tmp_path / "prefect-home-diabetes", PREFECT_API_URL=env["PREFECT_API_URL"])
        with ThreadPoolExecutor(max_workers=1) as beside:
            diabetes_loop = beside.submit(_pr_loop, diabetes, diabetes_env, "diabetes")
            wine_report = _pr_loop(wine, env, "wine")
            assert "| f1_macro" in wine_report
            _serve_and_simulate(wine, env, tmp_path)
            diabetes_report = diabetes_loop.result(timeout=CLI_TIMEOUT_S * 3)
        assert "| rmse" in diabetes_report and "| r2" in diabetes_report
        code = suite.wait(timeout=CLI_TIMEOUT_S)
        assert code == 0, f"the wine fork's pytest tests/project failed:\n{tail(log, 8000)}"
        _project_suite_checked_the_fork(log.read_text(), "wine")
    finally:
        if suite is not None:
            stop_group(suite)
