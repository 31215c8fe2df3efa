"""Serving throughput and latency: a real uvicorn server (prediction logging on, SQLite) under load,
against a FastAPI echo endpoint measured in the same run.

Measures, in one run on the same rows:
- the echo endpoint (read the body, orjson parse, a small JSON answer; uvicorn + uvloop + httptools,
  one worker): the HTTP ceiling of this machine, and our rates as a ratio of it;
- single-record requests: throughput and p50/p99 latency at a few concurrency levels (wrk when
  installed, else threads of httpx clients), with one worker and with `--workers`;
- batch requests of 1000 records: records/s, as a ratio of the bare predict rate, with one worker
  and (wrk only) with `--workers` (4 connections per worker process);
- the bare in-process predict of the served model (the compiled fast path) on 1-row and
  1000-row calls, and the scikit-learn pipeline for reference;
- predictions logged vs predictions served (the server's own count, exact).
Targets (2 cores, wrk on the same cores): single-record >= 5,000 req/s at 64 connections with
p99 <= 20 ms and >= 1/3 of echo; p99 <= 10 ms at 16 connections; bare one-row predict <= 0.25 ms;
batch >= 0.8 of bare predict; logged = served.

    .venv/bin/python benchmarks/serving_bench.py [--duration 10] [--concurrency 16 64] [--rows 5000] [--workers 2]
    .venv/bin/python benchmarks/serving_bench.py --only batch   # the bare predict and batch requests only
    .venv/bin/python benchmarks/serving_bench.py --only shadow --repeats 5   # paced load, without / with a shadow

The servers run in their own processes so the load generator does not share their interpreter;
on a 2-core machine they still share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gitops_ml.processes import free_port
from gitops_ml.serving.scheduler import usable_cores

REPO = Path(__file__).resolve().parents[1]
ENV_WORKDIR = "SERVING_BENCH_WORKDIR"

BATCH = 1000  # records per batch request (rows fewer than this are repeated to fill one)
MIN_ROWS = 200


def bench_settings(workdir: Path) -> Any:
    from gitops_ml.config import load_settings

    base = load_settings(REPO / "config")  # the real estimator config (HGB, 200 iterations)
    return base.model_copy(
        update={
            "dataset": base.dataset.model_copy(update={"contract": REPO / base.dataset.contract}),
            "serving": base.serving.model_copy(
                update={"max_body_bytes": 5_000_000, "reload_interval_s": 5.0}
            ),
        }
    )


def records_of(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    rows = df[columns].astype(object).where(df[columns].notna(), None).to_dict("records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in rows]


def prepare(workdir: Path, n_rows: int) -> tuple[Any, list[dict[str, Any]], float]:
    """Train on generated churn rows, publish the artifact, its history entry and the pointer."""
    from threadpoolctl import threadpool_limits

    from gitops_ml.data.generator import generate_month
    from gitops_ml.registry.artifacts import ModelInfo, save_model
    from gitops_ml.registry.pointer import HistoryEntry, ProductionPointer, append_history, write_pointer
    from gitops_ml.training.pipeline import train_model

    settings = bench_settings(workdir)
    features = settings.features
    train = generate_month("2026-01", n_rows, seed=0)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        pipeline = train_model(train, settings).pipeline
    fit_s = time.perf_counter() - started
    records = records_of(generate_month("2026-02", n_rows, seed=1), features.all)
    info = ModelInfo(
        version="bench",
        git_commit=None,
        config_hash="c" * 64,
        data_hash="d" * 64,
        task=settings.dataset.task,
        target=settings.dataset.target,
        features=tuple(features.all),
        numeric_features=tuple(features.numeric),
        categorical_features=tuple(features.categorical),
        sample_record=records[0],
    )
    artifact = save_model(pipeline, workdir / "store" / "bench", info)
    pointer = ProductionPointer(
        version="bench", artifact_uri=str(artifact.model_path), sha256=artifact.sha256
    )
    append_history(
        workdir / "history.yaml",
        HistoryEntry(
            action="promote",
            version="bench",
            previous_version=None,
            at="2026-01-01T00:00:00+00:00",
            pointer=pointer,
        ),
    )
    write_pointer(workdir / "production.yaml", pointer)
    # the challenger of the shadow run: the same estimator on another month's rows
    with threadpool_limits(limits=1):
        other = train_model(generate_month("2026-02", n_rows, seed=2), settings).pipeline
    shadow_artifact = save_model(
        other, workdir / "store" / "shadow", info.model_copy(update={"version": "shadow"})
    )
    (workdir / "challenger.pending.yaml").write_text(
        yaml.safe_dump(
            {
                "version": "shadow",
                "artifact_uri": str(shadow_artifact.model_path),
                "sha256": shadow_artifact.sha256,
                "mode": "shadow",
            }
        )
    )
    return pipeline, records, fit_s


def shadow_counts(url: str) -> dict[str, int]:
    import httpx

    log = httpx.get(f"{url}/ready", timeout=10).json()["prediction_log"]
    return {
        k: int(log[k])
        for k in ("served", "shadow_scored", "shadow_dropped", "shadow_failed", "shadow_queued")
    }


def wait_for_shadow_model(url: str, version: str, timeout: float = 180.0) -> None:
    """The log worker loads the challenger a few seconds after the server is ready (imports and
    checks): measure the shadow once it scores, not its start-up."""
    import httpx

    deadline = time.monotonic() + timeout
    while (
        version not in httpx.get(f"{url}/ready", timeout=10).json()["prediction_log"]["shadow_models_ready"]
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"the log worker did not load shadow model {version} in {timeout:.0f} s")
        time.sleep(0.2)


def cycled(records: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """At least `size` + 1 records (the given ones repeated): any --rows fills 1000-row calls."""
    return records * (size // len(records) + 1) if len(records) <= size else records


def _rate(run: Any, records: list[dict[str, Any]], size: int, seconds: float) -> tuple[float, float]:
    records = cycled(records, size)
    run(records[:size])
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = (calls * size) % (len(records) - size)
        run(records[start : start + size])
        calls += 1
    elapsed = time.perf_counter() - started
    return elapsed / calls * 1e6, calls * size / elapsed


def bare_rates(
    workdir: Path, pipeline: Any, records: list[dict[str, Any]], seconds: float = 3.0
) -> dict[str, Any]:
    """In-process rates of the served model (what /predict calls: the fast path when compiled) and,
    for reference, of the scikit-learn pipeline (DataFrame -> prepare_features -> predict_proba)."""
    from threadpoolctl import threadpool_limits

    from gitops_ml.registry.pointer import read_pointer
    from gitops_ml.registry.production import load_pointed_model
    from gitops_ml.serving.model_holder import serve_model
    from gitops_ml.serving.routes import validate_records
    from gitops_ml.training.pipeline import prepare_features

    settings = bench_settings(workdir)
    columns = settings.features.all
    out: dict[str, Any] = {}
    with threadpool_limits(limits=1):
        pointer = read_pointer(workdir / "production.yaml")
        assert pointer is not None
        served = serve_model(load_pointed_model(pointer, workdir / "cache"), settings)
        out["serving_path"] = served.serving_path

        def sklearn(rows: list[dict[str, Any]]) -> None:
            pipeline.predict_proba(
                prepare_features(pd.DataFrame.from_records(rows, columns=columns), settings)
            )

        for name, run in (("served", served.predict), ("sklearn", sklearn)):
            for size_name, size in (("single", 1), ("batch", BATCH)):
                us, rate = _rate(run, records, size, seconds)
                out[f"{name}_{size_name}_us_per_call"] = us
                out[f"{name}_{size_name}_records_per_s"] = rate
        # the batch request's validation, by column and by the request model (its fallback)
        by_model = replace(served, batch_validator=None)
        for name, model in (("columns", served), ("request_model", by_model)):
            out[f"validate_{name}_us_per_call"] = _rate(
                lambda rows, model=model: validate_records(model, rows, True), records, BATCH, seconds
            )[0]
        X = prepare_features(pd.DataFrame.from_records(records[:1], columns=columns), settings)
        Xt = pipeline[:-1].transform(X)
        estimator = pipeline[-1]
        out["estimator_single_us"] = _rate(lambda rows: estimator.predict_proba(Xt), records, 1, seconds)[0]
    return out


def bench_app(raw_predict: bool = True) -> Any:
    """The app of one server worker (uvicorn factory; the workdir comes from the environment).
    Each worker process calls this, so it also sends the app's shutdown counts to stderr."""
    import logging

    from gitops_ml.serving.app import create_app

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    app_log = logging.getLogger("gitops_ml.serving.app")
    app_log.addHandler(handler)
    app_log.setLevel(logging.INFO)

    workdir = Path(os.environ[ENV_WORKDIR])
    return create_app(
        bench_settings(workdir),
        pointer_path=workdir / "production.yaml",
        store_url=f"sqlite:///{workdir / 'predictions.db'}",
        cache_dir=workdir / "cache",
        raw_predict=raw_predict,
    )


