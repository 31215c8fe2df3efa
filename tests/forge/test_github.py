from __future__ import annotations

import pytest

from gitops_ml.forge.github import TRUNCATION_NOTE, ForgeError, GitHubForge, truncate_body
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT
from tests.forge.conftest import REPOSITORY, TOKEN
from tests.forge.fake_github import FakeGitHub


def make_forge(server: FakeGitHub, token: str = TOKEN, **kw) -> GitHubForge:
    kw.setdefault("backoff_factor", 0.0)
    return GitHubForge(REPOSITORY, token, server.api_url, throttle=False, **kw)


def test_open_pr_creates_one_labelled_pr(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    forge.ensure_label("retraining", "fbca04", "monitor")
    pr = forge.open_pr("retrain/2026-11-27", "main", "Retrain", "report body", ["retraining"])

    assert (pr.number, pr.head_branch, pr.base_branch, pr.labels) == (
        1,
        "retrain/2026-11-27",
        "main",
        ("retraining",),
    )
    assert pr.url.endswith("/acme/churn/pull/1")
    [stored] = fake_github.pulls()
    assert stored["body"] == "report body" and stored["title"] == "Retrain"
    assert [x["name"] for x in stored["labels"]] == ["retraining"]
    assert fake_github.labels()["retraining"]["color"] == "fbca04"
    # opening again adopts the open PR on that branch
    assert forge.open_pr("retrain/2026-11-27", "main", "Retrain", "x", ["retraining"]).number == 1
    assert len(fake_github.requests("POST", r"/pulls$")) == 1
    assert fake_github.unhandled() == []


def test_find_open_pr_needs_label_prefix_and_open_state(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    assert forge.find_open_pr("retraining", "retrain/") is None
    forge.open_pr("retrain/a", "main", "no label", "b")
    forge.open_pr("feature/x", "main", "other prefix", "b", ["retraining"])
    closed = forge.open_pr("retrain/b", "main", "closed", "b", ["retraining"])
    fake_github._repos["acme/churn"].issues[closed.number]["state"] = "closed"
    assert forge.find_open_pr("retraining", "retrain/") is None
    wanted = forge.open_pr("retrain/c", "main", "the one", "b", ["Retraining"])
    found = forge.find_open_pr("retraining", "retrain/")
    assert found is not None and found.number == wanted.number
    assert forge.find_open_pr_by_head("retrain/a").title == "no label"
    assert forge.find_open_pr_by_head("retrain/zzz") is None


def test_find_open_pr_follows_pagination(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github, per_page=2)  # force several pages
    for i in range(5):
        forge.open_pr(f"other/{i}", "main", "t", "b")
    target = forge.open_pr("retrain/x", "main", "t", "b", ["retraining"])
    for i in range(5):
        forge.open_pr(f"more/{i}", "main", "t", "b")
    found = forge.find_open_pr("retraining", "retrain/")
    assert found is not None and found.number == target.number
    assert len(fake_github.requests("GET", r"/pulls$")) > 1


@pytest.mark.parametrize("after", [False, True], ids=["failed-before-creating", "created-but-answer-lost"])
def test_a_500_on_open_pr_then_success_gives_exactly_one_pr(fake_github: FakeGitHub, after: bool) -> None:
    fake_github.fail_next("POST", r"/pulls$", status=500, after=after)
    pr = make_forge(fake_github).open_pr("retrain/2026-11-27", "main", "Retrain", "body", ["retraining"])
    assert len(fake_github.pulls()) == 1
    assert pr.number == fake_github.pulls()[0]["number"]
    assert pr.labels == ("retraining",)
    posts = fake_github.requests("POST", r"/pulls$")
    assert [p.status for p in posts] == ([500] if after else [500, 201])


def test_connection_reset_on_open_pr_gives_exactly_one_pr(fake_github: FakeGitHub) -> None:
    fake_github.fail_next("POST", r"/pulls$", status="reset", after=True)
    pr = make_forge(fake_github).open_pr("retrain/d", "main", "Retrain", "body", ["retraining"])
    assert len(fake_github.pulls()) == 1 and pr.number == 1


def test_idempotent_requests_are_retried_with_backoff(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    fake_github.fail_next("GET", r"/pulls$", status=502, times=2)
    fake_github.fail_next("GET", r"/pulls$", status="reset", times=1)
    assert forge.find_open_pr("retraining", "retrain/") is None
    assert [r.status for r in fake_github.requests("GET", r"/pulls$")] == [502, 502, "reset", 200]

    pr = forge.open_pr("retrain/e", "main", "t", "old")
    fake_github.fail_next("PATCH", r"/pulls/\d+$", status=503)
    forge.update_pr_body(pr.number, "new")
    assert fake_github.pulls()[0]["body"] == "new"


def test_retries_give_up_with_a_clear_error(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github, max_retries=2)
    fake_github.fail_next("GET", r"/pulls$", status=500, times=10)
    with pytest.raises(ForgeError, match=r"could not list open pull requests"):
        forge.find_open_pr("retraining", "retrain/")
    assert len(fake_github.requests("GET", r"/pulls$")) == 3


def test_client_errors_are_not_retried(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    fake_github.fail_next("POST", r"/pulls$", status=422, body={"message": "Validation Failed"})
    with pytest.raises(ForgeError, match="422 Validation Failed"):
        forge.open_pr("retrain/f", "main", "t", "b")
    assert len(fake_github.requests("POST", r"/pulls$")) == 1
    assert fake_github.pulls() == []


def test_secondary_rate_limit_on_a_post_is_replayed(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github, secondary_rate_wait=0)
    pr = forge.open_pr("retrain/g", "main", "t", "b")
    fake_github.fail_next(
        "POST",
        r"/comments$",
        status=403,
        body={
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        },
    )
    forge.comment(pr.number, "hello")
    assert fake_github.comments(pr.number) == ["hello"]
    assert [r.status for r in fake_github.requests("POST", r"/comments$")] == [403, 201]


def test_comment_whose_answer_was_lost_is_not_posted_twice(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    pr = forge.open_pr("retrain/h", "main", "t", "b")
    fake_github.fail_next("POST", r"/comments$", status=502, after=True)
    url = forge.comment(pr.number, "report v2")
    assert fake_github.comments(pr.number) == ["report v2"]
    assert "#issuecomment-" in url


def test_ensure_label_creates_once(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    forge.ensure_label("retraining", "#00ff00", "d")
    forge.ensure_label("retraining", "#00ff00", "d")
    assert fake_github.labels() == {
        "retraining": {
            "id": fake_github.labels()["retraining"]["id"],
            "name": "retraining",
            "color": "00ff00",
            "description": "d",
        }
    }
    assert len(fake_github.requests("POST", r"/labels$")) == 1


def test_long_bodies_are_truncated_with_a_note(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github)
    pr = forge.open_pr("retrain/i", "main", "t", "x" * 70_000)
    body = fake_github.pulls()[0]["body"]
    assert len(body) == GITHUB_COMMENT_LIMIT and body.endswith(TRUNCATION_NOTE)
    forge.comment(pr.number, "y" * 100_000)
    assert len(fake_github.comments(pr.number)[0]) == GITHUB_COMMENT_LIMIT
    assert truncate_body("short") == "short"


def test_bad_token_gives_a_clear_error_without_the_token(fake_github: FakeGitHub) -> None:
    forge = make_forge(fake_github, token="ghp_wrongSECRETvalue")
    with pytest.raises(ForgeError) as info:
        forge.find_open_pr("retraining", "retrain/")
    assert "401" in str(info.value) and "check the token" in str(info.value)
    assert "ghp_wrongSECRETvalue" not in str(info.value)


def test_unknown_repository_says_so(fake_github: FakeGitHub) -> None:
    forge = GitHubForge("acme/nope", TOKEN, fake_github.api_url, throttle=False)
    with pytest.raises(ForgeError, match="repository not found"):
        forge.find_open_pr("retraining", "retrain/")


def test_constructor_validates_inputs() -> None:
    with pytest.raises(ForgeError, match="owner/name"):
        GitHubForge("just-a-name", TOKEN)
    with pytest.raises(ForgeError, match="needs a token"):
        GitHubForge(REPOSITORY, "")


def test_github_enterprise_base_url() -> None:
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], prefix="/api/v3") as ghe:
        assert ghe.api_url.endswith("/api/v3")
        forge = make_forge(ghe)
        forge.ensure_label("retraining", "fbca04", "")
        pr = forge.open_pr("retrain/j", "main", "t", "b", ["retraining"])
        forge.comment(pr.number, "c")
        forge.update_pr_body(pr.number, "b2")
        assert forge.find_open_pr("retraining", "retrain/").number == pr.number
        assert ghe.unhandled() == []
        assert all(r.status != 404 or "/labels/" in r.path for r in ghe.request_log)
        assert len(ghe.request_log) >= 6
        # the same client pointed at the root (no /api/v3) finds nothing there
        with pytest.raises(ForgeError, match="404"):
            GitHubForge(REPOSITORY, TOKEN, ghe.root_url, throttle=False).find_open_pr("x", "y")
