"""gitops_ml.ci_artifacts and `gitops-ml ci ...`: staging, PR number validation, the comment, pins."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from gitops_ml import ci_artifacts as ca
from gitops_ml.cli import ci_cmd
from gitops_ml.errors import GitopsMLError
from tests.forge.fake_github import FakeGitHub

HEAD = "a" * 40
BASE = "b" * 40


def run_ci(*args: str) -> int:
    """`gitops-ml ci ...` through the real command, with the error handling of gitops_ml.cli.main."""
    app = typer.Typer()
    ci_cmd.register(app)
    try:
        app(args=["ci", *args], standalone_mode=False)
    except GitopsMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    return 0


def make_report_dir(root: Path) -> Path:
    out = root / "reports" / "pr"
    (out / "plots").mkdir(parents=True)
    (out / "deepchecks").mkdir()
    (out / "candidate").mkdir()
    (out / ".cache").mkdir()
    (out / "report.md").write_text(
        "## ✅ PASS\n\n| m | v |\n|---|---|\n\n## Plots\n\n![roc](plots/roc.png)\n"
        "![ext](https://example.com/x.png)\n"
    )
    (out / "summary.json").write_text(json.dumps({"status": "pass", "exit_code": 0}))
    (out / "plots" / "roc.png").write_bytes(b"\x89PNG fake")
    (out / "deepchecks" / "data_integrity.html").write_text("<html></html>")
    (out / "candidate" / "model.skops").write_bytes(b"model")
    (out / ".cache" / "prod.skops").write_bytes(b"prod")
    return out


def test_stage_copies_exactly_the_layout(tmp_path: Path) -> None:
    report_dir = make_report_dir(tmp_path)
    (report_dir / "plots" / "secret.png").symlink_to("/etc/hostname")
    staging = tmp_path / "reports" / "pr-artifact"
    staging.mkdir()
    (staging / "stale.txt").write_text("from an earlier run")

    staged = ca.stage_pr_artifact(report_dir, staging, ca.PrInfo(17, HEAD, BASE))

    assert staged == [
        "deepchecks/data_integrity.html",
        "plots/roc.png",
        "pr.json",
        "report.md",
        "summary.json",
    ]
    on_disk = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    assert on_disk == staged
    assert all(
        any(s == p or (p.endswith("/") and s.startswith(p)) for p in ca.staged_paths()) for s in staged
    )
    assert json.loads((staging / "pr.json").read_text()) == {"number": 17, "head_sha": HEAD, "base_sha": BASE}
    assert not list(tmp_path.glob("reports/.pr-artifact.*")), "temp folder left behind"


def test_stage_without_a_report_still_gives_the_reviewer_one(tmp_path: Path) -> None:
    staging = tmp_path / "out"
    ca.stage_pr_artifact(tmp_path / "missing", staging, ca.PrInfo(3))
    assert "no report" in (staging / "report.md").read_text()
    assert json.loads((staging / "summary.json").read_text())["status"] == "error"
    assert ca.read_pr_info(staging).number == 3


def test_stage_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    report_dir = make_report_dir(tmp_path)
    with pytest.raises(ca.CIArtifactError, match="--head-sha"):
        ca.stage_pr_artifact(report_dir, tmp_path / "out", ca.PrInfo(1, "not-a-sha"))
    assert not (tmp_path / "out").exists()
    assert (
        run_ci(
            "stage-artifact",
            "--pr-number",
            "12; rm -rf /",
            "--from",
            str(report_dir),
            "--to",
            str(tmp_path / "out"),
        )
        == 2
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        ('{"number": 42}', None),
        ('{"number": "42"}', None),
        ('{"number": "42\\n--target=pr/1"}', "positive integer"),
        ('{"number": "4 2"}', "positive integer"),
        ('{"number": true}', "positive integer"),
        ('{"number": 4.0}', "positive integer"),
        ('{"number": -1}', "positive integer"),
        ('{"number": 0}', "positive integer"),
        ('{"number": 99999999999}', "positive integer"),
        ('{"number": "$(id)"}', "positive integer"),
        ("[42]", "expected a JSON object"),
        ('{"num": 42}', "field 'number'"),
        ("not json", "not valid JSON"),
        ('{"number": 42, "head_sha": "zz"}', "head_sha"),
    ],
)
def test_pr_number_validation(tmp_path: Path, payload: str, message: str | None) -> None:
    (tmp_path / "pr.json").write_text(payload)
    if message is None:
        assert ca.read_pr_info(tmp_path).number == 42
    else:
        with pytest.raises(ca.CIArtifactError, match=message):
            ca.read_pr_info(tmp_path)


def test_pr_number_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ca.CIArtifactError, match="missing from the artifact"):
        ca.read_pr_info(tmp_path)
    (tmp_path / "pr.json").write_text(" " * (ca.MAX_PR_INFO_BYTES + 1))
    with pytest.raises(ca.CIArtifactError, match="refusing"):
        ca.read_pr_info(tmp_path)


def test_pr_number_cli_prints_only_the_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pr.json").write_text('{"number": 42}')
    assert run_ci("pr-number", str(tmp_path)) == 0
    assert capsys.readouterr().out == "42\n"
    (tmp_path / "pr.json").write_text('{"number": "42; echo pwned"}')
    assert run_ci("pr-number", str(tmp_path)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "positive integer" in captured.err


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token="tok", repos=["acme/churn"]) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.api_url)
        monkeypatch.setenv("GITHUB_SERVER_URL", server.root_url)  # the API host must be the repository's
        monkeypatch.setenv("GITHUB_TOKEN", "tok")
        monkeypatch.delenv("REPO_TOKEN", raising=False)
        monkeypatch.delenv("GH_TOKEN", raising=False)
        yield server


def _open_pr(gh: FakeGitHub, head_sha: str) -> int:
    return gh.add_pull("feature", head_sha)


def test_pr_number_checked_against_github(
    gh: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = _open_pr(gh, HEAD)
    (tmp_path / "pr.json").write_text(json.dumps({"number": number, "head_sha": HEAD}))
    assert run_ci("pr-number", str(tmp_path), "--head-sha", HEAD, "--repository", "acme/churn") == 0
    assert capsys.readouterr().out.strip() == str(number)

    # an artifact naming another PR (whose head is not this run's) is refused
    other = "c" * 40
    assert run_ci("pr-number", str(tmp_path), "--head-sha", other, "--repository", "acme/churn") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"head_sha {HEAD} != the run's head {other}" in captured.err
    (tmp_path / "pr.json").write_text(json.dumps({"number": number}))
    assert run_ci("pr-number", str(tmp_path), "--head-sha", other, "--repository", "acme/churn") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"has head {HEAD}, not the run's head {other}" in captured.err
    # a PR that does not exist
    (tmp_path / "pr.json").write_text(json.dumps({"number": 999}))
    assert run_ci("pr-number", str(tmp_path), "--head-sha", HEAD, "--repository", "acme/churn") == 2
    assert "could not read PR #999: 404" in capsys.readouterr().err


def test_comment_replaces_local_images_and_fits_github(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("## ✅ PASS\n\n![roc curve](plots/roc.png)\n![x](https://example.com/x.png)\n")
    text = ca.comment_markdown(ca.read_report(tmp_path), run_url="https://github.com/a/b/actions/runs/1")
    assert text.startswith("## ✅ PASS")
    assert "plots/roc.png" not in text and "Plot **roc curve**" in text
    assert "![x](https://example.com/x.png)" in text
    assert "[this run](https://github.com/a/b/actions/runs/1)" in text

    long = "## ❌ FAIL\n" + "x" * 100_000
    text = ca.comment_markdown(long)
    assert len(text) <= ca.GITHUB_COMMENT_LIMIT and text.startswith("## ❌ FAIL") and "Truncated" in text


def test_comment_cli_writes_the_file(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("## ✅ PASS\n![p](plots/p.png)\n")
    out = tmp_path / "comment.md"
    assert run_ci("comment", str(tmp_path), "--run-url", "https://x/runs/2", "--out", str(out)) == 0
    assert "plots/p.png" not in out.read_text() and "https://x/runs/2" in out.read_text()
    assert run_ci("comment", str(tmp_path / "nope")) == 2


def test_end_to_end_layout_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer and reader with their defaults, from the repository root, as the workflows run them."""
    monkeypatch.chdir(tmp_path)
    make_report_dir(tmp_path)
    assert run_ci("stage-artifact", "--pr-number", "8", "--head-sha", HEAD) == 0
    layout = ca.layout()
    assert ca.read_pr_info(layout["dir"]).number == 8
    assert run_ci("comment", layout["dir"], "--out", layout["comment"]) == 0
    assert Path(layout["comment"]).read_text().startswith("## ✅ PASS")
    assert os.path.exists(layout["report"]) and os.path.exists(layout["summary"])


