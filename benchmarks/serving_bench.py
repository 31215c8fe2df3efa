"""Serving throughput and latency: a real uvicorn server (prediction logging on, SQLite) under load.

Measures, in one run on the same rows:
- single-record requests: throughput and p50/p99 latency at a few concurrency levels
  (wrk when installed, else threads of httpx clients);
- batch requests of 1000 records: records/s;
- the bare in-process pipeline (prepare_features + predict_proba) on 1-row and 1000-row calls,
  the ceiling the server is compared with;
and prints a markdown table with the ratios. Targets: >= 2,000 single predictions/s with
p99 <= 20 ms on 2 cores, and batch >= half the bare rate.

    .venv/bin/python benchmarks/serving_bench.py [--duration 10] [--concurrency 16 64] [--rows 5000]

The server runs in its own process (`--serve`, used internally) so the load generator does not
share its interpreter; on a 2-core machine they still share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/serving/conftest.py holds the synthetic churn rows

BATCH = 1000


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


def prepare(workdir: Path, n_rows: int) -> tuple[Any, list[dict[str, Any]], float]:
    """Train on synthetic churn rows, publish the artifact and the pointer; return the pipeline, rows."""
    from threadpoolctl import threadpool_limits

    from gitops_ml.registry.artifacts import save_model
    from gitops_ml.registry.pointer import ProductionPointer, write_pointer
    from gitops_ml.training.pipeline import train_model
    from tests.serving.conftest import artifact_metadata, records_of, synth_churn

    settings = bench_settings(workdir)
    train = synth_churn(n_rows, seed=0)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        pipeline = train_model(train, settings).pipeline
    fit_s = time.perf_counter() - started
    artifact = save_model(pipeline, workdir / "store" / "bench", artifact_metadata("bench"))
    write_pointer(
        workdir / "production.yaml",
        ProductionPointer(version="bench", artifact_uri=str(artifact.model_path), sha256=artifact.sha256),
    )
    return pipeline, records_of(synth_churn(n_rows, seed=1)), fit_s


def bare_rates(pipeline: Any, records: list[dict[str, Any]], seconds: float = 3.0) -> dict[str, float]:
    """In-process rates with the serving code path (DataFrame -> prepare_features -> predict_proba)."""
    from threadpoolctl import threadpool_limits

    from gitops_ml.config import load_settings
    from gitops_ml.training.pipeline import prepare_features

    settings = load_settings(REPO / "config")
    columns = settings.features.all

    def run(rows: list[dict[str, Any]]) -> None:
        pipeline.predict_proba(prepare_features(pd.DataFrame.from_records(rows, columns=columns), settings))

    out = {}
    with threadpool_limits(limits=1):
        for name, size in (("single", 1), ("batch", BATCH)):
            run(records[:size])
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                start = (calls * size) % (len(records) - size)
                run(records[start : start + size])
                calls += 1
            elapsed = time.perf_counter() - started
            out[f"{name}_us_per_call"] = elapsed / calls * 1e6
            out[f"{name}_records_per_s"] = calls * size / elapsed
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(workdir: Path, port: int) -> None:
    """The server process: the real app, logging to SQLite, uvicorn without access log."""
    import uvicorn

    from gitops_ml.serving.app import create_app

    app = create_app(
        bench_settings(workdir),
        pointer_path=workdir / "production.yaml",
        store_url=f"sqlite:///{workdir / 'predictions.db'}",
        cache_dir=workdir / "cache",
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(workdir), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("server exited during startup")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("server not ready after 120 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: uvicorn runs the lifespan shutdown, which flushes the logger
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def _wrk_time_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_wrk(
    url: str, records: list[dict[str, Any]], concurrency: int, duration: float, workdir: Path
) -> dict[str, float]:
    bodies = ",".join(json.dumps(json.dumps(r)) for r in records[:200])
    script = workdir / "single.lua"
    script.write_text(WRK_SCRIPT % bodies)
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
    url: str, records: list[dict[str, Any]], duration: float, concurrency: int = 2
) -> dict[str, float]:
    import httpx

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
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "records_per_s": sum(counts) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "requests": len(latencies),
        "records": sum(counts),
    }


def count_logged(workdir: Path) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{workdir / 'predictions.db'}")
    with engine.connect() as conn:
        count = int(conn.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one())
    engine.dispose()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load test")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--load-generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0

    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "httpx"
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    try:
        pipeline, records, fit_s = prepare(workdir, args.rows)
        bare = bare_rates(pipeline, records)
        process, url = start_server(workdir)
        sent = 0
        try:
            singles = {}
            for concurrency in args.concurrency:
                result = (
                    load_wrk(url, records, concurrency, args.duration, workdir)
                    if generator == "wrk"
                    else load_httpx(url, records, concurrency, args.duration)
                )
                singles[concurrency] = result
                sent += int(result["requests"]) - int(result["failed"])
            batch = load_batches(url, records, args.duration)
            sent += int(batch["records"])
        finally:
            stop_server(process)
        logged = count_logged(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"\n## Serving benchmark ({os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}; load generator: {generator}; model: HistGradientBoosting 200 iterations, "
        f"fit on {args.rows} rows in {fit_s:.1f} s)\n"
    )
    print("| measurement | value | target | ratio |")
    print("|---|---|---|---|")
    for concurrency, result in singles.items():
        print(
            f"| single-record requests/s, {concurrency} connections | {result['rps']:,.0f} | >= 2,000 | "
            f"{result['rps'] / 2000:.2f} |"
        )
        print(
            f"| p50 / p99 latency, {concurrency} connections | {result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms "
            f"| p99 <= 20 ms | {result['p99_ms'] / 20:.2f} |"
        )
        if result["failed"]:
            print(f"| failed requests, {concurrency} connections | {result['failed']} | 0 | |")
    print(
        f"| batch records/s (1000-record requests, 2 clients) | {batch['records_per_s']:,.0f} | >= "
        f"{bare['batch_records_per_s'] / 2:,.0f} (half of bare) | "
        f"{batch['records_per_s'] / bare['batch_records_per_s']:.2f} of bare |"
    )
    print(
        f"| bare in-process predict, 1000-row calls | {bare['batch_records_per_s']:,.0f} records/s "
        f"({bare['batch_us_per_call'] / 1000:.1f} ms/call) | | |"
    )
    print(
        f"| bare in-process predict, 1-row calls | {bare['single_records_per_s']:,.0f} records/s "
        f"({bare['single_us_per_call']:,.0f} us/call) | | |"
    )
    best = max(singles.values(), key=lambda r: r["rps"])
    print(
        f"| best single-record server rate / bare 1-row rate | {best['rps'] / bare['single_records_per_s']:.2f} "
        "| | |"
    )
    print(
        f"| predictions logged / predictions served | {logged:,} / {sent:,} | equal | "
        f"{logged / max(sent, 1):.3f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
