"""Where does handing a model call to a predict thread start to pay? (scheduler.INLINE_MAX_ROWS)

In process, no HTTP: `--clients` coroutines each send n-row requests through the request path's
CPU work (orjson parse, the request model's validation, the scheduler, orjson encode) for the
served model of serving_bench.py (HGB, 200 iterations). Each size is run with every call inline
(on the event loop) and with every call in the predict threads, alternating; the ratio
thread / inline is what the threshold is chosen from.

    .venv/bin/python benchmarks/inline_threshold_bench.py [--sizes 16 32 64 128 256 512 1000] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from serving_bench import cycled, prepare  # noqa: E402


async def _rate(served: object, bodies: list[bytes], clients: int, inline_max: int, seconds: float) -> float:
    from gitops_ml.serving.body import parse_body
    from gitops_ml.serving.routes import validate_records
    from gitops_ml.serving.scheduler import PredictionScheduler

    scheduler = PredictionScheduler(inline_max_rows=inline_max)
    scheduler.start()
    rows = [0]
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            records, is_batch = parse_body(bodies[i % len(bodies)], 10_000)
            _, inputs = validate_records(served, records, is_batch)  # type: ignore[arg-type]
            outputs = await scheduler.predict(served, inputs)  # type: ignore[arg-type]
            orjson.dumps(outputs)
            rows[0] += len(outputs)
            i += 1
            await asyncio.sleep(0)  # a request's own awaits (body, send) give the others a turn

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    await scheduler.stop()
    return rows[0] / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512, 1000])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from serving_bench import bench_settings
    from threadpoolctl import threadpool_limits

    from gitops_ml.registry.pointer import read_pointer
    from gitops_ml.registry.production import load_pointed_model
    from gitops_ml.serving.model_holder import serve_model

    workdir = Path(tempfile.mkdtemp(prefix="inline-threshold-"))
    _, records, _ = prepare(workdir, 2000)
    with threadpool_limits(limits=1):
        pointer = read_pointer(workdir / "production.yaml")
        assert pointer is not None
        served = serve_model(load_pointed_model(pointer, workdir / "cache"), bench_settings(workdir))
        print("| rows per request | inline records/s | thread records/s | thread / inline |")
        print("|---|---|---|---|")
        for size in args.sizes:
            pool = cycled(records, size)
            bodies = [
                orjson.dumps({"records": pool[i : i + size]}) for i in range(0, len(pool) - size, size)
            ][:50]
            inline = thread = 0.0
            for _ in range(args.rounds):
                inline += asyncio.run(_rate(served, bodies, args.clients, 10**9, args.seconds))
                thread += asyncio.run(_rate(served, bodies, args.clients, 0, args.seconds))
            print(
                f"| {size} | {inline / args.rounds:,.0f} | {thread / args.rounds:,.0f} | {thread / inline:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
