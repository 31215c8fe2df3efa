"""`make demo`: the whole loop on one machine, no account anywhere.

In a scratch copy of the repository with a local bare git remote:
PR check -> promote -> serve -> stable then concept-drifted traffic -> monitor -> retraining PR
(local mode, or a GitHub API when a token is configured) -> PR check on the retraining branch ->
promote. One process runs every flow, so Prefect's temporary server starts once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops_ml.processes import free_port

COPIED = ("config", "data", "data_contracts", "deploy", ".gitignore", "README.md")
# Business dates of the simulated traffic continue the bundled data's timeline (2026-01..06).
PHASES = (
    ("stable", "2026-07-01", "2026-08-01"),
    ("concept-drift", "2026-08-01", "2026-09-01"),
    ("concept-drift", "2026-09-01", "2026-10-01"),
    ("concept-drift", "2026-10-01", "2026-11-01"),  # only with a 4th `rows` entry: the PR gets updated
)
# traffic while the retrained candidate scores every request in the shadow of production; 1000, not
# fewer: at 500 (2.5x the policy's min_paired_rows) the window came out inconclusive, which hides what
# the step shows, and it saved well under a second
SHADOW_PHASE = ("concept-drift", "2026-11-01", "2026-12-01")
SHADOW_ROWS = 1000


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""
    output: str = ""


@dataclass
class LoopResult:
    scratch: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def summary(self) -> str:
        lines = [f"gitops-ml loop in {self.scratch}", ""]
        for s in self.steps:
            mark = "ok " if s.ok else "FAIL"
            lines.append(f"  [{mark}] {s.name:<38} {s.seconds:6.1f}s  {s.detail}")
            if s.output:
                lines.append(f"         {'':<38}         -> {s.output}")
        total = sum(s.seconds for s in self.steps)
        lines += ["", f"  total {total:.1f}s"]
        return "\n".join(lines)


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "gitops-ml demo",
        "GIT_AUTHOR_EMAIL": "demo@gitops-ml.invalid",
        "GIT_COMMITTER_NAME": "gitops-ml demo",
        "GIT_COMMITTER_EMAIL": "demo@gitops-ml.invalid",
    }
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def make_scratch_repo(
    source: Path, scratch: Path, configure: Callable[[Path], None] | None = None
) -> tuple[Path, Path]:
    """Copy the project's config, data and contract into a fresh git repo with a bare `origin`."""
    if scratch.exists():
        shutil.rmtree(scratch)
    work, remote = scratch / "work", scratch / "origin.git"
    work.mkdir(parents=True)
    for name in COPIED:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, work / name)
        elif src.exists():
            shutil.copy2(src, work / name)
    # the demo starts from "no production model yet"
    for name in ("production.yaml", "history.yaml"):
        (work / "deploy" / name).unlink(missing_ok=True)
    if configure is not None:
        configure(work)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Fork of gitops-ml with the bundled churn data")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    return work, remote


