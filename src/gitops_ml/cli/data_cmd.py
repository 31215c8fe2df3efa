"""`gitops-ml data generate|manifest-add|verify`: the bundled dataset and its manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.errors import DataError

DEFAULT_SEED = 2026
SCENARIO_NAMES = ("stable", "covariate-drift", "concept-drift")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Generate the bundled churn data, list batches in the manifest, verify them.",
        no_args_is_help=True,
    )

    @group.command("generate")
    def generate(
        out: Path = typer.Option(Path("data"), "--out", help="folder for manifest.yaml and batches/"),
        months: int = typer.Option(6, "--months", min=1, max=120),
        rows: int = typer.Option(5000, "--rows", min=1, help="rows per monthly batch"),
        start: str = typer.Option("2026-01", "--start", help="first month, YYYY-MM"),
        seed: int = typer.Option(DEFAULT_SEED, "--seed"),
        scenario: str = typer.Option("stable", "--scenario", help=" | ".join(SCENARIO_NAMES)),
        onset: str | None = typer.Option(
            None, "--onset", help="drift onset month YYYY-MM (default: from the start)"
        ),
        ramp_months: float = typer.Option(
            0.0, "--ramp-months", min=0, help="months for drift to reach full strength"
        ),
    ) -> None:
        """Write monthly churn batches (CSV) and a manifest; the same options give byte-identical files."""
        from gitops_ml.data.generator import TIME_COLUMN, generate_batches, month_range, scenario_by_name
        from gitops_ml.data.manifest import write_batches

        try:
            chosen = scenario_by_name(scenario)
            if onset is not None or ramp_months:
                chosen = chosen.with_onset(onset, ramp_months)
            names = [f"churn-{m}" for m in month_range(start, months)]
            frames = generate_batches(start, months, rows, seed, chosen)
        except ValueError as exc:
            raise DataError(f"data generate: {exc}") from exc
        command = (
            f"gitops-ml data generate --months {months} --rows {rows} --start {start} --seed {seed} "
            f"--scenario {chosen.name}"
        )
        if onset is not None:
            command += f" --onset {onset}"
        if ramp_months:
            command += f" --ramp-months {ramp_months:g}"
        manifest = write_batches(
            out,
            dict(zip(names, frames, strict=True)),
            time_column=TIME_COLUMN,
            description=f"Synthetic churn data. Regenerate: {command}",
        )
        total = sum(b.rows or 0 for b in manifest.batches)
        typer.echo(f"wrote {len(manifest.batches)} batches ({total} rows) and {out / 'manifest.yaml'}")

    @group.command("manifest-add")
    def manifest_add(
        file: str = typer.Argument(..., help="CSV or Parquet file (path or fsspec URL)"),
        manifest: Path | None = typer.Option(None, "--manifest", help="default: dataset.manifest in config"),
        name: str | None = typer.Option(
            None, "--name", help="batch name (default: file name without suffix)"
        ),
        time_column: str | None = typer.Option(
            None, "--time-column", help="default: dataset.time_column in config; '' to record no time range"
        ),
        config_dir: Path = ConfigDirOption,
    ) -> None:
        """Append a batch to the manifest with its sha256, row count and time range."""
        from gitops_ml.data.add_batch import add_batch

        manifest, column = _defaults(config_dir, manifest, time_column)
        entry = add_batch(manifest, file, name=name, time_column=column)
        span = f", {entry.time_range.start}..{entry.time_range.end}" if entry.time_range else ""
        typer.echo(f"added '{entry.name}' ({entry.rows} rows{span}, sha256 {entry.sha256}) to {manifest}")

    @group.command("verify")
    def verify(
        manifest: Path | None = typer.Option(None, "--manifest", help="default: dataset.manifest in config"),
        time_column: str | None = typer.Option(
            None, "--time-column", help="default: dataset.time_column in config; '' to skip time checks"
        ),
        config_dir: Path = ConfigDirOption,
    ) -> None:
        """Read every batch, check sha256 and readability; print one line per batch and the manifest hash."""
        from gitops_ml.data.acquire import acquire
        from gitops_ml.jobs.config_check import load_checked_settings

        manifest, column = _defaults(config_dir, manifest, time_column)
        # the configured URL prefixes a batch may name (none without a config: repository files only)
        prefixes = (
            load_checked_settings(config_dir).dataset.allowed_uri_prefixes
            if Path(config_dir).is_dir()
            else []
        )
        data = acquire(manifest, time_column=column, allowed_uri_prefixes=prefixes)
        for batch in data.batches:
            typer.echo(f"ok  {batch.name}  {batch.rows} rows  {batch.sha256[:12]}  {batch.source}")
        typer.echo(f"{data.rows} rows, {len(data.frame.columns)} columns; manifest hash {data.manifest_hash}")

    app.add_typer(group, name="data")


def _defaults(config_dir: Path, manifest: Path | None, time_column: str | None) -> tuple[Path, str | None]:
    """The manifest and time column: the options when given, else the configured dataset's."""
    if manifest is not None and time_column is not None:
        return manifest, time_column or None
    from gitops_ml.jobs.config_check import load_checked_settings

    dataset = load_checked_settings(config_dir).dataset
    column = dataset.time_column if time_column is None else (time_column or None)
    return manifest or dataset.manifest, column
