"""`make demo`: the lifecycle on the bundled data, in one process (one Prefect server start).

Runs what exists, step by step, and ends with a summary of each step and where its output is.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class StepResult:
    name: str
    exit_code: int
    seconds: float
    output: str


def _run_cli(args: list[str]) -> int:
    from gitops_ml.cli import main

    return main(args)


def _step(name: str, output: str, fn: Callable[[], int], results: list[StepResult]) -> int:
    print(f"\n=== {name} ===", flush=True)
    start = time.perf_counter()
    code = fn()
    results.append(StepResult(name, code, time.perf_counter() - start, output))
    return code


def main() -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    results: list[StepResult] = []
    _step("validate (acquire -> contract -> data integrity)", "reports/validation/summary.json",
          lambda: _run_cli(["validate"]), results)
    print("\n=== summary ===")
    for r in results:
        status = "ok" if r.exit_code == 0 else f"exit {r.exit_code}"
        print(f"  {r.name:<55} {status:<8} {r.seconds:6.1f}s  {r.output}")
    return 0 if all(r.exit_code == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