def route_app() -> Any:
    """The app with POST /predict served by its FastAPI route (the raw endpoint off)."""
    return bench_app(raw_predict=False)


def echo_app() -> Any:
    """The reference: read the body, parse it with orjson, answer a small JSON."""
    import orjson
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    from gitops_ml.serving.app import NO_TELEMETRY

    app = FastAPI(**NO_TELEMETRY)  # built as the served app is

    @app.post("/predict")
    async def echo(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return Response(orjson.dumps({"ok": True, "fields": len(body)}), media_type="application/json")

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def raw_echo_app() -> Any:
    """The second reference: the same echo as a bare ASGI callable (no framework at all)."""
    import orjson

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["path"] == "/ready":
            body = b'{"status":"ready"}'
        else:
            body = orjson.dumps({"ok": True, "fields": len(orjson.loads(b"".join(chunks)))})
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


FACTORIES = {"app": "bench_app", "route": "route_app", "echo": "echo_app", "rawecho": "raw_echo_app"}
SHUTDOWN_LINE = re.compile(r"prediction log at shutdown: served (\d+), written (\d+), dropped (\d+)")


def serve(workdir: Path, port: int, kind: str, workers: int) -> None:
    """A server process: the real app (logging to SQLite) or an echo app; uvicorn, no access log.
    The app's shutdown line (served / written per worker) goes to stderr for `stop_server`."""
    import uvicorn

    from gitops_ml.serving.scheduler import ENV_WORKERS
    from gitops_ml.serving.workers import ServerOptions, Supervisor, reuseport_supported, uvicorn_settings

    os.environ[ENV_WORKDIR] = str(workdir)
    os.environ[ENV_WORKERS] = str(workers)  # as `gitops-ml serve --workers N` sets it: the cores shared
    factory = f"serving_bench:{FACTORIES[kind]}"
    if workers > 1 and reuseport_supported():  # as `gitops-ml serve --workers N` serves
        options = ServerOptions("127.0.0.1", port, "warning", app=factory, app_dir=str(REPO / "benchmarks"))
        Supervisor(workers, options).run()
        return
    settings = uvicorn_settings("127.0.0.1", port, "warning")  # as `gitops-ml serve` runs uvicorn
    uvicorn.run(factory, factory=True, app_dir=str(REPO / "benchmarks"), workers=workers, **settings)


def start_server(workdir: Path, kind: str = "app", workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    log_path = workdir / f"server-{kind}-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(workdir),
            "--port",
            str(port),
            "--kind",
            kind,
            "--workers",
            str(workers),
        ],
        stderr=log_path.open("wb"),
    )
    process.log_path = log_path  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    ready_workers: set[int] = set()  # a worker listens once ready; each new connection may reach any
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/ready", timeout=2)
            if response.status_code == 200:
                if workers == 1:
                    return process, url
                ready_workers.add(response.json()["prediction_log"]["log_worker"]["pid"])
                if len(ready_workers) == workers:
                    return process, url
                continue
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(
                f"server exited during startup (code {process.returncode}); its log ends:\n{tail}"
            )
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("server not ready after 180 s")


