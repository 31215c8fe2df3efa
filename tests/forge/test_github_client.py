"""GitHubClient, the one GitHub transport, against the fake GitHub server (a real HTTP server)."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from gitops_ml.forge.github_api import ForgeError, GitHubClient, GitHubError
from tests.forge.conftest import REPOSITORY, TOKEN
from tests.forge.fake_github import FakeGitHub

PULLS = f"/repos/{REPOSITORY}/pulls"
LABELS = f"/repos/{REPOSITORY}/labels"


def client_for(server: FakeGitHub, token: str | None = TOKEN, **kw) -> GitHubClient:
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("rate_limit_wait_s", 0.0)
    return GitHubClient(server.api_url, token, label=REPOSITORY, access="issues read/write", **kw)


def test_pagination_follows_the_link_header_over_several_pages(fake_github: FakeGitHub) -> None:
    for i in range(7):
        fake_github.add_pull(f"branch/{i}", "a" * 40)
    client = client_for(fake_github, per_page=3)
    pulls = client.paginate("list pulls", PULLS, {"state": "open"})
    assert sorted(p["head"]["ref"] for p in pulls) == [f"branch/{i}" for i in range(7)]
    pages = fake_github.requests("GET", r"/pulls$")
    assert [r.query.get("page", ["1"])[0] for r in pages] == ["1", "2", "3"]
    assert all(r.query["state"] == ["open"] and r.query["per_page"] == ["3"] for r in pages)
    # a limit stops reading pages
    assert len(client.paginate("list pulls", PULLS, limit=4)) == 4
    assert len(fake_github.requests("GET", r"/pulls$")) == 3 + 2


def test_a_get_is_retried_and_a_post_is_not(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    fake_github.fail_next("GET", r"/repos/[^/]+/[^/]+$", status=503, times=2)
    fake_github.fail_next("GET", r"/repos/[^/]+/[^/]+$", status="reset")
    assert client.json("read the repository", "GET", f"/repos/{REPOSITORY}")["full_name"] == REPOSITORY
    assert [r.status for r in fake_github.requests("GET", r"/repos/[^/]+/[^/]+$")] == [503, 503, "reset", 200]

    for status in (502, "reset"):
        fake_github.fail_next("POST", r"/labels$", status=status)
        with pytest.raises(GitHubError) as info:
            client.request("create a label", "POST", LABELS, json={"name": "x"})
        assert info.value.transient and "could not create a label" in str(info.value)
    assert [r.status for r in fake_github.requests("POST", r"/labels$")] == [502, "reset"]
    assert fake_github.labels() == {}


def test_retries_stop_after_max_retries(fake_github: FakeGitHub) -> None:
    fake_github.fail_next("GET", r"/pulls$", status=500, times=10)
    with pytest.raises(GitHubError, match=r"could not list pulls: 500 ") as info:
        client_for(fake_github, max_retries=2).paginate("list pulls", PULLS)
    assert info.value.status == 500
    assert len(fake_github.requests("GET", r"/pulls$")) == 3


@pytest.mark.parametrize("after", [False, True], ids=["not-done", "done-but-answer-lost"])
def test_once_asks_whether_a_failed_write_took_effect(fake_github: FakeGitHub, after: bool) -> None:
    client = client_for(fake_github)
    fake_github.fail_next("POST", r"/labels$", status=502, after=after)

    def create() -> str:
        return client.json("create a label", "POST", LABELS, json={"name": "retraining"})["name"]

    def done() -> str | None:
        names = [label["name"] for label in client.paginate("list labels", LABELS)]
        return "retraining" if "retraining" in names else None

    assert client.once("create a label", create, done) == "retraining"
    assert [r.status for r in fake_github.requests("POST", r"/labels$")] == ([502] if after else [502, 201])
    assert list(fake_github.labels()) == ["retraining"]


def test_a_client_error_is_neither_retried_nor_rewritten(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    calls = []
    fake_github.fail_next("POST", r"/labels$", status=422, body={"message": "Validation Failed"})
    with pytest.raises(GitHubError, match="422 Validation Failed") as info:
        client.once("create a label", lambda: client.request("x", "POST", LABELS, json={}), calls.append)
    assert not info.value.transient and calls == []
    assert len(fake_github.requests("POST", r"/labels$")) == 1


def test_a_rate_limited_post_is_replayed_after_the_wait_github_asks_for(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    fake_github.fail_next("POST", r"/labels$", status=429, headers={"Retry-After": "0"})
    fake_github.fail_next(
        "POST", r"/labels$", status=403, body={"message": "You have exceeded a secondary rate limit."}
    )
    client.request("create a label", "POST", LABELS, json={"name": "a"})
    assert [r.status for r in fake_github.requests("POST", r"/labels$")] == [429, 403, 201]
    # a primary limit that resets in an hour: an error now, not an hour's sleep
    fake_github.fail_next(
        "GET",
        r"/labels$",
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)},
        body={"message": "API rate limit exceeded"},
    )
    with pytest.raises(GitHubError, match="giving up"):
        client_for(fake_github, max_rate_limit_wait_s=60).request("list labels", "GET", LABELS)
    # a plain 403 is a refusal: not retried, and the message says what access is missing
    fake_github.fail_next("GET", r"/labels$", status=403, body={"message": "Resource not accessible"})
    with pytest.raises(GitHubError, match=r"403 Resource not accessible \(.*issues read/write\)"):
        client.request("list labels", "GET", LABELS)


def test_writes_are_spaced(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github, write_interval_s=0.3)
    start = time.monotonic()
    for name in ("a", "b", "c"):
        client.request("create a label", "POST", LABELS, json={"name": name})
    assert time.monotonic() - start >= 0.6
    assert len(fake_github.labels()) == 3


def test_the_token_is_in_no_error_log_or_repr(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    wrong = "ghp_wrongSECRETvalue0123456789"
    with pytest.raises(GitHubError) as bad:
        client_for(fake_github, token=wrong).request("read the repository", "GET", f"/repos/{REPOSITORY}")
    assert "401" in str(bad.value) and "check the token" in str(bad.value)
    fake_github.fail_next("GET", r"/pulls$", status=502, times=10)
    client = client_for(fake_github, max_retries=2)
    with pytest.raises(GitHubError) as failed:
        client.paginate("list pulls", PULLS)
    # nothing listens on a freed port: a transport error, retried, then reported
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    offline = GitHubClient(
        f"http://127.0.0.1:{port}", TOKEN, label=REPOSITORY, access="x", backoff_s=0, max_retries=1
    )
    with pytest.raises(GitHubError) as unreachable:
        offline.request("read the repository", "GET", f"/repos/{REPOSITORY}")
    assert unreachable.value.status is None and "ConnectError" in str(unreachable.value)
    assert "retrying" in caplog.text and "HTTP Request" in caplog.text  # the logs were captured
    for text in (str(bad.value), str(failed.value), str(unreachable.value), caplog.text, repr(client)):
        assert TOKEN not in text and wrong not in text


def test_the_token_goes_only_to_the_apis_own_hosts(fake_github: FakeGitHub) -> None:
    with pytest.raises(ForgeError, match="only sent over https"):
        GitHubClient("http://attacker.example/api", TOKEN, label=REPOSITORY, access="x")
    # an absolute URL in an answer (a next page, an upload_url) is refused off the API's hosts
    client = client_for(fake_github)
    before = len(fake_github.request_log)
    with pytest.raises(ForgeError, match="refusing to send a request to 'attacker.example'"):
        client.request("follow a link", "GET", "https://attacker.example/repos/acme/churn")
    assert len(fake_github.request_log) == before
    github = GitHubClient("https://api.github.com", TOKEN, label=REPOSITORY, access="x")
    assert github.url("https://uploads.github.com/repos/a/b/releases/1/assets").startswith("https://uploads.")
    assert github.url("https://github.com/a/b/releases/download/t/f").startswith("https://github.com/")
    with pytest.raises(ForgeError, match="refusing"):
        github.url("https://uploads.github.com.attacker.example/x")
