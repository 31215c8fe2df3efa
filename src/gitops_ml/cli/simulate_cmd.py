"""`gitops-ml simulate`: send generated traffic (and later labels) to the serving API."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        scenario: str = typer.Option("stable", "--scenario", help="stable | covariate-drift | concept-drift"),
        url: str = typer.Option("http://127.0.0.1:8000", "--url", help="base URL of `gitops-ml serve`"),
        rows: int = typer.Option(2000, "--rows", min=1, help="records to send"),
        batch_size: int = typer.Option(50, "--batch-size", min=1, help="records per /predict request"),
        label_delay: float = typer.Option(1.0, "--label-delay", min=0, help="seconds before labels arrive"),
        label_fraction: float = typer.Option(1.0, "--label-fraction", min=0, max=1, help="share of rows labelled"),
        seed: int = typer.Option(0, "--seed", help="traffic seed"),
        id_offset: int = typer.Option(None, "--id-offset", help="first customer id (default: 5,000,000 + seed x 100,000)"),
        date_from: str = typer.Option(None, "--from", help="first business date of the records (default: a day ago)"),
        date_to: str = typer.Option(None, "--to", help="end of the records' business dates (default: now)"),
    ) -> None:
        """Generated churn traffic for a scenario; labels follow after a delay (late-arriving labels)."""
        from rich.progress import Progress

        from gitops_ml.data.generator import scenario_by_name
        from gitops_ml.serving.simulator import DEFAULT_ID_OFFSET, run_simulation, simulated_records

        try:
            scenario_by_name(scenario)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scenario") from None
        offset = id_offset if id_offset is not None else DEFAULT_ID_OFFSET + seed * 100_000
        frame = simulated_records(rows, scenario, seed=seed, id_offset=offset, start_time=date_from,
                                  end_time=date_to)
        with Progress(transient=True) as bar:
            task = bar.add_task(f"{scenario} traffic", total=rows)
            result = run_simulation(url, frame, batch_size=batch_size, label_delay_s=label_delay,
                                    label_fraction=label_fraction, seed=seed,
                                    progress=lambda n: bar.advance(task, n))
        typer.echo(f"{scenario}: sent {result.sent}, predicted {result.predicted}, labelled {result.labelled}, "
                   f"errors {result.errors} in {result.seconds:.1f}s")
        if result.errors:
            raise typer.Exit(1)
