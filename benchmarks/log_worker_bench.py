"""The prediction log's CPU per record, on both sides of the pipe: the real `LogWorker` (its feeder
thread in this process, its child process) writing 1000-row frames into a real SQLite store that
already holds `--prefill` rows.

    .venv/bin/python benchmarks/log_worker_bench.py [--frames 300] [--prefill 300000] [--repeats 3]

Reported per record: the worker process's CPU (all its threads: unpickle, encode, insert, commit,
its reporter), the feeder thread's CPU in this process (the frame's encoding and the pipe write,
which hold the server's GIL), and the time of a bare `predict` of the served model per record as the
reference the log is weighed against. CPU times come from /proc/<pid>/task/<tid>/schedstat (time on
a CPU, in ns), so the figures do not depend on what else the machine runs; the wall clock does.

Requests are paced one per `--interval-ms` (each frame one 1000-row request, as in the batch
benchmark's traffic); the model, its records and its answers are the batch benchmark's
(`serving_bench.prepare`: generated churn rows, the real estimator config). Each repeat runs both
shapes the request path logs: a validated batch's columns with the model's answers by column
(`RecordColumns`, `ModelAnswers`), and one dict per record and per answer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
FRAME_ROWS = 1000


def cpu_ns(pid: int, tid: int | None = None) -> int:
    """Time on a CPU of one thread, or of every live thread of a process (Linux schedstat)."""
    tasks = [tid] if tid is not None else [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    total = 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total


def request(records: bytes, outputs: bytes, by_column: bool = True) -> Any:
    """One batch request's rows as the request path builds them, just before it logs them: fresh
    objects (parsed from JSON, as a request body is), its own lists, one uuid prefix; the inputs by
    column with the answers by column (a validated batch's `RecordColumns`, the model's
    `ModelAnswers`), or as one dict per record and per answer."""
    from gitops_ml.prediction_store.codecs import PredictionRows
    from gitops_ml.record_columns import ModelAnswers, RecordColumns

    inputs, answers = orjson.loads(records), orjson.loads(outputs)
    if by_column:
        names = tuple(inputs[0])
        inputs = RecordColumns(names, tuple([r[name] for r in inputs] for name in names))
        keys = tuple(answers[0]["probabilities"])
        answers = ModelAnswers(
            [a["prediction"] for a in answers],
            [a["score"] for a in answers],
            keys,
            [[a["probabilities"][k] for k in keys] for a in answers],
        )
    n = len(inputs)
    prefix = uuid.uuid4().hex
    return PredictionRows(
        [f"{prefix}-{i}" for i in range(n)],
        [datetime.now(UTC)] * n,
        ["bench-1"] * n,
        ["production"] * n,
        inputs,
        answers,
        [12.5] * n,
    )


SHAPES = {"columns": True, "dicts": False}


def prefill(url: str, rows: int, records: bytes, outputs: bytes) -> None:
    from gitops_ml.prediction_store import PredictionStore

    store = PredictionStore(url)
    try:
        for _ in range(rows // FRAME_ROWS):
            store.log_many(request(records, outputs))
    finally:
        store.dispose()


def run_once(
    url: str, workdir: Path, frames: int, interval_s: float, records: Any, outputs: Any, by_column: bool
) -> dict[str, float]:
    from gitops_ml.config import load_settings
    from gitops_ml.serving.log_worker import LogWorker, WorkerConfig

    settings = load_settings(REPO / "config")
    serving = settings.serving
    config = WorkerConfig(
        url, settings, workdir / "cache", serving.log_batch_size, serving.log_flush_interval_s
    )
    logger = LogWorker(config).start()
    try:
        worker_pid = logger.pid
        feeder = logger._feeder  # noqa: SLF001 - the benchmark measures this thread's CPU
        assert worker_pid is not None and feeder is not None and feeder.native_id is not None
        logger.log_rows(request(records, outputs))  # warm: the worker's first insert, its imports done
        assert logger.flush(timeout=120)
        written_before = logger.written
        worker_before, feeder_before = cpu_ns(worker_pid), cpu_ns(os.getpid(), feeder.native_id)
        started = time.perf_counter()
        for k in range(frames):
            logger.log_rows(request(records, outputs, by_column))
            time.sleep(max(0.0, started + (k + 1) * interval_s - time.perf_counter()))
        assert logger.flush(timeout=600)
        wall = time.perf_counter() - started
        worker_cpu = cpu_ns(worker_pid) - worker_before
        feeder_cpu = cpu_ns(os.getpid(), feeder.native_id) - feeder_before
        written = logger.written - written_before
        if written != frames * FRAME_ROWS or logger.dropped:
            raise SystemExit(f"logged {written} of {frames * FRAME_ROWS} rows, {logger.dropped} dropped")
    finally:
        logger.close()
    return {
        "worker_us": worker_cpu / 1000 / written,
        "feeder_us": feeder_cpu / 1000 / written,
        "wall_s": wall,
    }


def served_model(workdir: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The batch benchmark's model (trained on generated churn rows, published and loaded through
    the checked loader, as the server serves it) and 1000 of its request records."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from serving_bench import bench_settings, prepare

    from gitops_ml.registry.pointer import read_pointer
    from gitops_ml.registry.production import load_pointed_model
    from gitops_ml.serving.model_holder import serve_model

    _, records, _ = prepare(workdir, 5000)
    pointer = read_pointer(workdir / "production.yaml")
    assert pointer is not None
    served = serve_model(load_pointed_model(pointer, workdir / "cache"), bench_settings(workdir))
    return served, records[:FRAME_ROWS]


def bare_predict_us(served: Any, records: list[dict[str, Any]]) -> float:
    """CPU of a bare 1000-row `predict` of the served model per record (the reference)."""
    from threadpoolctl import threadpool_limits

    times = []
    with threadpool_limits(limits=1):
        for _ in range(20):
            started = time.thread_time_ns()
            served.predict(records)
            times.append(time.thread_time_ns() - started)
    return statistics.median(times) / 1000 / len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=300, help="1000-row requests per run")
    parser.add_argument("--prefill", type=int, default=300_000, help="rows already in the store")
    parser.add_argument("--repeats", type=int, default=3, help="runs per input shape")
    parser.add_argument("--interval-ms", type=float, default=30.0, help="one request every this many ms")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="log-worker-bench-") as tmp:
        workdir = Path(tmp)
        served, records = served_model(workdir)
        bare = bare_predict_us(served, records)
        # the answers as served and logged; both as JSON, parsed again for each request
        records, outputs = orjson.dumps(records), orjson.dumps(list(served.predict(records)))
        url = f"sqlite:///{workdir / 'predictions.db'}"
        started = time.perf_counter()
        prefill(url, args.prefill, records, outputs)
        print(f"prefilled {args.prefill:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs: dict[str, list[dict[str, float]]] = {shape: [] for shape in SHAPES}
        for k in range(args.repeats):
            for shape, by_column in SHAPES.items():  # alternated, so both see the same machine
                result = run_once(
                    url, workdir, args.frames, args.interval_ms / 1000, records, outputs, by_column
                )
                print(
                    f"run {k + 1} ({shape}): worker {result['worker_us']:.2f} us/record, "
                    f"feeder {result['feeder_us']:.2f} us/record, {result['wall_s']:.1f} s",
                    file=sys.stderr,
                )
                runs[shape].append(result)
        size_mb = (workdir / "predictions.db").stat().st_size / 1e6
    load_after = os.getloadavg()
    print(
        f"\n## Log worker benchmark ({os.cpu_count()} cores; load average before "
        f"{load_before[0]:.2f} / after {load_after[0]:.2f})\n\n"
        f"{args.repeats} runs x {args.frames} frames of {FRAME_ROWS} rows per input shape into SQLite, "
        f"{args.prefill:,} rows before the first run ({size_mb:.0f} MB after the last); median of the runs. "
        f"Bare predict of the served model, 1000-row calls, thread CPU (the reference): {bare:.2f} us per record.\n"
    )
    print(
        "| inputs | log worker process CPU (all threads) | feeder thread CPU, in the server | (worker + feeder) / bare predict |"
    )
    print("|---|---|---|---|")
    for shape, results in runs.items():
        worker = statistics.median(r["worker_us"] for r in results)
        feeder = statistics.median(r["feeder_us"] for r in results)
        print(
            f"| {shape} | {worker:.2f} us/record | {feeder:.2f} us/record | {(worker + feeder) / bare:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
