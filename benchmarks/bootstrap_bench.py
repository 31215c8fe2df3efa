"""Paired bootstrap speed: 1000 resamples x 5,000 rows x every binary metric, both models.

Run: .venv/bin/python benchmarks/bootstrap_bench.py [--rows 5000] [--resamples 1000]
Prints the median of 3 runs of `compare_models`, and for reference a plain loop of
scikit-learn calls per resample (timed on a few resamples, extrapolated).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from gitops_ml.config import BootstrapConfig
from gitops_ml.evaluation.compare import compare_models
from gitops_ml.evaluation.metrics import TASK_METRICS, Predictions, compute_metrics


def _models(n: int, seed: int = 0) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    latent = 1.2 * y + rng.normal(0, 1, n)
    prod = np.round(1 / (1 + np.exp(-(latent - 0.5))), 3)
    cand = np.round(1 / (1 + np.exp(-(latent + rng.normal(0, 0.3, n) - 0.5))), 3)

    def make(score: np.ndarray) -> Predictions:
        return Predictions(y, (score >= 0.5).astype(int), score, "binary", positive_label=1)

    return make(cand), make(prod)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-resamples", type=int, default=20)
    args = parser.parse_args()
    cand, prod = _models(args.rows)
    cfg = BootstrapConfig(n_resamples=args.resamples, seed=0)
    metrics = list(TASK_METRICS["binary"])
    compare_models(cand, prod, metrics, BootstrapConfig(n_resamples=50))  # warm-up (imports, caches)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        compare_models(cand, prod, metrics, cfg)
        runs.append(time.perf_counter() - start)
    print(
        f"cpus={os.cpu_count()} rows={args.rows} resamples={args.resamples} metrics={len(metrics)} models=2"
    )
    print(
        f"vectorised paired bootstrap: median {statistics.median(runs):.3f} s (runs: "
        + ", ".join(f"{r:.3f}" for r in runs)
        + ")"
    )

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(args.loop_resamples):
        idx = rng.integers(0, args.rows, args.rows)
        compute_metrics(cand.subset(idx), metrics)
        compute_metrics(prod.subset(idx), metrics)
    per = (time.perf_counter() - start) / args.loop_resamples
    print(
        f"scikit-learn loop reference: {per * 1000:.1f} ms per resample -> ~{per * args.resamples:.1f} s "
        f"for {args.resamples} (extrapolated from {args.loop_resamples})"
    )


if __name__ == "__main__":
    main()
