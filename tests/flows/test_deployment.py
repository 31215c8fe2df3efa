"""prefect.yaml for real: a `prefect server start`, `prefect deploy --all`, a process worker, a monitor run,
the monitor's concurrency limit, and the retrain deployment run by the decay event.

The chain a production install goes through, on a small real repository: promote a model (a
subprocess on the real server, committing the pointer), push to a bare "remote", deploy the four
deployments from the project's own prefect.yaml. Then, queued before the worker starts so that it
picks them up together: the decay event sent through flows/events.py (prefect.yaml's trigger runs
the retrain deployment), `monitor/monitor` run through the CLI and a second monitor run through the
API. A process worker that clones the remote (the git_clone pull step, configured by
GITOPS_ML_REPOSITORY_URL / GITOPS_ML_BRANCH) runs them: the concurrency limit of 1 with CANCEL_NEW
lets one monitor run and cancels the other; the prediction store is empty, so the one that runs
completes with the "insufficient data" decision and publishes the `monitor-report` artifact; and
the worker starts the retrain run the automation created.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
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
WORKER_LOG = "worker.log"
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
def start_worker(tmp_path: Path, deployed_repo: dict) -> Iterator[Callable[[], Path]]:
    """Starts `prefect worker start --pool gitops-ml-process` in the background; returns its log file."""
    log_path = tmp_path / WORKER_LOG
    # not the clone's url and branch: `prefect deploy` resolved them into the stored pull step
    env = {
        k: v
        for k, v in deployed_repo["env"].items()
        if k not in ("GITOPS_ML_REPOSITORY_URL", "GITOPS_ML_BRANCH")
    }
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"  # poll often: the test waits on it
    procs: list[subprocess.Popen] = []

    def start() -> Path:
        procs.append(
            start_group([str(BIN / "prefect"), "worker", "start", "--pool", POOL], env, log_path, tmp_path)
        )
        return log_path

    try:
        yield start
    finally:
        for proc in procs:
            stop_group(proc)


def test_deployments_run_on_a_process_worker_from_a_clone(tmp_path: Path, deployed_repo: dict, start_worker):
    api, env, root = deployed_repo["api"], deployed_repo["env"], deployed_repo["root"]
    logs = (tmp_path / WORKER_LOG, deployed_repo["server_log"])
    with httpx.Client(base_url=api, timeout=30) as client:
        response = client.post("/deployments/filter", json={})
        assert response.status_code == 200, response.text
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        deployed = {f"{flows[d['flow_id']]}/{d['name']}": d for d in response.json()}
        assert set(deployed) == DEPLOYMENTS
        monitor, retrain = deployed["monitor/monitor"], deployed["pr-check/retrain"]
        assert monitor["work_pool_name"] == POOL
        # the pull step clones the remote given at deploy time, at the given branch
        clone = next(
            step["prefect.deployments.steps.git_clone"]
            for step in monitor["pull_steps"]
            if "prefect.deployments.steps.git_clone" in step
        )
        assert (clone["repository"], clone["branch"]) == (str(deployed_repo["remote"]), "main")
        assert monitor["global_concurrency_limit"]["limit"] == 1, monitor["global_concurrency_limit"]
        assert monitor["concurrency_options"]["collision_strategy"] == "CANCEL_NEW", monitor[
            "concurrency_options"
        ]

        _switch_off_the_hourly_schedule(client, monitor)

        # Everything the worker is to run is queued before it starts, so it picks all of it up at
        # once: the decay event's retrain run, and two monitor runs (one from the CLI, as
        # docs/prefect-setup.md runs it, one through the API) that collide on the concurrency limit.
        _send_the_decay_event(client, retrain, env, root, logs)
        done = _run([str(BIN / "prefect"), "deployment", "run", "monitor/monitor"], env, root)
        assert done.returncode == 0, _explain(done, *logs)
        created = client.post(f"/deployments/{monitor['id']}/create_flow_run", json={})
        assert created.status_code == 201, created.text
        ids = [UUID.search(done.stdout).group(0), created.json()["id"]]
        start_worker()

        run_id = _one_monitor_run_completes_and_the_other_is_cancelled(client, monitor, ids, logs)
        artifacts = client.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["monitor-report"]}}},
        ).json()
        _the_worker_runs_the_retrain_deployment(client, retrain, logs)
    assert len(artifacts) == 1, artifacts
    assert artifacts[0]["type"] == "markdown"
    report = artifacts[0]["data"]
    assert "insufficient data" in report, report[:2000]
    assert "0 rows < min_window_rows" in report, report[:2000]
    production = yaml.safe_load((root / "deploy/production.yaml").read_text())["version"]
    assert production in report  # the pointer the promote commit pushed, read from the clone
    # the run happened in the worker's clone: the checkout the test pushed, not this folder
    assert not (root / "reports/monitor").exists()


def _switch_off_the_hourly_schedule(client: httpx.Client, monitor: dict) -> None:
    """The monitor's schedule is deployed as prefect.yaml says; then it is switched off and the runs
    it already created are deleted (no worker runs yet). Otherwise a run it made due at the top of
    an hour during the test could take the concurrency slot, and both of the test's runs would be
    cancelled."""
    (schedule,) = monitor["schedules"]
    assert (schedule["schedule"].get("cron"), schedule["active"]) == ("0 * * * *", True), schedule
    off = client.patch(f"/deployments/{monitor['id']}/schedules/{schedule['id']}", json={"active": False})
    assert off.status_code == 204, off.text
    mine = {"deployments": {"id": {"any_": [monitor["id"]]}}}
    for run in client.post("/flow_runs/filter", json=mine).json():
        # a past-due run is kept by the server when a schedule changes: delete it explicitly
        assert run["auto_scheduled"] and run["state"]["type"] == "SCHEDULED", run
        assert client.delete(f"/flow_runs/{run['id']}").status_code == 204
    assert client.post("/flow_runs/filter", json=mine).json() == []


def _wait_for(what: str, probe, timeout_s: float, *logs: Path):
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout_s} s\n" + "\n".join(tail(log) for log in logs))
        time.sleep(1)
    return found


def _one_monitor_run_completes_and_the_other_is_cancelled(
    client: httpx.Client, monitor: dict, ids: list[str], logs: tuple[Path, ...]
) -> str:
    """Returns the id of the run that completed."""
    terminal = {"COMPLETED", "CANCELLED", "FAILED", "CRASHED"}

    def finished():
        runs = [client.get(f"/flow_runs/{i}").json() for i in ids]
        return runs if {r["state"]["type"] for r in runs} <= terminal else None

    runs = _wait_for("both monitor runs finished", finished, CLI_TIMEOUT_S, *logs)
    assert all(r["deployment_id"] == monitor["id"] for r in runs), runs
    states = [r["state"]["type"] for r in runs]
    assert sorted(states) == ["CANCELLED", "COMPLETED"], (states, tail(logs[0]))
    return ids[states.index("COMPLETED")]


def _send_the_decay_event(
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


def _the_worker_runs_the_retrain_deployment(
    client: httpx.Client, retrain: dict, logs: tuple[Path, ...]
) -> None:
    def picked_up():
        runs = client.post(
            "/flow_runs/filter", json={"deployments": {"id": {"any_": [retrain["id"]]}}}
        ).json()
        started = [r for r in runs if r["state"]["type"] not in {"SCHEDULED", "PENDING"}]
        return started or None

    (run,) = _wait_for("the retrain run started by the worker", picked_up, CLI_TIMEOUT_S, *logs)
    assert run["created_by"]["type"] == "AUTOMATION", run["created_by"]
    assert run["state"]["type"] in {"RUNNING", "COMPLETED"}, (run["state"], tail(logs[0]))
