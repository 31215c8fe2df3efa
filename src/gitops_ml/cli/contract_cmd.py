"""`gitops-ml contract diff|check`: compare two contract versions, validate one data file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.errors import DataError, GatesFailed

if TYPE_CHECKING:
    import pandas as pd

    from gitops_ml.contracts.model import Contract


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Data contract: diff two versions, check a data file.", no_args_is_help=True)

    @group.command("diff")
    def diff(
        old: str = typer.Argument(..., help="old contract: a file, or REF:PATH to read it from git"),
        new: str = typer.Argument(..., help="new contract: a file, or REF:PATH"),
        fmt: str = typer.Option("text", "--format", help="text, markdown or json"),
        fail_on_breaking: bool = typer.Option(False, "--fail-on-breaking", help="exit 1 on breaking changes"),
        repo_dir: Path = typer.Option(Path("."), "--repo-dir", help="git repository for REF:PATH arguments"),
    ) -> None:
        """Classify every change between two contract versions as breaking or non-breaking."""
        from gitops_ml.contracts.diff import diff_contracts

        if fmt not in ("text", "markdown", "json"):
            raise typer.BadParameter("expected text, markdown or json", param_hint="--format")
        old_contract = _load(old, repo_dir)
        new_contract = _load(new, repo_dir)
        if new_contract is None:
            raise DataError(f"{new}: contract not found")
        if old_contract is None:
            typer.echo(f"{old}: no contract there; everything in {new} is new")
            return
        result = diff_contracts(old_contract, new_contract)
        rendered = {"text": result.to_text, "markdown": result.to_markdown, "json": result.to_json}[fmt]()
        typer.echo(rendered)
        if fail_on_breaking and result.has_breaking:
            # a verdict, not bad input: exit 1 like failed gates (typer.Exit's code is lost by main())
            raise GatesFailed(f"{len(result.breaking)} breaking contract change(s) from {old} to {new}")

    @group.command("check")
    def check(
        datafile: Path = typer.Argument(..., help="CSV or Parquet file to validate"),
        contract: Path | None = typer.Option(None, "--contract", help="contract file (default: from config)"),
        config_dir: Path = ConfigDirOption,
        fmt: str = typer.Option("text", "--format", help="text, markdown or json"),
    ) -> None:
        """Validate one data file against the contract; exit 2 and print the failures when it breaks it."""
        import json

        from gitops_ml.contracts.model import load_contract
        from gitops_ml.contracts.validate import ensure_valid, validate_frame

        if contract is None:
            from gitops_ml.config import load_settings

            contract = load_settings(config_dir).dataset.contract
        spec = load_contract(contract)
        report = validate_frame(read_table(datafile), spec, source=str(datafile))
        if fmt == "json":
            typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        elif fmt == "markdown":
            typer.echo(report.to_markdown())
        else:
            typer.echo(report.summary_table())
        ensure_valid(report)

    app.add_typer(group, name="contract")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is, without type conversion beyond what the format carries.

    Values are left for the validator to judge (a bad value must be reported, not fail the read).
    """
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if suffix.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, low_memory=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    raise DataError(f"{path}: unknown format {suffix!r} (expected .csv, .csv.gz or .parquet)")


def _load(spec: str, repo_dir: Path) -> Contract | None:
    """A file path, or `REF:PATH` read from git (None when the file does not exist at REF)."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.jobs.contract_diff import load_contract_at_ref

    if Path(spec).exists() or ":" not in spec:
        return load_contract(spec)
    ref, _, path = spec.partition(":")
    return load_contract_at_ref(path, ref, repo_dir)
