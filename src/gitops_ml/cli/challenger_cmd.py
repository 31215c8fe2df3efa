"""`gitops-ml challenger propose | promote | retire | show`: the challenger pointer (deploy/challenger.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.jobs.config_check import load_checked_settings

if TYPE_CHECKING:
    from gitops_ml.jobs.challenger import ChallengerOutcome


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="A challenger model served beside production (shadow or canary), decided by the monitor.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="challenger")

    @group.command("propose")
    def propose(
        config_dir: Path = ConfigDirOption,
        checked: Path = typer.Option(
            Path("reports/pr"), "--from", help="the PR check's --out folder (summary.json, candidate/)"
        ),
        mode: str = typer.Option("shadow", "--mode", help="shadow | canary"),
        fraction: float = typer.Option(
            None, "--fraction", help="canary: share of callers answered by the challenger, in (0, 1)"
        ),
        sticky_field: str = typer.Option(
            None, "--sticky-field", help="canary: request field that keeps a caller on one model"
        ),
        expect_commit: str = typer.Option(
            None, "--expect-commit", help="the commit the candidate must have been trained from"
        ),
        commit: bool = typer.Option(False, "--commit", help="commit deploy/challenger.yaml to git"),
    ) -> None:
        """Make the last PR check's candidate the challenger (its artifact is published as promotion does)."""
        from gitops_ml.errors import GitopsMLError
        from gitops_ml.jobs.challenger import propose_challenger

        if mode not in ("shadow", "canary"):
            raise GitopsMLError(f"--mode: {mode!r} is not one of shadow, canary")
        settings = load_checked_settings(config_dir)
        outcome = propose_challenger(
            settings,
            checked,
            mode=mode,  # type: ignore[arg-type]  # checked just above
            fraction=fraction,
            sticky_field=sticky_field,
            expect_commit=expect_commit,
            commit=commit,
        )
        _echo(outcome)

    @group.command("promote")
    def promote(
        config_dir: Path = ConfigDirOption,
        reason: str = typer.Option("", "--reason", help="recorded in deploy/history.yaml"),
        commit: bool = typer.Option(False, "--commit", help="commit the pointer change to git"),
    ) -> None:
        """Production becomes the challenger (pointer + history); the challenger file is removed."""
        from gitops_ml.jobs.challenger import promote_challenger

        outcome = promote_challenger(load_checked_settings(config_dir), reason=reason, commit=commit)
        _echo(outcome)

    @group.command("retire")
    def retire(
        config_dir: Path = ConfigDirOption,
        reason: str = typer.Option("", "--reason", help="recorded in the commit message"),
        commit: bool = typer.Option(False, "--commit", help="commit the removal to git"),
    ) -> None:
        """Stop serving the challenger; production is untouched."""
        from gitops_ml.jobs.challenger import retire_challenger

        # a malformed challenger file can always be retired
        settings = load_checked_settings(config_dir, check_challenger=False)
        outcome = retire_challenger(settings, reason=reason, commit=commit)
        _echo(outcome)

    @group.command("show")
    def show(config_dir: Path = ConfigDirOption) -> None:
        """Show the challenger pointer (or that there is none)."""
        from gitops_ml.registry.challenger import challenger_path, read_challenger

        path = challenger_path(load_checked_settings(config_dir).registry)
        challenger = read_challenger(path)
        if challenger is None:
            typer.echo(f"no challenger ({path} does not exist)")
            return
        typer.echo(yaml.safe_dump(challenger.model_dump(mode="json"), sort_keys=False).rstrip())


def _echo(outcome: ChallengerOutcome) -> None:
    if not outcome.changed:
        typer.echo(f"nothing to do: {outcome.message}")
        return
    typer.echo(outcome.message.splitlines()[0])
    typer.echo(f"pointer: {outcome.path}")
    if outcome.commit:
        typer.echo(f"commit: {outcome.commit}")
