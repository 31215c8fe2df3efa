"""Drift benchmark: 1M reference + 1M current rows x 20 columns (12 numeric, 8 categorical).

The table (`make_table`, same seeds) is the one the idle reference figures in docs/benchmarks.md
were measured on (numpy/scipy baseline 3.9 s; deepchecks FeatureDrift 5.7-38 s; evidently
21-68 s), so the numbers compare. Times `build_reference` and `compute_drift` (1 warm-up, median of 3)
and the process's peak RSS, and prints one markdown row per case.

    .venv/bin/python benchmarks/drift_bench.py [--rows 1000000] [--repeats 3] [--deepchecks]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.config import DriftThresholds
from gitops_ml.monitoring.drift import build_reference, compute_drift

NUM_COLS = [f"num_{i:02d}" for i in range(12)]
CAT_LEVELS = {f"cat_{i:02d}": k for i, k in enumerate([3, 5, 7, 10, 12, 15, 18, 20])}
CAT_COLS = list(CAT_LEVELS)
DRIFT_NUM = ["num_00", "num_03", "num_04", "num_08"]  # mean-shifted in `current`
DRIFT_CAT = ["cat_01", "cat_05"]  # level frequencies changed in `current`


def make_table(n: int, drift: bool, rng: np.random.Generator) -> pd.DataFrame:
    """The reference figures' table: small, realistic shifts in 6 of 20 columns when drift=True."""
    d = 1.0 if drift else 0.0
    c: dict[str, Any] = {
        "num_00": rng.normal(50 + 2 * d, 10, n),
        "num_01": rng.lognormal(3, 0.5, n),
        "num_02": rng.exponential(2.0, n),
        "num_03": rng.uniform(0 + 5 * d, 100 + 5 * d, n),
        "num_04": rng.gamma(2.0, 3.0 + 0.3 * d, n),
        "num_05": rng.beta(2, 5, n) * 100,
        "num_06": rng.standard_t(5, n),
        "num_07": rng.poisson(4, n).astype("float64"),
    }
    mix = rng.random(n) < 0.4
    c["num_08"] = np.where(mix, rng.normal(-2, 1, n), rng.normal(3, 0.5, n)) + 0.3 * d
    c["num_09"] = np.round(rng.normal(0, 1, n), 2)
    c["num_10"] = rng.pareto(3.0, n) + 1
    c["num_11"] = rng.weibull(1.5, n) * 10
    for col, k in CAT_LEVELS.items():
        p = 1 / np.arange(1, k + 1) ** 0.7
        p /= p.sum()
        if drift and col in DRIFT_CAT:
            p = 0.5 * p + 0.5 * p[::-1]
        codes = rng.choice(k, size=n, p=p)
        c[col] = np.array([f"{col}_L{j:02d}" for j in range(k)], dtype=object)[codes]
    return pd.DataFrame(c)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    fn()  # warm-up: imports, caches
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def row(case: str, rows: int, times: list[float], note: str) -> str:
    return (
        f"| {case} | {rows:,} | {len(times)} | {min(times):.2f} | {statistics.median(times):.2f} | "
        f"{max(times):.2f} | {peak_rss_mb():,.0f} | {note} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each of reference and current")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deepchecks", action="store_true", help="also time deepchecks FeatureDrift (slow)")
    args = parser.parse_args()

    ref_ss, cur_ss, _ = np.random.SeedSequence(0).spawn(3)
    t = time.perf_counter()
    ref = make_table(args.rows, drift=False, rng=np.random.default_rng(ref_ss))
    cur = make_table(args.rows, drift=True, rng=np.random.default_rng(cur_ss))
    print(
        f"generated 2 x {args.rows:,} rows x 20 columns in {time.perf_counter() - t:.1f} s; "
        f"RSS after load {peak_rss_mb():,.0f} MB\n"
    )

    lines = [
        "| case | rows per side | n | min s | median s | max s | peak RSS MB | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    times, profile = measure(lambda: build_reference(ref, NUM_COLS, CAT_COLS, bins=10), args.repeats)
    lines.append(row("gitops-ml build_reference", args.rows, times, "10 bins, 10k-point KS sketch"))
    thresholds = DriftThresholds()
    times, result = measure(lambda: compute_drift(profile, cur, thresholds), args.repeats)
    expected = sorted(DRIFT_NUM + DRIFT_CAT)
    top6 = sorted(f.feature for f in sorted(result.features, key=lambda f: -f.effect)[:6])
    lines.append(
        row(
            "gitops-ml compute_drift",
            args.rows,
            times,
            f"flagged {result.drifted_features or 'none'}; top-6 by effect == shifted: {top6 == expected}",
        )
    )

    if args.deepchecks:
        import warnings

        warnings.filterwarnings("ignore")
        from deepchecks.tabular import Dataset
        from deepchecks.tabular.checks import FeatureDrift

        def run_deepchecks() -> Any:
            check = FeatureDrift(
                numerical_drift_method="KS", categorical_drift_method="cramers_v", n_samples=args.rows
            )
            return check.run(
                Dataset(ref, cat_features=CAT_COLS), Dataset(cur, cat_features=CAT_COLS), with_display=False
            )

        times, dc = measure(run_deepchecks, args.repeats)
        scores = {c: float(v["Drift score"]) for c, v in dc.value.items()}
        dc_top6 = sorted(sorted(scores, key=scores.get, reverse=True)[:6])
        lines.append(
            row(
                "deepchecks FeatureDrift (n_samples=all, no display)",
                args.rows,
                times,
                f"top-6 by drift score == shifted: {dc_top6 == expected}",
            )
        )

    print("\n".join(lines))
    print("\nper feature (gitops-ml): feature | PSI | KS/chi2 p | effect | drifted")
    for f in result.features:
        print(f"  {f.feature} | {f.psi:.4f} | {f.pvalue:.2g} | {f.effect:.4f} | {f.drifted}")


if __name__ == "__main__":
    main()