def stop_server(process: subprocess.Popen[bytes]) -> dict[str, int]:
    """Stop the server; its own counts summed over its workers' shutdown lines (served, written,
    dropped, workers): exact across processes, unlike a count read from one worker's /ready."""
    process.terminate()  # SIGTERM: uvicorn runs the lifespan shutdown, which flushes the logger
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    text = Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
    lines = SHUTDOWN_LINE.findall(text)
    if "Traceback" in text:
        print(text[-3000:], file=sys.stderr)
    return {
        "served": sum(int(a) for a, _, _ in lines),
        "written": sum(int(b) for _, b, _ in lines),
        "dropped": sum(int(c) for _, _, c in lines),
        "workers": len(lines),
        "served_by_worker": [int(a) for a, _, _ in lines],
    }


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
"""

# a think time per connection: a paced load below saturation, where "off the response path" can be
# seen (at saturation any added CPU, on the path or not, lengthens every queue)
WRK_DELAY = """
delay = function()
  return %d
end
"""
PACED_CONNECTIONS = 16
PACED_SHARE = 0.5  # the paced load offers about half the saturated single-record rate


def _wrk_time_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_wrk(
    url: str,
    records: list[dict[str, Any]],
    concurrency: int,
    duration: float,
    workdir: Path,
    delay_ms: int | None = None,
) -> dict[str, float]:
    bodies = ",".join(json.dumps(json.dumps(r)) for r in records[:200])
    script = workdir / "single.lua"
    script.write_text(WRK_SCRIPT % bodies + (WRK_DELAY % delay_ms if delay_ms is not None else ""))
    return run_wrk(url, script, concurrency, duration)


def run_wrk(url: str, script: Path, concurrency: int, duration: float) -> dict[str, float]:
    """One wrk run (2 threads) of a Lua script: rate, p50 / p99, requests, failures."""
    result = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{int(duration)}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": _wrk_time_ms(percentiles["50"]),
        "p99_ms": _wrk_time_ms(percentiles["99"]),
        "requests": requests,
        "failed": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def load_httpx(
    url: str, records: list[dict[str, Any]], concurrency: int, duration: float
) -> dict[str, float]:
    import httpx

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failed = [0]
    stop_at = time.perf_counter() + duration

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            i = k
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = http.post("/predict", json=records[i % len(records)])
                latencies[k].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    failed[0] += 1
                i += concurrency

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = np.concatenate([np.asarray(x) for x in latencies])
    return {
        "rps": len(flat) / elapsed,
        "p50_ms": float(np.percentile(flat, 50)),
        "p99_ms": float(np.percentile(flat, 99)),
        "requests": len(flat),
        "failed": failed[0],
    }


def load_batches(
    url: str, records: list[dict[str, Any]], duration: float, concurrency: int = 2, pid: int | None = None
) -> dict[str, float]:
    """Records/s of 1000-record requests, and (given the server's pid) its CPU per record: the
    clients run on the same cores, so the CPU figure holds up better under load than the rate."""
    import httpx

    records = cycled(records, BATCH)
    bodies = [
        json.dumps({"records": records[i : i + BATCH]}).encode()
        for i in range(0, len(records) - BATCH + 1, BATCH)
    ]
    counts = [0] * concurrency
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = k
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = http.post(
                    "/predict", content=bodies[i % len(bodies)], headers={"content-type": "application/json"}
                )
                response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
                counts[k] += BATCH
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before if pid is not None else float("nan")
    return {
        "server_cpu_us_per_record": cpu / max(sum(counts), 1) * 1e6,
        "records_per_s": sum(counts) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "requests": len(latencies),
        "records": sum(counts),
    }


WRK_BATCH_SCRIPT = """
local bodies = {}
for _, path in ipairs({%s}) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def load_batches_wrk(
    url: str, records: list[dict[str, Any]], duration: float, workdir: Path, pid: int, concurrency: int = 2
) -> dict[str, float]:
    """`load_batches` with wrk as the client: its C client costs the shared cores far less CPU
    than httpx's (which parses every 1000-record answer in Python), so more of them serve."""
    records = cycled(records, BATCH)
    paths = []
    for k, i in enumerate(range(0, len(records) - BATCH + 1, BATCH)):
        path = workdir / f"batch-{k}.json"
        path.write_bytes(json.dumps({"records": records[i : i + BATCH]}).encode())
        paths.append(json.dumps(str(path)))
    script = workdir / "batch.lua"
    script.write_text(WRK_BATCH_SCRIPT % ",".join(paths))
    before = cpu_seconds(pid)
    result = run_wrk(url, script, concurrency, duration)
    records_served = result["requests"] * BATCH
    return {
        "server_cpu_us_per_record": (cpu_seconds(pid) - before) / max(records_served, 1) * 1e6,
        "records_per_s": result["rps"] * BATCH,
        "p50_ms": result["p50_ms"],
        "requests": result["requests"],
        "records": records_served,
        "failed": result["failed"],
    }


def count_logged(workdir: Path) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{workdir / 'predictions.db'}")
    with engine.connect() as conn:
        count = int(conn.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one())
    engine.dispose()
    return count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants (Linux /proc): the server's
    prediction log worker (and with --workers N, each worker and its log worker) counts as server."""
    total = 0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        each = todo.pop()
        found.append(each)
        for task in Path(f"/proc/{each}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def load_singles(
    generator: str,
    url: str,
    records: list[dict[str, Any]],
    concurrency: int,
    duration: float,
    workdir: Path,
    pid: int,
    delay_ms: int | None = None,
) -> dict[str, float]:
    """Throughput and latency, plus the server's CPU time per request: on a shared machine the rate
    follows the neighbours' load, the CPU cost of a request much less. `delay_ms`: a paced load
    (wrk only), each connection waiting that long between requests."""
    before = cpu_seconds(pid)
    if generator == "wrk":
        result = load_wrk(url, records, concurrency, duration, workdir, delay_ms)
    else:
        result = load_httpx(url, records, concurrency, duration)
    result["server_cpu_us"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e6
    return result


def each_concurrency(
    generator: str, url: str, records: list[dict[str, Any]], args: Any, workdir: Path, pid: int
) -> dict[int, dict[str, float]]:
    return {
        concurrency: load_singles(generator, url, records, concurrency, args.duration, workdir, pid)
        for concurrency in args.concurrency
    }


def paced_delay_ms(singles: dict[int, dict[str, float]]) -> int:
    """The think time that makes PACED_CONNECTIONS offer about PACED_SHARE of the best saturated rate."""
    best = max(r["rps"] for r in singles.values())
    per_connection = best * PACED_SHARE / PACED_CONNECTIONS  # requests/s each connection should send
    return max(1, round(1000 / per_connection))


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def cpu_bound(result: dict[str, Any], bare_us: float) -> str:
    """What the CPU per record allows: the cores the server's processes kept busy, and the rate
    all of this machine's cores could give at that CPU per record, as a ratio of bare predict
    (which uses one core). The load generator's CPU is not counted, so this is an upper bound."""
    cores = usable_cores()
    cpu_us = result["server_cpu_us_per_record"]
    busy = result["records_per_s"] * cpu_us / 1e6
    return (
        f"{busy:.2f} of {cores} cores busy; at this CPU per record {cores} cores serve at most "
        f"{cores * bare_us / cpu_us:.2f} of bare"
    )


def print_batch(batch: dict[str, float], bare: dict[str, Any], batch_wrk: dict[str, float] | None) -> None:
    print(
        f"| bare 1000-row predict (served model) | {bare['served_batch_records_per_s']:,.0f} records/s "
        f"({bare['served_batch_us_per_call'] / 1000:.1f} ms/call) | | |"
    )
    print(
        f"| validating a 1000-record batch: by column / by the request model | "
        f"{bare['validate_columns_us_per_call'] / 1000:.2f} / {bare['validate_request_model_us_per_call'] / 1000:.2f} ms | | |"
    )
    bare_us = bare["served_batch_us_per_call"] / BATCH
    for name, result in (("2 httpx clients", batch), ("wrk, 2 connections", batch_wrk)):
        if result is None:
            continue
        ratio = result["records_per_s"] / bare["served_batch_records_per_s"]
        print(
            f"| batch records/s (1000-record requests, {name}) | {result['records_per_s']:,.0f} "
            f"({ratio:.2f} of bare) | >= 0.8 of bare | {_met(ratio >= 0.8)} |"
        )
        print(
            f"| server CPU per batch record, its log worker included ({name}) | {result['server_cpu_us_per_record']:.1f} us (bare predict "
            f"{bare_us:.1f} us/record: bare / server = {bare_us / result['server_cpu_us_per_record']:.2f}; "
            f"{cpu_bound(result, bare_us)}) | | |"
        )
        if result.get("failed"):
            print(f"| failed batch requests ({name}) | {result['failed']} | 0 | |")


def fresh_store(workdir: Path) -> None:
    """An empty prediction store for the next server: its logged count is that run's alone."""
    for name in ("predictions.db", "predictions.db-wal", "predictions.db-shm"):
        (workdir / name).unlink(missing_ok=True)


MULTI_BATCH_CONNECTIONS = 4  # per worker process


def multi_batch(
    workdir: Path, records: list[dict[str, Any]], args: Any, generator: str
) -> dict[str, Any] | None:
    """Batch requests from wrk against `--workers N` processes (MULTI_BATCH_CONNECTIONS per
    worker, on a fresh store). Each worker process listens on its own socket (`serving.workers`)
    and the kernel assigns each connection to one by a hash of its addresses: with one connection
    per worker, two connections landed on one of two workers half of the time (a coin flip per
    connection), so each worker gets several; the records each worker served are reported."""
    if args.workers <= 1 or generator != "wrk":
        return None
    fresh_store(workdir)
    process, url = start_server(workdir, workers=args.workers)
    try:
        result: dict[str, Any] = load_batches_wrk(
            url,
            records,
            args.duration,
            workdir,
            process.pid,
            concurrency=MULTI_BATCH_CONNECTIONS * args.workers,
        )
    finally:
        counts = stop_server(process)
    result.update(counts)
    result["logged"] = count_logged(workdir)
    return result


def print_multi_batch(multi: dict[str, Any] | None, bare: dict[str, Any], workers: int) -> None:
    if multi is None:
        return
    connections = MULTI_BATCH_CONNECTIONS * workers
    ratio = multi["records_per_s"] / bare["served_batch_records_per_s"]
    split = " / ".join(f"{n:,}" for n in multi["served_by_worker"])
    print(
        f"| `--workers {workers}`: batch records/s (1000-record requests, wrk, {connections} connections) | "
        f"{multi['records_per_s']:,.0f} ({ratio:.2f} of bare; records served by each worker: {split}) | "
        f">= 0.8 of bare | {_met(ratio >= 0.8)} |"
    )
    bare_us = bare["served_batch_us_per_call"] / BATCH
    print(
        f"| `--workers {workers}`: CPU per batch record, every worker and log worker | "
        f"{multi['server_cpu_us_per_record']:.1f} us (bare / server = {bare_us / multi['server_cpu_us_per_record']:.2f}; "
        f"{cpu_bound(multi, bare_us)}) | | |"
    )
    exact = multi["logged"] == multi["served"] and multi["workers"] == workers
    print(
        f"| `--workers {workers}`: batch predictions logged / served | {multi['logged']:,} / "
        f"{multi['served']:,} | equal | {_met(exact)} |"
    )


def batch_loads(
    generator: str, url: str, records: list[dict[str, Any]], duration: float, workdir: Path, pid: int
) -> tuple[dict[str, float], dict[str, float] | None]:
    """The batch load from httpx clients, and from wrk when it is there."""
    batch = load_batches(url, records, duration, pid=pid)
    batch_wrk = load_batches_wrk(url, records, duration, workdir, pid) if generator == "wrk" else None
    return batch, batch_wrk


def batch_only(workdir: Path, args: Any, generator: str, load_before: tuple[float, float, float]) -> int:
    """`--only batch`: the bare predict rates and the batch requests against one server, nothing else."""
    try:
        pipeline, records, _fit_s = prepare(workdir, args.rows)
        bare = bare_rates(workdir, pipeline, records)
        process, url = start_server(workdir)
        try:
            batch, batch_wrk = batch_loads(generator, url, records, args.duration, workdir, process.pid)
        finally:
            counts = stop_server(process)
        logged = count_logged(workdir)
        multi = multi_batch(workdir, records, args, generator)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"\n## Serving benchmark, batch only ({usable_cores()} cores; load average before "
        f"{load_before[0]:.1f}, after {load[0]:.1f}; served by: {bare['serving_path']})\n"
    )
    print("| measurement | value | target | |")
    print("|---|---|---|---|")
    print_batch(batch, bare, batch_wrk)
    served = counts["served"]
    print(f"| predictions logged / served | {logged:,} / {served:,} | equal | {_met(logged == served)} |")
    print_multi_batch(multi, bare, args.workers)
    return 0


