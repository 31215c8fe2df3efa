"""prefect.yaml for real: a `prefect server start`, `prefect deploy --all`, a process worker, a monitor run.

The chain a production install goes through, on a small real repository: promote a model (a
subprocess on the real server, committing the pointer), push to a bare "remote", deploy the four
deployments from the project's own prefect.yaml, start a process worker that clones the remote
(the git_clone pull step, configured by GITOPS_ML_REPOSITORY_URL / GITOPS_ML_BRANCH) and run
`monitor/monitor` through the CLI. The prediction store is empty, so the run must complete with
the "insufficient data" decision and publish the `monitor-report` artifact.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.flows.conftest import GIT_IDENTITY, REPO_ROOT, git, make_mini_repo, update_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # the venv's bin: prefect and gitops-ml live beside python
POOL = "gitops-ml-process"
DEPLOYMENTS = {"monitor/monitor", "pr-check/retrain", "pr-check/pr-check", "promote/promote"}
SERVER_STARTUP_TIMEOUT_S = 120
CLI_TIMEOUT_S = 180
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment minus any PREFECT_* (a session harness must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(GIT_IDENTITY)
    # one OpenMP thread: spin-waiting threads oversubscribe a loaded 2-core runner (see tests/conftest.py)
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", **extra)
    return env


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _start(args: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen:
    """A background process leading its own process group, so stopping it stops its children too."""
    with log_path.open("w") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # whatever the leader left behind in its group (e.g. a flow-run subprocess of the worker)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT_S,
         ) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _explain(done: subprocess.CompletedProcess, *logs: Path) -> str:
    parts = [f"exit {done.returncode}", "--- stdout", done.stdout[-3000:], "--- stderr", done.stderr[-3000:]]
    for log in logs:
        parts += [f"--- {log.name}", _tail(log)]
    return "\n".join(parts)


@dataclass
class Server:
    api: str
    log: Path
    proc: subprocess.Popen

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"prefect server exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after {SERVER_STARTUP_TIMEOUT_S} s:\n{_tail(self.log)}")
            time.sleep(0.5)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[Server]:
    """A real `prefect server start` (SQLite in a temp PREFECT_HOME) on a free port, still starting up:
    callers do other setup meanwhile, then `wait_healthy()` (startup takes 15-40 s on 2 cores)."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    log_path = tmp_path / "server.log"
    env = _child_env(tmp_path / "server-home", PREFECT_API_URL=api, PREFECT_SERVER_UI_ENABLED="false")
    proc = _start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                   "--no-ui", "--analytics-off"], env, log_path, tmp_path)
    try:
        yield Server(api, log_path, proc)
    finally:
        _stop(proc)


@pytest.fixture
def deployed_repo(tmp_path: Path, prefect_server: Server) -> Iterator[dict]:
    """A mini repository with a production model, pushed to a bare remote and deployed from prefect.yaml."""
    api, server_log = prefect_server.api, prefect_server.log
    root = make_mini_repo(tmp_path / "repo")
    # absolute store locations: the worker runs from a fresh clone in another folder
    update_config(root, "registry", {"store_url": str(tmp_path / "model-store")})
    update_config(root, "serving", {"prediction_store_url": f"sqlite:///{tmp_path / 'predictions.db'}"})
    shutil.copy(REPO_ROOT / "prefect.yaml", root / "prefect.yaml")
    shutil.copytree(REPO_ROOT / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "absolute stores; prefect.yaml and flows")
    prefect_server.wait_healthy()

    env = _child_env(tmp_path / "client-home", PREFECT_API_URL=api)
    done = _run([str(BIN / "gitops-ml"), "promote", "--commit"], env, root)
    assert done.returncode == 0, _explain(done, server_log)
    assert "Promote model" in git(root, "log", "-1", "--format=%s")

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
    git(root, "push", "--quiet", str(remote), "main")

    env.update(GITOPS_ML_REPOSITORY_URL=str(remote), GITOPS_ML_BRANCH="main")
    done = _run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env, root)
    assert done.returncode == 0, _explain(done, server_log)
    done = _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, root)
    assert done.returncode == 0, _explain(done, server_log)
    yield {"root": root, "api": api, "env": env, "server_log": server_log, "remote": remote}


@pytest.fixture
def worker(tmp_path: Path, deployed_repo: dict) -> Iterator[Path]:
    """`prefect worker start --pool gitops-ml-process` in the background; yields its log file."""
    log_path = tmp_path / "worker.log"
    # no GITOPS_ML_* here: `prefect deploy` resolved them into the stored pull step
    env = {k: v for k, v in deployed_repo["env"].items() if not k.startswith("GITOPS_ML_")}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"  # poll often: the test waits on it
    proc = _start([str(BIN / "prefect"), "worker", "start", "--pool", POOL], env, log_path, tmp_path)
    try:
        yield log_path
    finally:
        _stop(proc)


def test_monitor_deployment_runs_on_a_process_worker_from_a_clone(deployed_repo: dict, worker: Path):
    api, env, root = deployed_repo["api"], deployed_repo["env"], deployed_repo["root"]
    logs = (worker, deployed_repo["server_log"])
    with httpx.Client(base_url=api, timeout=30) as client:
        response = client.post("/deployments/filter", json={})
        assert response.status_code == 200, response.text
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        deployed = {f"{flows[d['flow_id']]}/{d['name']}": d for d in response.json()}
        assert set(deployed) == DEPLOYMENTS
        monitor = deployed["monitor/monitor"]
        assert monitor["work_pool_name"] == POOL
        # the pull step clones the remote given at deploy time, at the given branch
        clone = next(step["prefect.deployments.steps.git_clone"] for step in monitor["pull_steps"]
                     if "prefect.deployments.steps.git_clone" in step)
        assert (clone["repository"], clone["branch"]) == (str(deployed_repo["remote"]), "main")

        done = _run([str(BIN / "prefect"), "deployment", "run", "monitor/monitor", "--watch",
                     "--watch-timeout", str(CLI_TIMEOUT_S - 20)], env, root)
        assert done.returncode == 0, _explain(done, *logs)
        run_id = UUID.search(done.stdout).group(0)

        flow_run = client.get(f"/flow_runs/{run_id}").json()
        assert flow_run["deployment_id"] == monitor["id"]
        assert flow_run["state"]["type"] == "COMPLETED", (flow_run["state"], _tail(worker))
        artifacts = client.post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [run_id]}, "key": {"any_": ["monitor-report"]}}}).json()
    assert len(artifacts) == 1, artifacts
    assert artifacts[0]["type"] == "markdown"
    report = artifacts[0]["data"]
    assert "insufficient data" in report, report[:2000]
    assert "0 rows < min_window_rows" in report, report[:2000]
    production = yaml.safe_load((root / "deploy/production.yaml").read_text())["version"]
    assert production in report  # the pointer the promote commit pushed, read from the clone
    # the run happened in the worker's clone: the checkout the test pushed, not this folder
    assert not (root / "reports/monitor").exists()
