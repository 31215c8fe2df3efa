"""`gitops-ml simulate`: send generated traffic (and later labels) to the serving API, or run a
champion/challenger scenario window after window against the prediction store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gitops_ml.cli.options import ConfigDirOption

if TYPE_CHECKING:
    import pandas as pd

    from gitops_ml.config import Settings


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        scenario: str = typer.Option(
            "stable",
            "--scenario",
            help="stable | covariate-drift | concept-drift | covariate-decay (traffic to `gitops-ml serve`); "
            "challenger-better | challenger-equal (the champion/challenger loop, window after window)",
        ),
        url: str = typer.Option("http://127.0.0.1:8000", "--url", help="base URL of `gitops-ml serve`"),
        rows: int = typer.Option(
            None,
            "--rows",
            min=1,
            help="records to send (default 2000); challenger-*: per window (default 400)",
        ),
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
        windows: int = typer.Option(
            None,
            "--windows",
            min=1,
            help="challenger-*: windows to run (default: the policy's + 2; equal: 20)",
        ),
        store_url: str = typer.Option(
            None,
            "--store-url",
            help="challenger-*: prediction store to log into (default: a new reports/simulate/<scenario>-<time>.db)",
        ),
        open_pr: bool = typer.Option(
            False, "--open-pr", help="challenger-*: open/update the promote or retire PR as the monitor would"
        ),
        config_dir: Path = ConfigDirOption,
    ) -> None:
        """Traffic for the configured dataset and a scenario; labels follow after a delay (late labels).

        The bundled churn example's records are generated; any other dataset's are resampled from
        its reference data (the batches in the manifest). The challenger-* scenarios need production
        and a challenger in deploy/ and no server: they log shadow-mode traffic with drawn scores
        (the challenger truly better, or equal) straight into the store and run the monitor's
        challenger decision after each window.
        """
        from gitops_ml.data.generator import scenario_by_name
        from gitops_ml.jobs.challenger_scenario import SCENARIOS
        from gitops_ml.jobs.config_check import load_checked_settings

        if scenario in SCENARIOS:
            _challenger_scenario(
                load_checked_settings(config_dir),
                scenario,
                rows=rows,
                windows=windows,
                store_url=store_url,
                open_pr=open_pr,
                seed=seed,
            )
            return
        try:
            scenario_by_name(scenario)
        except ValueError as exc:
            raise typer.BadParameter(
                f"{exc}; or one of {', '.join(SCENARIOS)}", param_hint="--scenario"
            ) from None
        from rich.progress import Progress

        from gitops_ml.serving.simulator import run_simulation

        settings = load_checked_settings(config_dir)
        dataset = settings.dataset
        rows = rows or 2000
        frame, request_ids = _records(settings, rows, scenario, seed, id_offset, date_from, date_to)
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


def _records(
    settings: Settings,
    rows: int,
    scenario: str,
    seed: int,
    id_offset: int | None,
    date_from: str | None,
    date_to: str | None,
) -> tuple[pd.DataFrame, list[str] | None]:
    """The scenario's records (and request ids, when the records have no customer id)."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.data.generator import COLUMNS
    from gitops_ml.serving.simulator import DEFAULT_ID_OFFSET, reference_records, simulated_records

    dataset = settings.dataset
    if tuple(load_contract(dataset.contract).column_names) == tuple(COLUMNS):
        offset = id_offset if id_offset is not None else DEFAULT_ID_OFFSET + seed * 100_000
        frame = simulated_records(
            rows, scenario, seed=seed, id_offset=offset, start_time=date_from, end_time=date_to
        )
        return frame, None
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
    return frame, [f"sim-{seed}-{i}" for i in range(len(frame))]


def _challenger_scenario(
    settings: Settings,
    scenario: str,
    *,
    rows: int | None,
    windows: int | None,
    store_url: str | None,
    open_pr: bool,
    seed: int,
) -> None:
    from gitops_ml.jobs.challenger_scenario import ROWS_PER_WINDOW, run_challenger_scenario

    if store_url is None:  # a new file per run: this run's windows only, and the real store untouched
        from datetime import UTC, datetime

        db = Path("reports/simulate") / f"{scenario}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        store_url = f"sqlite:///{db}"
    per_window = rows or ROWS_PER_WINDOW
    # the requests' inputs, as a client would send them (the scores are the scenario's)
    inputs, _ = _records(settings, per_window, "stable", seed, None, None, None)
    run = run_challenger_scenario(
        settings,
        scenario,
        store_url=store_url,
        windows=windows,
        rows_per_window=per_window,
        seed=seed,
        inputs=inputs[settings.features.all],
        open_pr=open_pr,
    )
    for w in run.windows:
        latest = w.decision.latest
        shown = f"{latest.outcome}" if latest is not None else "not judged"
        if latest is not None and latest.delta is not None:
            shown += f" ({latest.metric} delta {latest.delta:+.4f}, CI [{latest.ci_low:+.4f}, {latest.ci_high:+.4f}])"
        pr = f"; PR {w.pr.action}" if w.pr is not None else ""
        typer.echo(f"window {w.index:>2} ({w.rows} labelled pairs): {shown} -> {w.decision.action}{pr}")
    typer.echo(run.summary())
    if run.first_decided is not None and not open_pr:
        typer.echo("  (no PR opened: --open-pr opens it as the monitor does)")
    typer.echo(f"store: {store_url}")