PYPROJECT = """
[project]
name = "x"
dependencies = [
    "numpy>=1.26,<2",            # deepchecks uses np.Inf
    "deepchecks==0.19.1",        # newest release
    "scipy>=1.11",
    "pyarrow>=15,<25",
]
"""


def test_pin_report(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    versions = {"numpy": "2.3.1", "deepchecks": "0.19.1", "scipy": "1.16"}
    rows = ca.pin_rows(path, installed=versions.get)
    assert [(r.package, r.inside) for r in rows] == [
        ("numpy", False),
        ("deepchecks", True),
        ("pyarrow", None),
    ]
    assert rows[0].reason == "deepchecks uses np.Inf"

    passed = ca.render_pin_report(rows, "success")
    assert "the pin can move to 2.3.1" in passed and "**Pins that can move:** numpy" in passed
    failed = ca.render_pin_report(rows, "failure")
    assert "keep the pin" in failed and "No pin can move yet" in failed
    assert "| `pyarrow` | `<25,>=15` | - | not installed |" in failed


def test_pin_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    assert (
        run_ci("pin-report", "--pyproject", str(path), "--tests-outcome", "success", "--only", "numpy") == 0
    )
    out = capsys.readouterr().out
    assert "`numpy`" in out and "`deepchecks`" not in out
    assert run_ci("pin-report", "--pyproject", str(path), "--tests-outcome", "maybe") == 2
    assert run_ci("pin-report", "--pyproject", str(tmp_path / "nope.toml")) == 2


def test_pin_report_reads_this_projects_pins() -> None:
    packages = {r.package for r in ca.pin_rows(Path(__file__).resolve().parents[2] / "pyproject.toml")}
    assert set(ca.CANARY_PACKAGES) <= packages


def test_pr_number_without_an_artifact_comes_from_the_head(
    gh: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that failed before staging left no pr.json: the open PR at the run's head sha is found."""
    number = gh.add_pull("feature", HEAD)
    missing = tmp_path / "no-artifact"
    args = (
        "pr-number",
        str(missing),
        "--head-sha",
        HEAD,
        "--head-owner",
        "acme",
        "--head-branch",
        "feature",
        "--repository",
        "acme/churn",
    )
    assert run_ci(*args) == 0
    assert capsys.readouterr().out.strip() == str(number)
    # the branch moved on: the run's sha is no PR's head any more
    assert run_ci(*args[:3], "b" * 40, *args[4:]) == 2
    assert "no open PR from acme:feature" in capsys.readouterr().err
