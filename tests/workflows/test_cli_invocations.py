"""Every `gitops-ml ...` a workflow runs names a real command and real options of it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import pytest
import typer

from gitops_ml.cli import COMMAND_MODULES, build_app, main
from tests.workflows.conftest import steps_of

_STOP = set(")|;&<>#")


@dataclass(frozen=True)
class Invocation:
    where: str
    line: str
    args: tuple[str, ...]


def _logical_lines(script: str) -> list[str]:
    return script.replace("\\\n", " ").splitlines()


def _segment(rest: str) -> str:
    """`rest` up to the first unquoted shell operator (`)`, `|`, `;`, `&`, `>`, `<`, `#`)."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _STOP:
            return rest[:i]
    return rest


def extract_invocations(script: str, where: str) -> list[Invocation]:
    found = []
    for line in _logical_lines(script):
        for m in re.finditer(r"(?:^|(?<=[\s(\"'/]))gitops-ml(?=\s|$)", line):
            found.append(Invocation(where, line.strip(), tuple(shlex.split(_segment(line[m.end() :])))))
    return found


def _all_invocations(workflows) -> list[Invocation]:
    out = []
    for step in steps_of(workflows):
        if step.run:
            out += extract_invocations(step.run, step.where)
    return out


def _app() -> typer.Typer:
    app = build_app()
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if "ci" not in names:  # until cli/__init__.py lists ci_cmd (see test_ci_commands_are_registered)
        from gitops_ml.cli import ci_cmd

        ci_cmd.register(app)
    return app


# typer 0.27 vendors its own click (typer._click): the objects are duck-typed here
def resolve(root: Any, args: tuple[str, ...]) -> tuple[Any, list[str], str]:
    """The command `args` names, the arguments left for it, and its full name."""
    command = root
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "commands"):
        assert rest, f"`gitops-ml {' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, (
            f"no command `gitops-ml {' '.join([*path, name])}` (have: {sorted(command.commands)})"
        )
        command, path = sub, [*path, name]
    return command, rest, " ".join(path)


def check_args(command: Any, args: list[str], name: str) -> None:
    """Options must exist; options taking a value get one; positional count and required params match."""
    options = [p for p in command.params if p.param_type_name == "option"]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    by_opt = {opt: p for p in options for opt in (*p.opts, *p.secondary_opts)}
    given: set[str] = set()
    positional = 0
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("-") and token != "-":
            opt, has_value, _ = token.partition("=")
            assert opt in by_opt, f"`gitops-ml {name}`: no option {opt} (have: {sorted(by_opt)})"
            param = by_opt[opt]
            given.add(param.name)
            if not param.is_flag and not has_value:
                i += 1
                assert i < len(args), f"`gitops-ml {name}`: {opt} needs a value"
        else:
            positional += 1
        i += 1
    max_positional = sum(max(a.nargs, 1) for a in arguments)
    assert positional <= max_positional, f"`gitops-ml {name}`: {positional} arguments, takes {max_positional}"
    required_args = sum(1 for a in arguments if a.required)
    assert positional >= required_args, f"`gitops-ml {name}`: {positional} arguments, needs {required_args}"
    missing = [p.name for p in options if p.required and p.name not in given and not p.envvar]
    assert not missing, f"`gitops-ml {name}`: required options missing: {missing}"


def test_extraction_handles_the_shapes_used() -> None:
    script = (
        'number="$(.venv/bin/gitops-ml ci pr-number "$DIR" --head-sha "$SHA")"\n'
        '.venv/bin/gitops-ml ci comment "$DIR" >> "$GITHUB_STEP_SUMMARY"\n'
        'gitops-ml pr-check \\\n  --base-ref "$BASE" | tee log\n'
        "echo not-gitops-ml here; pip install gitops-ml-extra\n"
    )
    got = [i.args for i in extract_invocations(script, "t")]
    assert got == [
        ("ci", "pr-number", "$DIR", "--head-sha", "$SHA"),
        ("ci", "comment", "$DIR"),
        ("pr-check", "--base-ref", "$BASE"),
    ]


def test_checker_rejects_unknown_commands_and_options() -> None:
    root = typer.main.get_command(_app())
    with pytest.raises(AssertionError, match="no command"):
        resolve(root, ("nope",))
    command, rest, name = resolve(root, ("pr-check", "--bogus"))
    with pytest.raises(AssertionError, match="no option --bogus"):
        check_args(command, rest, name)
    command, rest, name = resolve(root, ("ci", "stage-artifact"))
    with pytest.raises(AssertionError, match="required options missing"):
        check_args(command, rest, name)
    command, rest, name = resolve(root, ("ci", "pr-number", "a", "b"))
    with pytest.raises(AssertionError, match="takes 1"):
        check_args(command, rest, name)


def test_every_gitops_ml_invocation_is_valid(workflows) -> None:
    invocations = _all_invocations(workflows)
    named = {" ".join(i.args[:2]) for i in invocations}
    # the ones this suite exists for must be found (the extraction works on the real files)
    assert {
        "pr-check --base-ref",
        "ci artifact-paths",
        "ci stage-artifact",
        "ci pr-number",
        "ci comment",
        "promote --check-only",
        "promote --checked",
        "ci post-comment",
        "ci pin-report",
    } <= named | {" ".join(i.args[:1]) for i in invocations}
    assert any(i.args[:1] == ("monitor",) for i in invocations)
    root = typer.main.get_command(_app())
    problems = []
    for inv in invocations:
        try:
            command, rest, name = resolve(root, inv.args)
            check_args(command, rest, name)
        except AssertionError as exc:
            problems.append(f"{inv.where}: {inv.line}\n    {exc}")
    assert not problems, "\n".join(problems)


def test_every_invoked_command_answers_help(workflows) -> None:
    """The real entry point resolves each command path (`gitops-ml <path> --help` exits 0)."""
    root = typer.main.get_command(_app())
    paths = set()
    for inv in _all_invocations(workflows):
        _, _rest, name = resolve(root, inv.args)
        paths.add(name)
    if "ci_cmd" not in COMMAND_MODULES:
        paths = {p for p in paths if not p.startswith("ci ")}  # test_ci_commands_are_registered says so
    for name in sorted(paths):
        assert main([*name.split(), "--help"]) == 0, name


def test_ci_commands_are_registered() -> None:
    """cli/__init__.py must list ci_cmd, or the workflows' `gitops-ml ci ...` steps fail."""
    assert "ci_cmd" in COMMAND_MODULES
