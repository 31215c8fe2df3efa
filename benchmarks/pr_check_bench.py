"""PR check end to end: `gitops-ml pr-check` in a fresh process, by stage, on growing data.

Each case runs in a temporary copy of the repository's `config/`, `data_contracts/`, `deploy/` and
model store (never in the working tree), as a new process so Prefect's start-up counts, exactly as
on a CI runner. Data is either the bundled `data/` or a table from `gitops-ml data generate`
(6 monthly batches, seeded) of 100k or 1M rows, with `dataset.manifest` pointed at it.

Two Prefect modes (a fresh process spends ~13 s starting a temporary server):
- `ephemeral`: no PREFECT_API_URL; each run starts Prefect's temporary local server. The
  PREFECT_HOME is warmed once by a trivial flow, so database migrations are not charged to the
  first case (what a runner with a cached ~/.prefect sees; `--fresh-home` charges them every time).
- `server`: a `prefect server start` already running on a free loopback port, PREFECT_API_URL set.

Reported per run: wall time seen by this process, the stage timings the flow wrote to
`reports/pr/summary.json` (`timings`), "other" = wall - sum of stages (interpreter + imports
before the flow starts + shutdown), and peak RSS of the pr-check process tree (wait4 rusage).

    .venv/bin/python benchmarks/pr_check_bench.py --data bundled,100k,1m --mode ephemeral,server \\
        [--repeats 1] [--no-deepchecks] [--out benchmarks/results/pr_check.md]

Before / after in one run: `--baseline DIR` names a checkout of an older commit with its own `.venv`
(`git worktree add DIR <commit> && make -C DIR install`). Every case then runs in both, alternating
(before, after, before, after, ...) so both see the same machine load; each tree's workspace is
copied from that tree and run with that tree's `gitops-ml`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gitops_ml.processes import free_port, prefect_server_command, start_group, stop_group

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("prefect start", "config", "data", "deepchecks", "training", "evaluation", "report")
SIZES = {"100k": 100_000, "1m": 1_000_000, "10k": 10_000}
COPY_DIRS = ("config", "data_contracts", "deploy")
RUN_TIMEOUT_S = 3600


@dataclass
class RunResult:
    case: str
    mode: str
    rows: int | None
    exit_code: int
    status: str
    wall_s: float
    timings: dict[str, float]
    peak_rss_mb: float
    cpu_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def other_s(self) -> float:
        return self.wall_s - sum(self.timings.values())


def _base_env(prefect_home: Path) -> dict[str, str]:
    """The caller's environment without PREFECT_* (no stray API URL), plus a chosen PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        # the default 20 s is not enough for a first start (migrations) on a busy 2-core machine
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    return env


def _run_measured(
    cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float = RUN_TIMEOUT_S
) -> tuple[int, float, float, float]:
    """(exit code, wall s, CPU s (user + system), peak RSS MB) of the process and its reaped children."""
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        # A stuck run is stopped (its own process group only) instead of hanging the benchmark.
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # per-child rusage, unlike RUSAGE_CHILDREN
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


@dataclass(frozen=True)
class Tree:
    """A checkout and the environment whose `gitops-ml` runs its PR check."""

    label: str
    source: Path
    bin_dir: Path


def _workspace(root: Path, data: str, source: Path = REPO, tag: str = "") -> Path:
    """A throwaway copy of what a PR check reads; bundled data is copied, generated data is made."""
    ws = root / f"ws-{data}{tag}"
    ws.mkdir()
    for name in COPY_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, ws / name)
    store = yaml.safe_load((source / "config" / "registry.yaml").read_text())["store_url"]
    if "://" not in store and (source / store).is_dir():
        shutil.copytree(source / store, ws / store)
    if data == "bundled":
        shutil.copytree(source / "data", ws / "data")
    return ws


