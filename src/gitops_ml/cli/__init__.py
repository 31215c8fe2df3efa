"""The one CLI entry point, `gitops-ml`. Each command group lives in its own `*_cmd.py` module.

`main(argv) -> int` never raises for a user error: GitopsMLError becomes a message on stderr and
its exit code (2 = bad input, 1 = gates failed), so tests and workflows can rely on exit codes.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from gitops_ml.errors import GitopsMLError

# Modules that define commands; each exposes `register(app: typer.Typer) -> None`.
# Imported lazily by main() so `import gitops_ml.cli` stays cheap and side-effect free.
COMMAND_MODULES = (
    "config_cmd",
    "init_cmd",
    "data_cmd",
    "contract_cmd",
    "validate_cmd",
    "pr_check_cmd",
    "registry_cmd",
    "challenger_cmd",
    "serve_cmd",
    "labels_cmd",
    "monitor_cmd",
    "simulate_cmd",
    "ci_cmd",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="gitops-ml",
        help="GitOps training repository for tabular ML: validate, pr-check, promote, serve, monitor.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"gitops_ml.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gitops_ml.cli.{name}":
                continue  # command group not built yet
            raise
        module.register(app)
    return app


# Set before Prefect is imported (settings are read once). Telemetry logs "database is locked" on
# a busy SQLite (seen with Prefect 3.9 on a shared runner); a loaded 2-core runner needs longer than the default 20 s to start the
# temporary server.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def main(argv: list[str] | None = None) -> int:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    app = build_app()
    try:
        # standalone_mode=False: click returns typer.Exit's code instead of raising SystemExit
        code = app(args=argv, prog_name="gitops-ml", standalone_mode=False)
    except GitopsMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # click raises this for --help in some paths
        return int(exc.code or 0)
    except Exception as exc:
        # Usage errors (unknown option, bad value). typer may vendor its own click, so match by
        # shape rather than by class: a ClickException has show() and an exit_code (2 for usage).
        exit_code = getattr(exc, "exit_code", None)
        if hasattr(exc, "show") and isinstance(exit_code, int):
            exc.show()
            return exit_code
        if type(exc).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            return 130
        raise
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())
