"""Paired bootstrap speed: 1000 resamples x 5,000 rows x every metric of a task, both models.

Run: .venv/bin/python benchmarks/bootstrap_bench.py [--task binary|multiclass|regression|all]
     [--rows 5000] [--resamples 1000]
Prints, per task, the median of 3 runs of `compare_models`, and for reference a plain loop of
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
from gitops_ml.evaluation.metrics import Predictions, compute_metrics, metric_names


def _models(task: str, n: int, seed: int = 0) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    if task == "regression":
        y = 100 + rng.normal(0, 10, n)
        return (
            Predictions(y, y + rng.normal(0, 3, n), None, "regression"),
            Predictions(y, y + rng.normal(0, 4, n), None, "regression"),
        )
    if task == "multiclass":
        classes = np.array(["low", "mid", "high", "top"])
        y = rng.integers(0, len(classes), n)

        def make_mc(strength: float) -> Predictions:
            logits = rng.normal(0, 1, (n, len(classes)))
            logits[np.arange(n), y] += strength
            proba = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 3)
            proba /= proba.sum(axis=1, keepdims=True)
            return Predictions(
                classes[y], classes[proba.argmax(axis=1)], proba, "multiclass", classes=classes
            )

        return make_mc(1.2), make_mc(1.0)
    y = (rng.random(n) < 0.3).astype(int)
    latent = 1.2 * y + rng.normal(0, 1, n)
    prod = np.round(1 / (1 + np.exp(-(latent - 0.5))), 3)
    cand = np.round(1 / (1 + np.exp(-(latent + rng.normal(0, 0.3, n) - 0.5))), 3)

    def make(score: np.ndarray) -> Predictions:
        return Predictions(y, (score >= 0.5).astype(int), score, "binary", positive_label=1)

    return make(cand), make(prod)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=["binary", "multiclass", "regression", "all"], default="all")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-resamples", type=int, default=20)
    args = parser.parse_args()
    for task in ["binary", "multiclass", "regression"] if args.task == "all" else [args.task]:
        _bench(task, args)


def _bench(task: str, args: argparse.Namespace) -> None:
    cand, prod = _models(task, args.rows)
    cfg = BootstrapConfig(n_resamples=args.resamples, seed=0)
    metrics = metric_names(task)
    compare_models(cand, prod, metrics, BootstrapConfig(n_resamples=50))  # warm-up (imports, caches)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        compare_models(cand, prod, metrics, cfg)
        runs.append(time.perf_counter() - start)
    print(
        f"task={task} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} rows={args.rows} "
        f"resamples={args.resamples} metrics={len(metrics)} models=2"
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
