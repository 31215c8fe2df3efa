"""The compiled tree walk (serving/fast_path._TreeEnsemble) against the estimator's own raw predict.

In process, one thread, on the served model of serving_bench.py (HistGradientBoosting, 200
iterations): for each batch size, the walk and scikit-learn's `_raw_predict` alternate, the best of
`--repeats` timings each. `--against REV` also times the walk of `serving/fast_path.py` as it was
at a git revision (read with `git show`), to measure a change to the walk in the same minutes.
Every walk's output is checked equal to scikit-learn's first.

    .venv/bin/python benchmarks/tree_walk_bench.py [--sizes 1 8 32 64] [--against HEAD~1]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from serving_bench import prepare  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def fast_path_at(revision: str, workdir: Path) -> Any:
    """serving/fast_path.py as it was at `revision`, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/gitops_ml/serving/fast_path.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = workdir / "fast_path_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fast_path_at_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def best_us(call: Callable[[], object], calls: int, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - started) / calls * 1e6)
    return min(timings)


def main() -> None:
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from gitops_ml.serving import fast_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--against", help="a git revision whose walk is timed too")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="tree-walk-bench-"))
    pipeline, records, _ = prepare(workdir, 3000)
    preprocessor, estimator = pipeline.steps[0][1], pipeline.steps[-1][1]
    walks = {"this tree": fast_path._compile_trees(estimator)}
    if args.against:
        walks[args.against] = fast_path_at(args.against, workdir)._compile_trees(estimator)
    X_all = np.asarray(preprocessor.transform(pd.DataFrame(records[: max(args.sizes)])), dtype=float)
    depths = [int(tree.nodes["depth"].max()) for iteration in estimator._predictors for tree in iteration]
    print(
        f"\n## Tree walk ({len(depths)} trees, deepest {max(depths)}, median depth {int(np.median(depths))}; "
        f"best of {args.repeats}, us per call)\n"
    )
    print("| rows | scikit-learn `_raw_predict` | " + " | ".join(f"walk ({name})" for name in walks) + " |")
    print("|---|---|" + "---|" * len(walks))
    with threadpool_limits(limits=1):
        for size in args.sizes:
            X = X_all[:size]
            expected = estimator._raw_predict(X)
            for name, walk in walks.items():
                got = walk.raw_predict(X)
                assert np.array_equal(got, expected if expected.shape[1] > 1 else expected[:, :1]), name
            calls = max(20, 2000 // size)
            reference = best_us(lambda X=X: estimator._raw_predict(X), calls, args.repeats)
            timed = [
                best_us(lambda walk=walk, X=X: walk.raw_predict(X), calls, args.repeats)
                for walk in walks.values()
            ]
            print(f"| {size} | {reference:,.0f} | " + " | ".join(f"{us:,.0f}" for us in timed) + " |")


if __name__ == "__main__":
    main()
