"""`gitops-ml simulate`: send generated traffic (and later labels) to the serving API."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        scenario: str = typer.Option(
            "stable", "--scenario", help="stable | covariate-drift | concept-drift | covariate-decay"
        ),
        url: str = typer.Option("http://127.0.0.1:8000", "--url", help="base URL of `gitops-ml serve`"),
        rows: int = typer.Option(2000, "--rows", min=1, help="records to send"),
        batch_size: int = typer.Option(50, "--batch-size", min=1, help="records per /predict request"),
        label_delay: float = typer.Option(1.0, "--label-delay", min=0, help="seconds before labels arrive"),
        label_fraction: float = typer.Option(
            1.0, "--label-fraction", min=0, max=1, help="share of rows labelled"
        ),
        seed: int = typer.Option(0, "--seed", help="traffic seed"),
        id_offset: int = typer.Option(
            None, "--id-offset", help="first customer id (default: 5,000,000 + seed x 100,000)"
        ),
        date_from: str = typer.Option(
            None, "--from", help="first business date of the records (default: a day ago)"
        ),
        date_to: str = typer.Option(None, "--to", help="end of the records' business dates (default: now)"),
        config_dir: Path = ConfigDirOption,
    ) -> None:
        """Traffic for the configured dataset and a scenario; labels follow after a delay (late labels).

        The bundled churn example's records are generated; any other dataset's are resampled from
        its reference data (the batches in the manifest).
        """
        from rich.progress import Progress

        from gitops_ml.contracts.model import load_contract
        from gitops_ml.data.generator import COLUMNS, scenario_by_name
        from gitops_ml.jobs.config_check import load_checked_settings
        from gitops_ml.serving.simulator import (
            DEFAULT_ID_OFFSET,
            reference_records,
            run_simulation,
            simulated_records,
        )

        try:
            scenario_by_name(scenario)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scenario") from None
        settings = load_checked_settings(config_dir)
        dataset = settings.dataset
        request_ids = None
        if tuple(load_contract(dataset.contract).column_names) == tuple(COLUMNS):
            offset = id_offset if id_offset is not None else DEFAULT_ID_OFFSET + seed * 100_000
            frame = simulated_records(
                rows, scenario, seed=seed, id_offset=offset, start_time=date_from, end_time=date_to
            )
        else:
            from gitops_ml.data.acquire import acquire

            reference = acquire(dataset.manifest, time_column=dataset.time_column).frame
            frame = reference_records(
                reference,
                rows,
                scenario,
                target=dataset.target,
                seed=seed,
                numeric=settings.features.numeric,
                id_column=dataset.id_column,
                time_column=dataset.time_column,
                start_time=date_from,
                end_time=date_to,
            )
            request_ids = [f"sim-{seed}-{i}" for i in range(len(frame))]
        with Progress(transient=True) as bar:
            task = bar.add_task(f"{scenario} traffic", total=rows)
            result = run_simulation(
                url,
                frame,
                target=dataset.target,
                batch_size=batch_size,
                label_delay_s=label_delay,
                label_fraction=label_fraction,
                seed=seed,
                progress=lambda n: bar.advance(task, n),
                request_ids=request_ids,
            )
        typer.echo(
            f"{scenario}: sent {result.sent}, predicted {result.predicted}, labelled {result.labelled}, "
            f"errors {result.errors} in {result.seconds:.1f}s"
        )
        if result.errors:
            raise typer.Exit(1)
