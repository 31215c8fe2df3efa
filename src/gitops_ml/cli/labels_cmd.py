"""`gitops-ml labels import FILE`: late-arriving labels joined to logged predictions."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.jobs.config_check import load_checked_settings

StoreUrlOption = typer.Option(
    None, "--store-url", help="prediction store URL (default: serving.prediction_store_url)"
)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Import late-arriving labels into the prediction store.", no_args_is_help=True)

    @group.command("import")
    def import_labels(
        file: Path = typer.Argument(..., help="CSV with columns request_id,label"),
        config_dir: Path = ConfigDirOption,
        store_url: str | None = StoreUrlOption,
        token: str | None = typer.Option(
            None, "--token", help="required when GITOPS_ML_LABELS_TOKEN is set: the same token"
        ),
    ) -> None:
        """Store labels for known request ids (all in one transaction); print matched/unknown counts.

        A bad file (missing column, empty id, invalid label) exits 2 naming the row and column,
        and nothing is written. When GITOPS_ML_LABELS_TOKEN is set, --token must match it (exit 2).
        """
        from gitops_ml.config import prediction_store_url
        from gitops_ml.prediction_store import PredictionStore
        from gitops_ml.prediction_store.access import check_labels_token, configured_labels_token
        from gitops_ml.prediction_store.labels import read_labels_csv

        check_labels_token(configured_labels_token(), token, how="labels import --token")
        settings = load_checked_settings(config_dir)
        pairs = read_labels_csv(file, settings.dataset.task)
        store = PredictionStore(prediction_store_url(settings.serving, store_url))
        try:
            matched, unknown = store.add_labels(pairs)
        finally:
            store.dispose()
        typer.echo(
            f"{file}: {len(pairs)} label rows: {matched} matched a logged prediction, {unknown} unknown"
        )

    app.add_typer(group, name="labels")
