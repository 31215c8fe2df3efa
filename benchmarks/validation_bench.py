"""Which engine validates a batch against the contract: ours vs pandera vs `datacontract test`.

Same contract (data_contracts/churn.odcs.yaml), same synthetic 1M-row frame (the project's churn generator,
gitops_ml.data.generator), same rules: types, required, ranges, pattern, allowed values, uniqueness,
extra columns, row count. Not run as a test. pandera is installed for this benchmark only
(`uv pip install pandera`); it is not a project dependency.

    .venv/bin/python benchmarks/validation_bench.py [--rows 1000000] [--repeat 3] [--skip pandera,datacontract]

Prints wall and CPU seconds (median of --repeat, after one untimed warm-up run) and rows/s.
CPU seconds of datacontract include DuckDB's worker threads. The machine is shared, so the load
average is printed too: compare engines within one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gitops_ml.contracts.model import Contract, load_contract
from gitops_ml.contracts.validate import invalid_row_mask, validate_frame
from gitops_ml.data.generator import generate_month

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "data_contracts" / "churn.odcs.yaml"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def pandera_schema(contract: Contract) -> Any:
    """The contract's rules expressed in pandera (what a pandera-based validator would compile to)."""
    import pandera.pandas as pa

    dtypes = {"integer": "Int64", "number": "float64", "string": "str", "date": "datetime64[ns]"}
    columns = {}
    for col in contract.columns:
        checks = []
        if col.minimum is not None and col.maximum is not None:
            checks.append(pa.Check.in_range(col.minimum, col.maximum))
        if col.pattern is not None:
            checks.append(pa.Check.str_matches(col.pattern))
        if col.valid_values is not None:
            checks.append(pa.Check.isin(list(col.valid_values)))
        for rule in col.quality:
            if rule.metric == "invalidValues" and rule.pattern is not None:
                checks.append(pa.Check(lambda s: s.dt.day == 1, name="first_of_month"))
            if rule.metric == "nullValues":
                checks.append(pa.Check(lambda s: s.isna().mean() < 0.10, raise_warning=True, name="null_pct"))
        columns[col.name] = pa.Column(
            dtypes[col.logical_type],
            checks=checks,
            nullable=col.nullable,
            unique=col.must_be_unique,
            coerce=True,  # text dates and object numbers are parsed, as our validator does
        )
    return pa.DataFrameSchema(
        columns,
        strict=contract.additional_columns == "forbid",
        unique=["customer_id", "snapshot_date"],
        checks=[pa.Check(lambda df: len(df) > 0, name="row_count")],
    )


def run_pandera(schema: Any, df: pd.DataFrame) -> bool:
    import pandera.errors

    try:
        schema.validate(df, lazy=True)
        return True
    except pandera.errors.SchemaErrors:
        return False


def datacontract_setup(typed: pd.DataFrame, tmp: Path) -> Path:
    """Parquet file + a copy of the contract with a local DuckDB server pointing at it."""
    data = tmp / "churn.parquet"
    typed.to_parquet(data, index=False)
    spec = yaml.safe_load(CONTRACT.read_text())
    spec["servers"] = [{"server": "local", "type": "local", "path": str(data), "format": "parquet"}]
    path = tmp / "churn.odcs.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_datacontract(path: Path) -> tuple[str, int]:
    from datacontract.data_contract import DataContract

    run = DataContract(data_contract_file=str(path), server="local").test()
    return str(run.result), len(run.checks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated: pandera,datacontract")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    n = args.rows
    contract = load_contract(CONTRACT)

    print(f"rows={n:,} columns={len(contract.columns)} repeat={args.repeat} cores={os.cpu_count()} "
          f"load average before={os.getloadavg()[0]:.1f}")  # fmt: skip
    text = generate_month("2026-01", n, seed=0)  # as read from CSV: dates are ISO strings
    typed = text.astype(
        {"signup_date": "datetime64[ns]", "snapshot_date": "datetime64[ns]"}
    )  # as from Parquet
    bad = text.copy()
    bad.loc[::100, "plan"] = "gold"  # 1% failing rows: the failure path must stay vectorised
    bad.loc[::250, "customer_id"] = "CUST-1"

    rows: list[tuple[str, float, float, str]] = []

    def record(
        label: str, fn: Callable[[], Any], verdict: Callable[[Any], str], repeat: int = args.repeat
    ) -> None:
        fn()  # warm-up, untimed: imports and first-call caches are not what we compare
        wall, cpu, out = timed(fn, repeat)
        rows.append((label, wall, cpu, verdict(out)))
        print(
            f"  {label}: wall {wall:.3f} s, cpu {cpu:.3f} s, {n / wall:,.0f} rows/s  [{verdict(out)}]",
            flush=True,
        )

    def passed(r: Any) -> str:
        return f"passed={r.passed}, rules={len(r.rules)}"

    record("ours, CSV-like (text dates)", lambda: validate_frame(text, contract), passed)
    record("ours, Parquet-like (typed)", lambda: validate_frame(typed, contract), passed)
    record("ours, 1% bad rows", lambda: validate_frame(bad, contract), passed)
    record(
        "ours, invalid_row_mask",
        lambda: invalid_row_mask(bad, contract),
        lambda m: f"bad rows={int(m.sum())}",
    )

    if "pandera" not in skip:
        try:
            schema = pandera_schema(contract)
        except ImportError:
            print("  pandera not installed: uv pip install pandera (benchmark only)")
        else:
            record("pandera lazy, CSV-like", lambda: run_pandera(schema, text), lambda ok: f"passed={ok}")
            record(
                "pandera lazy, Parquet-like", lambda: run_pandera(schema, typed), lambda ok: f"passed={ok}"
            )

    if "datacontract" not in skip:
        try:
            import datacontract  # noqa: F401
        except ImportError:
            print("  datacontract-cli not installed (dev dependency)")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = datacontract_setup(typed, Path(tmp))
                record(
                    "datacontract test (DuckDB, Parquet)",
                    lambda: run_datacontract(path),
                    lambda r: f"result={r[0]}, checks={r[1]}",
                )

    print(f"\nload average after={os.getloadavg()[0]:.1f}\n")
    # on a loaded shared machine CPU seconds compare engines more fairly than wall seconds
    print("| engine | wall s | cpu s | rows/s (wall) | rows/s (cpu) | outcome |")
    print("|---|---:|---:|---:|---:|---|")
    for label, wall, cpu, verdict in rows:
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {n / wall:,.0f} | {n / cpu:,.0f} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
