"""The sticky PR comment is always ours: real CML 0.20.6 against the fake GitHub (HTTPS, Enterprise layout).

Each test reproduces an attack CML alone falls for and shows `gitops-ml ci post-comment` refusing it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_ml import ci_artifacts as ca
from tests.forge.fake_github import FakeGitHub
from tests.workflows.cml import find_cml, self_signed_cert
from tests.workflows.test_ci_artifacts import run_ci

BOT = "github-actions[bot]"
SHA = "d" * 40
HEAD = "e" * 40


@pytest.fixture(scope="module")
def cml() -> Path:
    return find_cml()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def gh(cert: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(
        token="bot-token", users={"bot-token": BOT, "mallory-token": "mallory"}, prefix="/api/v3", tls=cert
    ) as server:
        env = {
            "REPO_TOKEN": "bot-token",
            "GITHUB_REPOSITORY": "acme/churn",
            "GITHUB_SERVER_URL": server.root_url,
            "GITHUB_API_URL": server.api_url,
            "GITHUB_SHA": SHA,
            "NODE_EXTRA_CA_CERTS": str(cert[0]),
            "REQUESTS_CA_BUNDLE": str(cert[0]),
            "HOME": str(tmp_path / "home"),
            "ITERATIVE_DO_NOT_TRACK": "true",
            "GITOPS_ML_COMMENT_AUTHOR": BOT,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for key in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_ACTIONS"):
            monkeypatch.delenv(key, raising=False)
        (tmp_path / "home").mkdir()
        monkeypatch.chdir(tmp_path)
        yield server


def _comment_file(tmp_path: Path, text: str, name: str = "comment.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _post(cml: Path, path: Path, number: int) -> int:
    return run_ci("post-comment", str(path), "--pr-number", str(number), "--cml", str(cml))


def _watermarked(text: str) -> str:
    return f"{text}\n\n{ca.cml_watermark(SHA)}"


def test_cml_posts_the_first_report_with_its_own_watermark(gh: FakeGitHub, cml: Path, tmp_path: Path) -> None:
    number = gh.add_pull("feature", HEAD)
    assert _post(cml, _comment_file(tmp_path, "## ✅ PASS\n"), number) == 0
    (comment,) = gh.comment_records(number)
    assert comment["user"] == BOT
    # the body CML sent is the one our edits reproduce, byte for byte
    assert comment["body"] == _watermarked("## ✅ PASS\n")
    assert gh.requests("POST", r"/issues/\d+/comments$")


def test_a_foreign_comment_carrying_the_watermark_is_never_edited(
    gh: FakeGitHub, cml: Path, tmp_path: Path
) -> None:
    number = gh.add_pull("feature", HEAD)
    assert _post(cml, _comment_file(tmp_path, "## ✅ PASS (first push)\n"), number) == 0
    ours = gh.comment_records(number)[0]["id"]
    # mallory copies our watermark into a newer comment
    forged = "please merge\n\n" + ca.cml_watermark("f" * 40)
    theirs = gh.add_comment(number, forged, user="mallory")

    # what CML alone does: it edits mallory's comment (the newest carrying the watermark)
    proc = subprocess.run(
        [
            str(cml),
            "comment",
            "update",
            f"--target=pr/{number}",
            f"--watermark-title={ca.WATERMARK_TITLE}",
            "--no-publish",
            "--driver=github",
            f"--repo={gh.root_url}/acme/churn",
            str(_comment_file(tmp_path, "probe\n", "p.md")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert {c["id"]: c["body"] for c in gh.comment_records(number)}[theirs] == _watermarked("probe\n")
    gh.add_comment(number, forged, user="mallory")  # and again, after that demonstration

    assert _post(cml, _comment_file(tmp_path, "## ❌ FAIL (second push)\n"), number) == 0
    by_id = {c["id"]: c for c in gh.comment_records(number)}
    assert by_id[ours]["body"] == _watermarked("## ❌ FAIL (second push)\n")
    assert [c["body"] for c in by_id.values() if c["user"] == "mallory"][-1] == forged
    assert len(by_id) == 3  # no new comment either


def test_only_a_foreign_watermark_means_a_new_comment_of_ours(
    gh: FakeGitHub, cml: Path, tmp_path: Path
) -> None:
    number = gh.add_pull("feature", HEAD)
    forged = "lgtm\n\n" + ca.cml_watermark("f" * 40)
    theirs = gh.add_comment(number, forged, user="mallory")
    assert _post(cml, _comment_file(tmp_path, "## ✅ PASS\n"), number) == 0
    records = gh.comment_records(number)
    assert [c["user"] for c in records] == ["mallory", BOT]
    assert records[0]["id"] == theirs and records[0]["body"] == forged


def test_with_31_earlier_comments_the_existing_report_is_edited(
    gh: FakeGitHub, cml: Path, tmp_path: Path
) -> None:
    number = gh.add_pull("feature", HEAD)
    for i in range(31):
        gh.add_comment(number, f"review comment {i}", user="reviewer")
    assert _post(cml, _comment_file(tmp_path, "## ✅ PASS (first push)\n"), number) == 0
    assert len(gh.comment_records(number)) == 32  # ours is on the second page of 30
    assert _post(cml, _comment_file(tmp_path, "## ✅ PASS (second push)\n"), number) == 0
    records = gh.comment_records(number)
    assert len(records) == 32
    assert records[-1]["user"] == BOT and records[-1]["body"] == _watermarked("## ✅ PASS (second push)\n")


def test_a_70000_character_report_is_posted_within_githubs_limit(
    gh: FakeGitHub, cml: Path, tmp_path: Path
) -> None:
    number = gh.add_pull("feature", HEAD)
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "report.md").write_text("## ❌ FAIL\n" + "x" * 70_000, encoding="utf-8")
    (artifact / "summary.json").write_text('{"status": "fail"}', encoding="utf-8")
    out = tmp_path / "comment.md"
    assert (
        run_ci(
            "comment",
            str(artifact),
            "--conclusion",
            "failure",
            "--head-sha",
            HEAD,
            "--run-url",
            "https://github.com/acme/churn/actions/runs/7",
            "--out",
            str(out),
        )
        == 0
    )
    assert _post(cml, out, number) == 0  # the fake, like GitHub, refuses bodies over 65,536 characters
    (comment,) = gh.comment_records(number)
    assert len(comment["body"]) <= ca.GITHUB_COMMENT_LIMIT and "Truncated" in comment["body"]
    assert ca.carries_watermark(comment["body"])

    # without the reserve, CML's watermark pushed the body over the limit and nothing was posted
    out.write_text(ca.comment_markdown("x" * 70_000, limit=ca.GITHUB_COMMENT_LIMIT), encoding="utf-8")
    assert _post(cml, out, number) == 2


def test_mentions_in_the_report_notify_nobody(gh: FakeGitHub, cml: Path, tmp_path: Path) -> None:
    number = gh.add_pull("feature", HEAD)
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "report.md").write_text("## ✅ PASS\ncc @octocat and @acme/security, mail a@b.example\n")
    out = tmp_path / "comment.md"
    assert (
        run_ci("comment", str(artifact), "--conclusion", "success", "--head-sha", HEAD, "--out", str(out))
        == 0
    )
    assert _post(cml, out, number) == 0
    (comment,) = gh.comment_records(number)
    assert "@octocat" not in comment["body"] and "@acme/security" not in comment["body"]
    assert "@\u200boctocat" in comment["body"] and "a@b.example" in comment["body"]
