"""The comment built by trusted code from PR-controlled report.md: bounded, linear, honest about the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml import ci_artifacts as ca
from tests.workflows.test_ci_artifacts import run_ci

HEAD = "a" * 40
RUN = "https://github.com/acme/churn/actions/runs/7"
TWO_MIB = 2 * 1024 * 1024


class _CountingPattern:
    """Wraps the image pattern and adds up the input each search may look at."""

    def __init__(self, pattern) -> None:
        self.pattern, self.scanned, self.calls = pattern, 0, 0

    def search(self, text: str, pos: int = 0, endpos: int | None = None):
        end = len(text) if endpos is None else endpos
        match = self.pattern.search(text, pos, end)
        # up to the end of the match found, or the whole window when there is none
        self.scanned += (match.end() if match else end) - pos
        self.calls += 1
        return match


@pytest.mark.parametrize(
    "unit", ["![", "![](", '![](x "', "![a](b", "[![", "@a", "![a](b.png)", "![a](" + "p" * 1999 + ")"]
)
def test_two_mib_of_hostile_markdown_is_read_only_as_far_as_the_comment_reaches(
    unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # M3: the old image regex was quadratic (80 KB of `![` took 8.3 s; 2 MiB would take hours).
    # Now every search is confined to what the comment can still hold, so the input looked at is
    # bounded by the comment size, not by the report size (timings: docs/benchmarks.md).
    counting = _CountingPattern(ca._IMAGE)
    monkeypatch.setattr(ca, "_IMAGE", counting)
    mentions: list[int] = []
    real = ca.neutralize_mentions
    monkeypatch.setattr(ca, "neutralize_mentions", lambda text: mentions.append(len(text)) or real(text))
    text = (unit * (TWO_MIB // len(unit) + 1))[:TWO_MIB]
    comment = ca.comment_markdown(text, conclusion="success", head_sha=HEAD, run_url=RUN, header=True)
    assert len(comment) + ca.watermark_reserve() <= ca.GITHUB_COMMENT_LIMIT and "Truncated" in comment
    window = ca.GITHUB_COMMENT_LIMIT + ca._IMAGE_MAX_CHARS
    # input looked at: what the comment keeps, plus one window; a long local image consumes up to
    # _IMAGE_MAX_CHARS of input for a short replacement, so its report is read further (still once)
    long_image = len(unit) > ca._IMAGE_MAX_CHARS // 4
    assert counting.scanned <= (TWO_MIB if long_image else 2 * window)
    assert (
        mentions and max(mentions) <= ca.GITHUB_COMMENT_LIMIT + 200
    )  # the mention pass sees only the kept text


def test_a_70000_character_report_fits_with_the_watermark() -> None:
    comment = ca.comment_markdown("## ❌ FAIL\n" + "x" * 70_000)
    assert len(comment) + len("\n\n") + len(ca.cml_watermark("b" * 64)) <= ca.GITHUB_COMMENT_LIMIT
    assert comment.startswith("## ❌ FAIL") and "Truncated" in comment


def test_the_header_states_commit_conclusion_and_link() -> None:
    comment = ca.comment_markdown(
        "## ✅ PASS\n", conclusion="success", head_sha=HEAD, run_url=RUN, pr_code_changed=False, header=True
    )
    first = comment.splitlines()[0]
    assert HEAD in first and "**success**" in first and f"]({RUN})" in first
    assert "own account" not in comment
    changed = ca.comment_markdown(
        "## ✅ PASS\n", conclusion="success", head_sha=HEAD, run_url=RUN, pr_code_changed=True, header=True
    )
    assert "changes the code that wrote the report below" in changed and "`src/`" in changed
    unknown = ca.comment_markdown(
        "## ✅ PASS\n", conclusion="success", head_sha=HEAD, run_url=RUN, pr_code_changed=None, header=True
    )
    assert "Could not read which files" in unknown


def test_a_hostile_run_url_or_sha_is_not_rendered() -> None:
    comment = ca.comment_markdown(
        "x",
        conclusion="success",
        head_sha="not-a-sha](https://evil)",
        run_url="javascript:alert(1)",
        header=True,
    )
    assert "evil" not in comment and "javascript" not in comment


@pytest.mark.parametrize("conclusion", ["failure", "timed_out", "startup_failure"])
def test_a_failed_run_replaces_a_passing_verdict(conclusion: str) -> None:
    comment = ca.comment_markdown(
        "## ✅ PASS\n", conclusion=conclusion, status="pass", head_sha=HEAD, run_url=RUN, header=True
    )
    assert ca.CHECK_FAILED in comment and "✅ PASS" not in comment


def test_a_run_without_a_report_says_check_failed(tmp_path: Path) -> None:
    out = tmp_path / "comment.md"
    assert (
        run_ci(
            "comment",
            str(tmp_path / "no-artifact"),
            "--conclusion",
            "failure",
            "--head-sha",
            HEAD,
            "--run-url",
            RUN,
            "--out",
            str(out),
        )
        == 0
    )
    text = out.read_text(encoding="utf-8")
    assert ca.CHECK_FAILED in text and HEAD in text and RUN in text


def test_a_failing_verdict_of_a_failed_run_is_shown() -> None:
    comment = ca.comment_markdown("## ❌ FAIL: 2 gates\n", conclusion="failure", status="fail", header=True)
    assert "## ❌ FAIL: 2 gates" in comment and ca.CHECK_FAILED not in comment


def test_an_unknown_conclusion_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("x")
    assert run_ci("comment", str(tmp_path), "--conclusion", "passed-trust-me") == 2


def test_mentions_are_neutralized_but_addresses_kept() -> None:
    text = ca.neutralize_mentions("@octocat, (@org/team) `@x` a@b.example user+tag@c.example")
    assert "@octocat" not in text and "@org/team" not in text
    assert "a@b.example" in text and "user+tag@c.example" in text


def test_watermark_matches_only_our_title() -> None:
    assert ca.carries_watermark("report\n\n" + ca.cml_watermark(HEAD))
    assert not ca.carries_watermark("report\n\n" + ca.cml_watermark(HEAD, title="other report"))
