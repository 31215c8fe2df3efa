"""prefect.yaml for real: a `prefect server start`, `prefect deploy --all`, a process worker, a monitor run,
the monitor's concurrency limit, and the retrain deployment run by the decay event.

The chain a production install goes through, on a small real repository: promote a model (a
subprocess on the real server, committing the pointer), push to a bare "remote", deploy the four
deployments from the project's own prefect.yaml, start a process worker that clones the remote
(the git_clone pull step, configured by GITOPS_ML_REPOSITORY_URL / GITOPS_ML_BRANCH) and run
`monitor/monitor` through the CLI. The prediction store is empty, so the run must complete with
the "insufficient data" decision and publish the `monitor-report` artifact. Then two monitor runs
started together: the concurrency limit of 1 with CANCEL_NEW lets one run and cancels the other.
Last, the decay event sent through flows/events.py makes prefect.yaml's trigger run the retrain
deployment, and the worker picks that run up.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.flows.conftest import REPO_ROOT, git, make_mini_repo
from tests.flows.processes import BIN, PrefectServer, child_env, start_group, stop_group, tail

pytestmark = pytest.mark.slow

POOL = "gitops-ml-process"
DEPLOYMENTS = {"monitor/monitor", "pr-check/retrain", "pr-check/pr-check", "promote/promote"}
SERVER_STARTUP_TIMEOUT_S = 120
CLI_TIMEOUT_S = 180
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _run(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _explain(done: subprocess.CompletedProcess, *logs: Path) -> str:
    parts = [f"exit {done.returncode}", "--- stdout", done.stdout[-3000:], "--- stderr", done.stderr[-3000:]]
    for log in logs:
        parts += [f"--- {log.name}", tail(log)]
    return "\n".join(parts)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """Still starting up when yielded: callers do other setup meanwhile, then `wait_healthy(SERVER_STARTUP_TIMEOUT_S)`
    (startup takes 15-40 s on 2 cores)."""
    server = PrefectServer.start(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def deployed_repo(tmp_path: Path, prefect_server: PrefectServer) -> Iterator[dict]:
    """A mini repository with a production model, pushed to a bare remote and deployed from prefect.yaml."""
    api, server_log = prefect_server.api, prefect_server.log
    root = make_mini_repo(tmp_path / "repo")
    # stores outside the repository come from the machine (the worker's environment), never from
    # config: the worker runs from a fresh clone in another folder
    stores = {
        "GITOPS_ML_MODEL_STORE_URL": str(tmp_path / "model-store"),
        "GITOPS_ML_PREDICTION_STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
    }
    shutil.copy(REPO_ROOT / "prefect.yaml", root / "prefect.yaml")
    shutil.copytree(REPO_ROOT / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "prefect.yaml and flows")
    prefect_server.wait_healthy(SERVER_STARTUP_TIMEOUT_S)

    env = child_env(tmp_path / "client-home", PREFECT_API_URL=api, **stores)
    done = _run([str(BIN / "gitops-ml"), "promote", "--no-deepchecks", "--commit"], env, root)
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
    # not the clone's url and branch: `prefect deploy` resolved them into the stored pull step
    env = {
        k: v
        for k, v in deployed_repo["env"].items()
        if k not in ("GITOPS_ML_REPOSITORY_URL", "GITOPS_ML_BRANCH")
    }
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"  # poll often: the test waits on it
    proc = start_group([str(BIN / "prefect"), "worker", "start", "--pool", POOL], env, log_path, tmp_path)
    try:
        yield log_path
    finally:
        stop_group(proc)


def test_deployments_run_on_a_process_worker_from_a_clone(deployed_repo: dict, worker: Path):
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
        clone = next(
            step["prefect.deployments.steps.git_clone"]
            for step in monitor["pull_steps"]
            if "prefect.deployments.steps.git_clone" in step
        )
        assert (clone["repository"], clone["branch"]) == (str(deployed_repo["remote"]), "main")

        done = _run(
            [
                str(BIN / "prefect"),
                "deployment",
                "run",
                "monitor/monitor",
                "--watch",
                "--watch-timeout",
                str(CLI_TIMEOUT_S - 20),
            ],
            env,
            root,
        )
        assert done.returncode == 0, _explain(done, *logs)
        run_id = UUID.search(done.stdout).group(0)

        flow_run = client.get(f"/flow_runs/{run_id}").json()
        assert flow_run["deployment_id"] == monitor["id"]
        assert flow_run["state"]["type"] == "COMPLETED", (flow_run["state"], tail(worker))
        artifacts = client.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["monitor-report"]}}},
        ).json()
    assert len(artifacts) == 1, artifacts
    assert artifacts[0]["type"] == "markdown"
    report = artifacts[0]["data"]
    assert "insufficient data" in report, report[:2000]
    assert "0 rows < min_window_rows" in report, report[:2000]
    production = yaml.safe_load((root / "deploy/production.yaml").read_text())["version"]
    assert production in report  # the pointer the promote commit pushed, read from the clone
    # the run happened in the worker's clone: the checkout the test pushed, not this folder
    assert not (root / "reports/monitor").exists()

    with httpx.Client(base_url=api, timeout=30) as client:
        _monitor_runs_one_at_a_time(client, monitor, logs)
        _decay_event_runs_the_retrain_deployment(client, deployed["pr-check/retrain"], env, root, logs)


def _wait_for(what: str, probe, timeout_s: float, *logs: Path):
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout_s} s\n" + "\n".join(tail(log) for log in logs))
        time.sleep(1)
    return found


def _monitor_runs_one_at_a_time(client: httpx.Client, monitor: dict, logs: tuple[Path, ...]) -> None:
    assert monitor["global_concurrency_limit"]["limit"] == 1, monitor["global_concurrency_limit"]
    assert monitor["concurrency_options"]["collision_strategy"] == "CANCEL_NEW", monitor[
        "concurrency_options"
    ]
    created = [client.post(f"/deployments/{monitor['id']}/create_flow_run", json={}) for _ in range(2)]
    assert all(r.status_code == 201 for r in created), [r.text for r in created]
    ids = [r.json()["id"] for r in created]
    terminal = {"COMPLETED", "CANCELLED", "FAILED", "CRASHED"}

    def finished():
        states = [client.get(f"/flow_runs/{i}").json()["state"]["type"] for i in ids]
        return states if set(states) <= terminal else None

    states = _wait_for("both monitor runs finished", finished, CLI_TIMEOUT_S, *logs)
    assert sorted(states) == ["CANCELLED", "COMPLETED"], states


def _decay_event_runs_the_retrain_deployment(
    client: httpx.Client, retrain: dict, env: dict[str, str], root: Path, logs: tuple[Path, ...]
) -> None:
    automations = client.post("/automations/filter", json={}).json()
    (automation,) = [a for a in automations if "gitops-ml.monitor.decay" in a["trigger"].get("expect", [])]
    assert [(a["type"], a["deployment_id"]) for a in automation["actions"]] == [
        ("run-deployment", retrain["id"])
    ]
    before = client.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [retrain["id"]]}}}).json()
    assert before == []
    script = (
        "from flows import events\n"
        "from prefect.events.worker import EventsWorker\n"
        "sent = events.emit(events.DECAY, dataset='churn', model_version='v-test', payload={'rows': 1})\n"
        "assert sent is not None, 'not sent'\n"
        "EventsWorker.drain_all()\n"
    )
    done = _run([str(BIN / "python"), "-c", script], env, root)
    assert done.returncode == 0, _explain(done, *logs)

    def picked_up():
        runs = client.post(
            "/flow_runs/filter", json={"deployments": {"id": {"any_": [retrain["id"]]}}}
        ).json()
        started = [r for r in runs if r["state"]["type"] not in {"SCHEDULED", "PENDING"}]
        return started or None

    (run,) = _wait_for("the retrain run started by the worker", picked_up, CLI_TIMEOUT_S, *logs)
    assert run["created_by"]["type"] == "AUTOMATION", run["created_by"]
    assert run["state"]["type"] in {"RUNNING", "COMPLETED"}, (run["state"], tail(logs[0]))