def shadow_only(workdir: Path, args: Any, load_before: tuple[float, float, float]) -> int:
    """`--only shadow`: the paced load without and with a shadow challenger, alternated `--repeats`
    times (a fresh server each run), so the shadow's added p50 is a distribution, not one draw."""
    try:
        _pipeline, records, _fit_s = prepare(workdir, args.rows)
        process, url = start_server(workdir)
        try:  # the saturated rate sets the think time, as in the full run (after a warm-up)
            load_singles("wrk", url, records, 16, 2.0, workdir, process.pid)
            delay = paced_delay_ms(
                {
                    c: load_singles("wrk", url, records, c, args.duration, workdir, process.pid)
                    for c in (16, 64)
                }
            )
        finally:
            stop_server(process)
        pairs = []
        for k in range(args.repeats):
            runs: dict[bool, dict[str, Any]] = {}
            # every other pair with the shadow first: no order effect (a warmer machine) favours either
            for shadow in (False, True) if k % 2 == 0 else (True, False):
                if shadow:
                    (workdir / "challenger.pending.yaml").rename(workdir / "challenger.yaml")
                process, url = start_server(workdir)
                try:
                    if shadow:
                        wait_for_shadow_model(url, "shadow")
                    run = load_singles(
                        "wrk", url, records, PACED_CONNECTIONS, args.duration, workdir, process.pid, delay
                    )
                    if shadow:
                        time.sleep(1.0)
                        run.update(shadow_counts(url))
                    runs[shadow] = run
                finally:
                    stop_server(process)
                    if shadow:
                        (workdir / "challenger.yaml").rename(workdir / "challenger.pending.yaml")
            pairs.append((runs[False], runs[True]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"\n## Serving benchmark, shadow only ({usable_cores()} cores; load average before "
        f"{load_before[0]:.1f}, after {load[0]:.1f}; paced: {PACED_CONNECTIONS} connections, {delay} ms think time)\n"
    )
    print(
        "| pair | p50 without / with the shadow | p50 added | p99 without / with | req/s without / with | shadow scored / dropped of served |"
    )
    print("|---|---|---|---|---|---|")
    added = []
    for k, (plain, shadowed) in enumerate(pairs, start=1):
        added.append(shadowed["p50_ms"] / plain["p50_ms"] - 1)
        print(
            f"| {k} | {plain['p50_ms']:.2f} / {shadowed['p50_ms']:.2f} ms | {added[-1]:+.0%} | "
            f"{plain['p99_ms']:.1f} / {shadowed['p99_ms']:.1f} ms | {plain['rps']:,.0f} / {shadowed['rps']:,.0f} | "
            f"{shadowed['shadow_scored']:,} / {shadowed['shadow_dropped']:,} of {shadowed['served']:,} |"
        )
    median = float(np.median(added))
    print(f"\nmedian p50 added: {median:+.0%} (target <= +10%: {_met(median <= 0.10)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load test")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="also measure `--workers N` (1: skip)")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--only",
        choices=["batch", "shadow"],
        help="batch: only the bare predict and the batch requests (fast); shadow: only the paced load "
        "without and with a shadow challenger, --repeats pairs (needs wrk)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--only shadow: pairs of paced runs")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=sorted(FACTORIES), default="app", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < MIN_ROWS:
        parser.error(f"--rows must be at least {MIN_ROWS} (the model is trained on that many rows)")
    if args.serve:
        serve(args.serve, args.port, args.kind, args.workers)
        return 0

    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "httpx"
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    load_before = os.getloadavg()
    if args.only == "batch":
        return batch_only(workdir, args, generator, load_before)
    if args.only == "shadow":
        if generator != "wrk":
            parser.error("--only shadow needs wrk (its paced load)")
        return shadow_only(workdir, args, load_before)
    try:
        pipeline, records, fit_s = prepare(workdir, args.rows)
        bare = bare_rates(workdir, pipeline, records)
        process, url = start_server(workdir, "echo")
        try:
            echo = each_concurrency(generator, url, records, args, workdir, process.pid)
        finally:
            stop_server(process)
        process, url = start_server(workdir, "rawecho")
        try:
            raw_echo = each_concurrency(generator, url, records, args, workdir, process.pid)
        finally:
            stop_server(process)
        process, url = start_server(workdir)
        try:
            singles = each_concurrency(generator, url, records, args, workdir, process.pid)
            paced_delay = paced_delay_ms(singles)

            def paced_load(url: str, pid: int) -> dict[str, float] | None:
                # the same paced load with and without the shadow (wrk's delay(); none with httpx)
                if generator != "wrk":
                    return None
                return load_singles(
                    generator, url, records, PACED_CONNECTIONS, args.duration, workdir, pid, paced_delay
                )

            paced = paced_load(url, process.pid)
            batch, batch_wrk = batch_loads(generator, url, records, args.duration, workdir, process.pid)
        finally:
            counts = stop_server(process)
        served = counts["served"]
        logged = count_logged(workdir)
        top = max(args.concurrency)
        # the same app with /predict served by its FastAPI route: what the raw endpoint saves
        process, url = start_server(workdir, "route")
        try:
            routed = load_singles(generator, url, records, top, args.duration, workdir, process.pid)
        finally:
            stop_server(process)
        # the same single-record load with a challenger in shadow mode: what shadow scoring adds
        (workdir / "challenger.pending.yaml").rename(workdir / "challenger.yaml")
        process, url = start_server(workdir)
        try:
            wait_for_shadow_model(url, "shadow")
            shadowed = each_concurrency(generator, url, records, args, workdir, process.pid)
            shadow_paced = paced_load(url, process.pid)
            time.sleep(1.0)  # let the shadow rounds finish what is queued before counting
            shadow_log = shadow_counts(url)
        finally:
            stop_server(process)
        (workdir / "challenger.yaml").unlink()
        multi: dict[str, Any] | None = None
        if args.workers > 1:
            fresh_store(workdir)
            process, url = start_server(workdir, workers=args.workers)
            try:
                # the CPU figure covers the supervisor only here (the workers are its children)
                multi = load_singles(generator, url, records, top, args.duration, workdir, process.pid)
            finally:
                multi_counts = stop_server(process)
            multi.update(multi_counts)
            multi["logged"] = count_logged(workdir)
            multi["concurrency"] = top
        multi_batches = multi_batch(workdir, records, args, generator)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"\n## Serving benchmark ({usable_cores()} cores; load average before {load_before[0]:.1f} / "
        f"{load_before[1]:.1f} / {load_before[2]:.1f}, after {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"load generator: {generator}; model: HistGradientBoosting, fit on {args.rows} rows in {fit_s:.1f} s; "
        f"served by: {bare['serving_path']})\n"
    )
    print("| measurement | value | target | |")
    print("|---|---|---|---|")
    for concurrency, ref in raw_echo.items():
        print(
            f"| raw ASGI echo (second reference), {concurrency} connections | {ref['rps']:,.0f} req/s "
            f"({ref['rps'] / echo[concurrency]['rps']:.2f}x the FastAPI echo), p99 {ref['p99_ms']:.1f} ms, "
            f"server CPU {ref['server_cpu_us']:.0f} us (FastAPI echo {echo[concurrency]['server_cpu_us']:.0f} us) | | |"
        )
    for concurrency, result in singles.items():
        ref = echo[concurrency]
        ratio = result["rps"] / ref["rps"]
        target = ">= 5,000 and >= 1/3 of echo" if concurrency >= 64 else ""
        ok = result["rps"] >= 5000 and ratio >= 1 / 3 if concurrency >= 64 else None
        print(
            f"| single-record req/s, {concurrency} connections | {result['rps']:,.0f} "
            f"({ratio:.2f} of echo {ref['rps']:,.0f}) | {target} | {'' if ok is None else _met(ok)} |"
        )
        p99_target = 20.0 if concurrency >= 64 else 10.0
        print(
            f"| p50 / p99 latency, {concurrency} connections | {result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms "
            f"(echo {ref['p50_ms']:.1f} / {ref['p99_ms']:.1f}) | p99 <= {p99_target:.0f} ms | "
            f"{_met(result['p99_ms'] <= p99_target)} |"
        )
        print(
            f"| server CPU per request (its log worker included), {concurrency} connections | {result['server_cpu_us']:.0f} us "
            f"(echo {ref['server_cpu_us']:.0f} us: {result['server_cpu_us'] / ref['server_cpu_us']:.1f}x) | | |"
        )
        if result["failed"]:
            print(f"| failed requests, {concurrency} connections | {result['failed']} | 0 | |")
    print(
        f"| /predict by the FastAPI route instead (raw endpoint off), {top} connections | {routed['rps']:,.0f} "
        f"req/s ({routed['rps'] / echo[top]['rps']:.2f} of echo), p99 {routed['p99_ms']:.1f} ms, server CPU "
        f"{routed['server_cpu_us']:.0f} us (raw endpoint: {singles[top]['server_cpu_us']:.0f} us) | (reference) | |"
    )
    if paced is not None and shadow_paced is not None:
        added = shadow_paced["p50_ms"] / paced["p50_ms"] - 1
        print(
            f"| shadow challenger, paced load ({PACED_CONNECTIONS} connections, {paced_delay} ms think time: "
            f"{paced['rps']:,.0f} req/s without, {shadow_paced['rps']:,.0f} with): p50 / p99 | "
            f"{shadow_paced['p50_ms']:.2f} / {shadow_paced['p99_ms']:.1f} ms vs {paced['p50_ms']:.2f} / "
            f"{paced['p99_ms']:.1f} ms without (p50 {added:+.0%}) | p50 added <= 10% | {_met(added <= 0.10)} |"
        )
    for concurrency, result in shadowed.items():
        ref = singles[concurrency]
        added = result["p50_ms"] / ref["p50_ms"] - 1
        print(
            f"| shadow challenger, saturated, {concurrency} connections: req/s, p50 / p99 | {result['rps']:,.0f}, "
            f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms (p50 {added:+.0%} vs none: the shadow's CPU "
            f"is taken from requests; server CPU {result['server_cpu_us']:.0f} us) | (reference) | |"
        )
    print(
        f"| shadow scored / dropped / failed of served | {shadow_log['shadow_scored']:,} / "
        f"{shadow_log['shadow_dropped']:,} / {shadow_log['shadow_failed']:,} of {shadow_log['served']:,} "
        f"(queued at the end {shadow_log['shadow_queued']}) | | |"
    )
    single_ms = bare["served_single_us_per_call"] / 1000
    print(
        f"| bare one-row predict (served model) | {single_ms:.3f} ms | <= 0.25 ms | {_met(single_ms <= 0.25)} |"
    )
    print_batch(batch, bare, batch_wrk)
    print(
        f"| scikit-learn pipeline, 1-row / 1000-row calls | {bare['sklearn_single_us_per_call'] / 1000:.2f} ms / "
        f"{bare['sklearn_batch_us_per_call'] / 1000:.1f} ms | (reference) | |"
    )
    print(
        f"| the estimator's own predict_proba, 1 row | {bare['estimator_single_us'] / 1000:.3f} ms | (reference) | |"
    )
    print(
        f"| predictions logged / served (the server's own count) | {logged:,} / {served:,} | equal | "
        f"{_met(logged == served)} |"
    )
    if multi is not None:
        print(
            f"| `--workers {args.workers}`: single-record req/s, {multi['concurrency']} connections | "
            f"{multi['rps']:,.0f} (p50 / p99 {multi['p50_ms']:.1f} / {multi['p99_ms']:.1f} ms) | | |"
        )
        exact = multi["logged"] == multi["served"] and multi["workers"] == args.workers
        print(
            f"| `--workers {args.workers}`: predictions logged / served (sum of the {multi['workers']} "
            f"workers' own counts) | {multi['logged']:,} / {multi['served']:,} (wrk completed "
            f"{int(multi['requests']):,}) | equal | {_met(exact)} |"
        )
    print_multi_batch(multi_batches, bare, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
