"""The trusted PR-comment builder on hostile report.md: 2 MiB of markdown meant to be slow.

Run: .venv/bin/python benchmarks/comment_bench.py [--mib 2] [--repeats 3]
Prints, per hostile pattern, the median wall seconds of `ci_artifacts.comment_markdown` on
`--mib` MiB of it; and, as the reference measured in the same run, the image regex the builder
used before (a quadratic scan), on growing inputs of `![` (doubling the input ~quadruples its time,
so 2 MiB is not attempted: it would take hours).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

from gitops_ml import ci_artifacts as ca

PATTERNS = ["![", "![](", '![](x "', "![a](b", "[![", "@a", "![a](b.png)", "![a](" + "p" * 1999 + ")", "x"]
OLD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = int(args.mib * 1024 * 1024)
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f}\n")
    print(f"| pattern (repeated to {args.mib:g} MiB) | comment_markdown s | comment chars |")
    print("|---|---:|---:|")
    for unit in PATTERNS:
        text = (unit * (size // len(unit) + 1))[:size]
        seconds = _median(
            lambda text=text: ca.comment_markdown(
                text, conclusion="success", head_sha="a" * 40, run_url="https://example.com/run", header=True
            ),
            args.repeats,
        )
        comment = ca.comment_markdown(text)
        shown = unit if len(unit) < 20 else unit[:8] + f"…({len(unit)} chars)"
        print(f"| `{shown}` | {seconds:.3f} | {len(comment):,} |")
    print("\nReference: the previous image regex alone, on `![` repeated\n")
    print("| input chars | old regex s | ratio to the previous row |")
    print("|---:|---:|---:|")
    previous = None
    for n in (10_000, 20_000, 40_000, 80_000):
        text = "![" * (n // 2)
        seconds = _median(lambda text=text: OLD_IMAGE.sub("", text), 1)
        ratio = f"{seconds / previous:.1f}x" if previous else "-"
        print(f"| {n:,} | {seconds:.3f} | {ratio} |")
        previous = seconds
    print(f"\nload average (1 min) at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
