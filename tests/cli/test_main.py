"""The `gitops-ml` entry point through `main(argv)`: every command group is there, exit codes hold."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import typer

from gitops_ml.cli import COMMAND_MODULES, PREFECT_DEFAULTS, build_app, main

COMMANDS = {
    "config",
    "init",
    "data",
    "contract",
    "validate",
    "pr-check",
    "promote",
    "rollback",
    "production",
    "challenger",
    "serve",
    "labels",
    "monitor",
    "decision-pr",
    "simulate",
    "ci",
}


def _registered() -> set[str]:
    group = typer.main.get_command(build_app())
    return set(getattr(group, "commands", {}))


def test_every_command_module_exists_and_registers_its_commands():
    for name in COMMAND_MODULES:  # build_app skips a missing module: none may be missing
        assert callable(importlib.import_module(f"gitops_ml.cli.{name}").register)
    assert _registered() == COMMANDS


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]):
    assert main([command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_an_option_without_its_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["rollback", "--to"]) == 2
    assert "--to" in capsys.readouterr().err


def test_a_user_error_is_one_line_on_stderr_with_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    missing = tmp_path / "no-config"
    assert main(["production", "--config-dir", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and str(missing) in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_main_sets_the_prefect_defaults_but_keeps_the_callers(monkeypatch: pytest.MonkeyPatch):
    for key in PREFECT_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "7")
    assert main(["--help"]) == 0
    assert (
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == PREFECT_DEFAULTS["PREFECT_SERVER_ANALYTICS_ENABLED"]
    )
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "7"