class Server:
    """`gitops-ml serve` in a subprocess (a real uvicorn on loopback)."""

    def __init__(self, work: Path, store_url: str, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitops_ml",
                "serve",
                "--port",
                str(self.port),
                "--store-url",
                store_url,
                "--log-level",
                "warning",
            ],
            cwd=work,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 90) -> dict:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                response = httpx.get(f"{self.url}/ready", timeout=2)
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready after {timeout_s}s; see {self.log.name}")

    def wait_version(self, version: str, timeout_s: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/model", timeout=2).json().get("version") == version:
                return
            time.sleep(0.5)
        raise TimeoutError(f"server did not switch to {version} within {timeout_s}s")

    def wait_challenger(self, version: str, timeout_s: float = 60) -> dict:
        import httpx

        deadline = time.monotonic() + timeout_s
        info: dict = {}
        while time.monotonic() < deadline:
            info = httpx.get(f"{self.url}/model", timeout=2).json().get("challenger") or {}
            if info.get("version") == version:
                return info
            time.sleep(0.5)
        raise TimeoutError(f"server did not load challenger {version} within {timeout_s}s: {info}")

    def wait_logged(self, timeout_s: float = 120) -> dict:
        """Until the log worker has written every answer and scored every shadow row queued so
        far (it loads a new challenger a few seconds after the server does)."""
        import httpx

        deadline = time.monotonic() + timeout_s
        log: dict = {}
        while time.monotonic() < deadline:
            log = httpx.get(f"{self.url}/ready", timeout=5).json()["prediction_log"]
            if log["shadow_queued"] == 0 and log["written"] + log["dropped"] >= log["served"]:
                return log
            time.sleep(0.2)
        raise TimeoutError(f"the prediction log did not catch up within {timeout_s}s: {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _cli(*args: str) -> int:
    from gitops_ml.cli import main

    return main(list(args))


def _timed(result: LoopResult, name: str, fn: Callable[[], tuple[bool, str, str]]) -> bool:
    print(f"\n=== {name} ===", flush=True)
    start = time.perf_counter()
    try:
        ok, detail, output = fn()
    except Exception as exc:  # the summary must say which step broke, then stop
        ok, detail, output = False, f"{type(exc).__name__}: {exc}", ""
    result.steps.append(Step(name, ok, time.perf_counter() - start, detail, output))
    return ok


def _pointer_version(work: Path) -> str | None:
    path = work / "deploy/production.yaml"
    return yaml.safe_load(path.read_text())["version"] if path.exists() else None


def run_loop(
    scratch: Path,
    *,
    source: Path,
    rows: tuple[int, ...] = (1000, 3000, 3000),
    deepchecks: bool = True,
    label_delay_s: float = 0.5,
    configure: Callable[[Path], None] | None = None,
) -> LoopResult:
    """Run the loop; returns each step's outcome (the caller prints `summary()`).

    `configure(work)` may edit the scratch repo before its first commit (tests point the forge at a
    fake GitHub there). A 4th `rows` entry adds one more drifted window after the retraining PR,
    whose monitor run must update that PR rather than open another.
    """
    from gitops_ml.serving.simulator import DEFAULT_ID_OFFSET, run_simulation, simulated_records

    result = LoopResult(scratch=scratch)
    dc = () if deepchecks else ("--no-deepchecks",)

    def setup(work: Path) -> None:
        if not deepchecks:
            # a blocking check that did not run fails the gate: a run without deepchecks must say
            # so in its config, as a fork would
            gates_path = work / "config/gates.yaml"
            gates = yaml.safe_load(gates_path.read_text()) if gates_path.exists() else {}
            gates_path.write_text(
                yaml.safe_dump({**(gates or {}), "fail_on_blocking_deepchecks": False}, sort_keys=False)
            )
        if configure is not None:
            configure(work)

    work, _remote = make_scratch_repo(source, scratch, setup)
    os.chdir(work)
    store_url = f"sqlite:///{scratch / 'predictions.db'}"
    state: dict[str, Any] = {}  # what one step leaves for the next: server, phase times, monitor outcome

    def pr_check(out: str, *extra: str) -> Callable[[], tuple[bool, str, str]]:
        def step() -> tuple[bool, str, str]:
            code = _cli("pr-check", "--out", out, *extra)
            head = (work / out / "report.md").read_text().splitlines()[0]
            return code == 0, f"exit {code}: {head.lstrip('# ')}", str(work / out / "report.md")

        return step

    def promote() -> tuple[bool, str, str]:
        before = _pointer_version(work)
        code = _cli("promote", "--commit", *dc)
        git(work, "push", "-q", "origin", "main")
        after = _pointer_version(work)
        state["version"] = after
        return (
            code == 0 and after != before,
            f"{before or 'none'} -> {after}",
            str(work / "deploy/production.yaml"),
        )

    def serve() -> tuple[bool, str, str]:
        server = Server(work, store_url, scratch / "server.log")
        state["server"] = server
        ready = server.wait_ready()
        return (
            True,
            f"{server.url} ready, model {ready.get('model_version') or ready.get('version')}",
            f"{server.url}/docs",
        )

    def traffic(i: int) -> Callable[[], tuple[bool, str, str]]:
        scenario, start, end = PHASES[i] if i < len(PHASES) else SHADOW_PHASE

        def step() -> tuple[bool, str, str]:
            server = state["server"]
            state[f"phase{i}_start"] = time.time()
            frame = simulated_records(
                rows[i] if i < len(rows) else SHADOW_ROWS,
                scenario,
                seed=i,
                id_offset=DEFAULT_ID_OFFSET + i * 100_000,
                start_time=start,
                end_time=end,
            )
            sim = run_simulation(server.url, frame, batch_size=100, label_delay_s=label_delay_s, seed=i)
            server.wait_logged()  # predictions and shadow scores in the store before the monitor reads it
            state[f"phase{i}_end"] = time.time() + 0.5
            time.sleep(0.6)  # the window's end is after the last row
            return (
                sim.errors == 0,
                (
                    f"{scenario}: {sim.predicted} predictions, {sim.labelled} labels "
                    f"(business dates {start}..{end})"
                ),
                "",
            )

        return step

    def monitor(i: int, expect: str) -> Callable[[], tuple[bool, str, str]]:
        def step() -> tuple[bool, str, str]:
            import pandas as pd

            end = pd.Timestamp(state[f"phase{i}_end"], unit="s", tz="UTC")
            seconds = state[f"phase{i}_end"] - state[f"phase{i}_start"] + 1
            out = f"reports/monitor-{i}"
            from flows.monitor import monitor_flow

            # as monitor.yml runs it: the monitor writes a decision bundle (no token needed), then
            # the trusted half verifies the bundle and opens or updates the PR
            bundle_dir = scratch / f"decision-bundle-{i}"
            outcome = monitor_flow(
                out_dir=out,
                store_url=store_url,
                window=f"{seconds:.0f}s",
                now=end.isoformat(),
                repo_dir=str(work),
                bundle_dir=str(bundle_dir),
            )
            if outcome.bundle is not None:
                from dataclasses import replace

                from gitops_ml.jobs.config_check import load_checked_settings
                from gitops_ml.jobs.decision_bundle import open_prs_from_bundles

                prs = open_prs_from_bundles(
                    load_checked_settings("config"),
                    bundle_dir,
                    repo_dir=work,
                    expect_commit=git(work, "rev-parse", "HEAD"),
                    store_url=store_url,
                )
                outcome = replace(outcome, pr=prs.retrain)
            state["monitor"] = outcome
            detail = f"{outcome.status} -> {outcome.action}"
            if outcome.pr is not None:
                pr = outcome.pr
                detail += f"; retraining PR {pr.action} on {pr.branch} ({pr.export})"
            return outcome.action == expect, detail, str(work / out / "report.md")

        return step

    def retrain_branch_check() -> tuple[bool, str, str]:
        pr = state["monitor"].pr
        git(work, "checkout", "-q", pr.branch)
        ok, detail, output = pr_check("reports/pr-retrain", *dc)()
        import json

        summary = json.loads((work / "reports/pr-retrain/summary.json").read_text())
        roc = next((m for m in summary["comparison"]["metrics"] if m["metric"] == "roc_auc"), None)
        if roc and roc.get("delta") is not None:
            detail += (
                f"; roc_auc production {roc['production']:.3f} -> candidate {roc['candidate']:.3f} "
                f"(delta {roc['delta']:+.3f}, 95% CI [{roc['ci_low']:+.3f}, {roc['ci_high']:+.3f}])"
            )
            ok = ok and roc["delta"] > 0
        return ok, detail, output

    shadow = len(PHASES)  # the shadow phase's index among the traffic phases

    def shadow_propose() -> tuple[bool, str, str]:
        git(work, "checkout", "-q", "main")
        code = _cli("challenger", "propose", "--from", "reports/pr-retrain", "--mode", "shadow", "--commit")
        path = work / "deploy/challenger.yaml"
        version = yaml.safe_load(path.read_text())["version"] if path.exists() else None
        if code != 0 or version is None:
            return False, f"challenger propose exit {code}", ""
        info = state["server"].wait_challenger(version)
        return (
            True,
            f"challenger {version} ({info.get('mode')}) served beside production {state['version']}",
            str(path),
        )

    def shadow_monitor() -> tuple[bool, str, str]:
        import pandas as pd

        from flows.monitor import monitor_flow

        end = pd.Timestamp(state[f"phase{shadow}_end"], unit="s", tz="UTC")
        seconds = state[f"phase{shadow}_end"] - state[f"phase{shadow}_start"] + 1
        out = "reports/monitor-shadow"
        outcome = monitor_flow(
            out_dir=out, store_url=store_url, window=f"{seconds:.0f}s", now=end.isoformat(), open_pr=False
        )
        decision = outcome.challenger
        if decision is None or decision.latest is None:
            return False, "the monitor found no challenger to judge", str(work / out / "report.md")
        w = decision.latest
        detail = f"{decision.action}: {w.rows} labelled pairs, {w.metric} {w.outcome}"
        if w.delta is not None and w.ci_low is not None and w.ci_high is not None:
            detail += f" (delta {w.delta:+.3f}, CI [{w.ci_low:+.3f}, {w.ci_high:+.3f}])"
        detail += f"; {decision.required_windows} windows in a row decide"
        return w.rows > 0, detail, str(work / out / "report.md")

    def shadow_retire() -> tuple[bool, str, str]:
        code = _cli(
            "challenger", "retire", "--reason", "the demo promotes it through the retraining PR", "--commit"
        )
        return code == 0, f"exit {code}: challenger retired, production untouched", ""

    def merge_and_promote() -> tuple[bool, str, str]:
        pr = state["monitor"].pr
        git(work, "checkout", "-q", "main")
        git(work, "merge", "-q", "--no-ff", "-m", f"Merge retraining PR ({pr.branch})", pr.branch)
        ok, detail, output = promote()
        server = state["server"]
        server.wait_version(str(state["version"]))
        return ok, detail + "; server hot-reloaded it", output

    steps: list[tuple[str, Callable[[], tuple[bool, str, str]]]] = [
        ("PR check (no production yet)", pr_check("reports/pr", *dc)),
        ("promote on merge", promote),
        ("serve", serve),
        ("traffic: stable", traffic(0)),
        ("monitor: stable window", monitor(0, "none")),
        ("traffic: concept drift (1)", traffic(1)),
        ("monitor: bad window 1 of 2", monitor(1, "none")),
        ("traffic: concept drift (2)", traffic(2)),
        ("monitor: bad window 2 -> retraining PR", monitor(2, "retrain")),
        *(
            [
                ("traffic: concept drift (3)", traffic(3)),
                ("monitor: still decayed -> PR updated", monitor(3, "retrain")),
            ]
            if len(rows) > 3
            else []
        ),
        ("PR check on the retraining branch", retrain_branch_check),
        ("challenger: the retrained candidate in shadow", shadow_propose),
        ("traffic: concept drift, scored by both", traffic(shadow)),
        ("monitor: champion vs challenger on the same requests", shadow_monitor),
        ("challenger retire (a commit, like every pointer change)", shadow_retire),
        ("merge + promote the retrained model", merge_and_promote),
    ]
    try:
        for name, fn in steps:
            if not _timed(result, name, fn):
                break
    finally:
        server = state.get("server")
        if server is not None:
            server.stop()
    return result


def main() -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    source = Path.cwd()
    scratch = source / ".demo"
    started = time.perf_counter()
    result = run_loop(scratch, source=source)
    os.chdir(source)
    print("\n" + result.summary())
    print(
        f"\n  wall time {time.perf_counter() - started:.1f}s; scratch repo: {scratch / 'work'} "
        f"(bare remote: {scratch / 'origin.git'})"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
