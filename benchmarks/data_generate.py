"""Generator and acquisition throughput: rows/s at 1M rows (not a test; numbers for docs/benchmarks.md).

Cases, each the median of `--repeats` runs in this process (after one warm-up at 10k rows):
- generate_month: one 1M-row monthly batch (the whole data-generating process, vectorised)
- generate_records: 1M rows spread over 28 days (traffic simulation; adds a sort and per-row drift)
- write CSV: `DataFrame.to_csv` of that batch, as `gitops-ml data generate` writes it
- acquire: sha256 + UTF-8 check + pandas parse + truncation check of the 1M-row CSV via a manifest

    .venv/bin/python benchmarks/data_generate.py [--rows 1000000] [--repeats 3] [--out benchmarks/results/data_generate.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitops_ml.data.acquire import acquire
from gitops_ml.data.generator import COVARIATE_DRIFT, generate_month, generate_records
from gitops_ml.data.manifest import write_batches


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n = args.rows

    generate_month("2026-01", 10_000, seed=0)  # warm-up: imports, first-call allocations
    batch = generate_month("2026-01", n, seed=1)
    cases: list[tuple[str, float]] = [
        (
            "generate_month (stable)",
            _median_seconds(lambda: generate_month("2026-01", n, seed=1), args.repeats),
        ),
        (
            "generate_month (covariate drift)",
            _median_seconds(
                lambda: generate_month("2026-01", n, seed=1, scenario=COVARIATE_DRIFT), args.repeats
            ),
        ),
        (
            "generate_records (28 days)",
            _median_seconds(
                lambda: generate_records(n, seed=1, start_time="2026-07-01", end_time="2026-07-29"),
                args.repeats,
            ),
        ),
        (
            "write CSV (to_csv)",
            _median_seconds(lambda: batch.to_csv(index=False, lineterminator="\n"), args.repeats),
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        write_batches(tmp, {"big": batch}, time_column="snapshot_date")
        size_mb = (Path(tmp) / "batches/big.csv").stat().st_size / 1e6
        cases.append(
            (
                "acquire (verify + parse CSV)",
                _median_seconds(lambda: acquire(Path(tmp) / "manifest.yaml"), args.repeats),
            )
        )

    load = os.getloadavg()
    lines = [
        f"## Data generation and acquisition, {n:,} rows",
        "",
        (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; median of {args.repeats}; "
            f"CSV {size_mb:.0f} MB"
        ),
        "",
        "| case | seconds | rows/s |",
        "|---|---:|---:|",
        *[f"| {name} | {sec:.2f} | {n / sec:,.0f} |" for name, sec in cases],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