def _generate(ws: Path, rows: int, months: int, log_dir: Path) -> tuple[Path, float]:
    """`gitops-ml data generate` of `rows` in all (`--rows` is per monthly batch) into ws/generated;
    dataset.manifest now points there."""
    out = ws / "generated"
    cmd = [
        str(BIN / "gitops-ml"),
        "data",
        "generate",
        "--out",
        str(out),
        "--rows",
        str(rows // months),
        "--months",
        str(months),
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    (log_dir / f"generate-{rows}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"data generate failed ({done.returncode}): {done.stderr[-2000:]}")
    manifests = sorted(out.glob("**/manifest.yaml"))
    if not manifests:
        raise SystemExit(f"data generate wrote no manifest.yaml under {out}")
    dataset_yaml = ws / "config" / "dataset.yaml"
    dataset = yaml.safe_load(dataset_yaml.read_text())
    dataset["manifest"] = str(manifests[0].relative_to(ws))
    dataset_yaml.write_text(yaml.safe_dump(dataset, sort_keys=False))
    return manifests[0], seconds


class PrefectServer:
    """`prefect server start` (SQLite, own PREFECT_HOME) for the `server` mode; stopped by its group id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.api_url = ""
        self.startup_s = 0.0

    def __enter__(self) -> PrefectServer:
        port = free_port()
        env = _base_env(self.root / "server-home")
        start = time.perf_counter()
        self.proc = start_group(prefect_server_command(BIN, port), env, self.root / "server.log", self.root)
        self.api_url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 240
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"prefect server exited {self.proc.returncode}; see {self.root / 'server.log'}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise SystemExit("prefect server not healthy after 240 s") from None
                time.sleep(0.25)
        self.startup_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_group(self.proc)


def _warm_home(home: Path, log_dir: Path) -> float:
    """One trivial flow so the PREFECT_HOME's SQLite database exists and is migrated."""
    code = "from prefect import flow\nflow(name='warm-up')(lambda: 1)()\n"
    rc, wall, _, _ = _run_measured(
        [sys.executable, "-c", code], cwd=home.parent, env=_base_env(home), log=log_dir / "warm-up.log"
    )
    if rc != 0:
        raise SystemExit(f"warm-up flow failed ({rc}); see {log_dir / 'warm-up.log'}")
    return wall


def run_case(
    ws: Path,
    case: str,
    mode: str,
    rows: int | None,
    *,
    prefect_home: Path,
    api_url: str | None,
    deepchecks: bool,
    log: Path,
    bin_dir: Path = BIN,
) -> RunResult:
    out = ws / "reports" / "pr"
    shutil.rmtree(out, ignore_errors=True)
    env = _base_env(prefect_home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    cmd = [str(bin_dir / "gitops-ml"), "pr-check", "--config-dir", "config", "--out", "reports/pr"]
    if not deepchecks:
        cmd.append("--no-deepchecks")
    rc, wall, cpu, rss = _run_measured(cmd, cwd=ws, env=env, log=log)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise SystemExit(
            f"{case}/{mode}: pr-check exited {rc} without summary.json; see {log}:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    summary = json.loads(summary_path.read_text())
    timings = {k: float(v) for k, v in (summary.get("timings") or {}).items()}
    notes = [] if rc in (0, 1) else [f"exit {rc}: {summary.get('error')}"]
    return RunResult(case, mode, rows, rc, summary.get("status", "?"), wall, timings, rss, cpu, notes)


def _median_result(runs: list[RunResult]) -> RunResult:
    """The run with the median wall time (stages stay consistent with each other)."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        which = "median" if len(runs) % 2 else "lower middle"
        chosen.notes.append(
            f"{len(runs)} runs, walls {', '.join(f'{r.wall_s:.1f}' for r in runs)} s; shown: the {which} one"
        )
    return chosen


def _data_rows(ws: Path) -> int | None:
    summary = json.loads((ws / "reports" / "pr" / "summary.json").read_text())
    data = summary.get("data") or {}
    for key in ("rows", "total_rows", "n_rows"):
        if isinstance(data.get(key), int):
            return data[key]
    return None


def markdown(results: list[RunResult], extra: list[str]) -> str:
    head = ["data", "Prefect", "rows", "exit", "wall s", "CPU s", *STAGES, "other", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            r.case,
            r.mode,
            f"{r.rows:,}" if r.rows else "?",
            f"{r.exit_code} ({r.status})",
            f"{r.wall_s:.1f}",
            f"{r.cpu_s:.1f}",
        ]
        cells += [f"{r.timings[s]:.1f}" if s in r.timings else "-" for s in STAGES]
        cells += [f"{r.other_s:.1f}", f"{r.peak_rss_mb:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.case}/{r.mode}: {n}" for r in results for n in r.notes] + [f"- {e}" for e in extra]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bundled,100k,1m", help="comma list of bundled, 10k, 100k, 1m")
    parser.add_argument("--mode", default="ephemeral,server", help="comma list of ephemeral, server")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-deepchecks", dest="deepchecks", action="store_false")
    parser.add_argument(
        "--fresh-home", action="store_true", help="a new PREFECT_HOME per run (migrations count)"
    )
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces (prints where)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an older commit with its own .venv: run every case there too",
    )
    args = parser.parse_args(argv)
    trees = [Tree("after" if args.baseline else "", REPO, BIN)]
    if args.baseline:
        base_bin = args.baseline.resolve() / ".venv" / "bin"
        if not (base_bin / "gitops-ml").exists():
            parser.error(f"--baseline: {base_bin / 'gitops-ml'} missing (run `make install` there)")
        commit = subprocess.run(
            ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        trees.insert(0, Tree(f"before ({commit or args.baseline})", args.baseline.resolve(), base_bin))
    datas = [d.strip() for d in args.data.split(",") if d.strip()]
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for d in datas:
        if d != "bundled" and d not in SIZES:
            parser.error(f"--data: unknown {d!r} (bundled, {', '.join(SIZES)})")
    for m in modes:
        if m not in ("ephemeral", "server"):
            parser.error(f"--mode: unknown {m!r} (ephemeral, server)")

    root = Path(tempfile.mkdtemp(prefix="pr-check-bench-"))
    logs = root / "logs"
    logs.mkdir()
    extra: list[str] = []
    results: list[RunResult] = []
    try:
        workspaces: dict[tuple[str, str], tuple[Path, int | None]] = {}
        for d in datas:
            for n, tree in enumerate(trees):
                ws = _workspace(root, d, tree.source, tag=f"-{n}")
                rows = None
                if d != "bundled":
                    rows = SIZES[d]
                    _manifest, gen_s = _generate(ws, rows, args.months, logs)
                    extra.append(
                        f"{d}: `gitops-ml data generate --rows {rows // args.months} --months "
                        f"{args.months}` took {gen_s:.1f} s (not part of the PR check)"
                    )
                workspaces[(d, tree.label)] = (ws, rows)

        shared_home = root / "prefect-home"
        if not args.fresh_home:
            extra.append(
                f"PREFECT_HOME warmed once by a trivial flow ({_warm_home(shared_home, logs):.1f} s)"
            )

        def home() -> Path:
            return Path(tempfile.mkdtemp(prefix="home-", dir=root)) if args.fresh_home else shared_home

        for mode in modes:
            server = PrefectServer(root) if mode == "server" else None
            if server is not None:
                server.__enter__()
                extra.append(
                    f"server mode: `prefect server start` (SQLite) took {server.startup_s:.1f} s "
                    "to answer /api/health (paid once, not per run)"
                )
            try:
                for d in datas:
                    runs: dict[str, list[RunResult]] = {tree.label: [] for tree in trees}
                    for i in range(args.repeats):
                        for n, tree in enumerate(trees):  # alternating: both see the same load
                            ws, rows = workspaces[(d, tree.label)]
                            case = f"{d} {tree.label}".strip()
                            log = logs / f"{d}-{mode}-{n}-{i}.log"
                            print(f"== {case} / {mode} / run {i + 1}", file=sys.stderr, flush=True)
                            r = run_case(
                                ws,
                                case,
                                mode,
                                rows,
                                prefect_home=home(),
                                api_url=server.api_url if server else None,
                                deepchecks=args.deepchecks,
                                log=log,
                                bin_dir=tree.bin_dir,
                            )
                            r.rows = r.rows or _data_rows(ws)
                            print(
                                f"   exit {r.exit_code} in {r.wall_s:.1f} s ({r.cpu_s:.1f} CPU s), "
                                f"peak {r.peak_rss_mb:.0f} MB, load {os.getloadavg()[0]:.1f}",
                                file=sys.stderr,
                                flush=True,
                            )
                            runs[tree.label].append(r)
                    results += [_median_result(tree_runs) for tree_runs in runs.values()]
            finally:
                if server is not None:
                    server.__exit__()
    finally:
        if args.keep:
            print(f"workspaces kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)

    if not args.deepchecks:
        extra.append("run with --no-deepchecks")
    text = markdown(results, extra)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if all(r.exit_code in (0, 1) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
