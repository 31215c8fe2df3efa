"""The fake itself: auth, failure injection, prefix, and the Releases endpoints as GitHubClient uses them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gitops_ml.forge.github_api import GitHubClient, GitHubError
from tests.forge.conftest import REPOSITORY, TOKEN
from tests.forge.fake_github import ENDPOINTS, FakeGitHub


def client(server: FakeGitHub, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(server.api_url, token, label=REPOSITORY, access="contents", max_retries=0)


def test_requests_without_the_token_get_401(fake_github: FakeGitHub) -> None:
    assert httpx.get(f"{fake_github.api_url}/repos/{REPOSITORY}").status_code == 401
    ok = httpx.get(f"{fake_github.api_url}/repos/{REPOSITORY}", headers={"Authorization": f"token {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["full_name"] == REPOSITORY
    bearer = httpx.get(
        f"{fake_github.api_url}/repos/{REPOSITORY}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert bearer.status_code == 200
    assert [r.status for r in fake_github.request_log] == [401, 200, 200]


def test_unknown_endpoints_are_logged_as_unrouted(fake_github: FakeGitHub) -> None:
    r = httpx.get(
        f"{fake_github.api_url}/repos/{REPOSITORY}/branches", headers={"Authorization": f"token {TOKEN}"}
    )
    assert r.status_code == 404
    assert [x.path for x in fake_github.unhandled()] == [f"/repos/{REPOSITORY}/branches"]


def test_fail_next_counts_down_and_matches_method(fake_github: FakeGitHub) -> None:
    fake_github.fail_next("GET", r"^/repos/[^/]+/[^/]+$", status=503, times=2)
    headers = {"Authorization": f"token {TOKEN}"}
    url = f"{fake_github.api_url}/repos/{REPOSITORY}"
    assert [httpx.get(url, headers=headers).status_code for _ in range(3)] == [503, 503, 200]


def test_prefix_serves_only_under_it() -> None:
    with FakeGitHub(token=None, prefix="/api/v3") as ghe:
        assert httpx.get(f"{ghe.root_url}/api/v3/repos/{REPOSITORY}").status_code == 200
        assert httpx.get(f"{ghe.root_url}/repos/{REPOSITORY}").status_code == 404


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_release_asset_round_trip(tmp_path: Path, prefix: str) -> None:
    releases = f"/repos/{REPOSITORY}/releases"
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], prefix=prefix) as server, client(server) as gh:
        release = gh.json("create", "POST", releases, json={"tag_name": "model-v1", "name": "model v1"})
        upload = release["upload_url"].split("{", 1)[0]
        asset = gh.json(
            "upload", "POST", upload, params={"name": "model.skops"}, content=b"\x00\x01model-bytes"
        )
        assert asset["name"] == "model.skops" and asset["size"] == 13

        again = gh.json("read", "GET", f"{releases}/tags/model-v1")
        [listed] = gh.paginate("list", f"{releases}/{again['id']}/assets")
        octets = {"Accept": "application/octet-stream"}
        assert gh.stream("download", listed["url"], b"".join, headers=octets) == b"\x00\x01model-bytes"
        browser = httpx.get(listed["browser_download_url"], headers={"Authorization": f"token {TOKEN}"})
        assert browser.content == b"\x00\x01model-bytes"

        with pytest.raises(GitHubError) as dup:
            gh.request("create", "POST", releases, json={"tag_name": "model-v1"})
        assert dup.value.status == 422
        with pytest.raises(GitHubError) as missing:
            gh.request("read", "GET", f"{releases}/tags/model-v2")
        assert missing.value.status == 404
        gh.request("delete", "DELETE", listed["url"])
        assert gh.paginate("list", f"{releases}/{again['id']}/assets") == []
        assert server.unhandled() == []


def test_endpoint_list_is_documented() -> None:
    assert ("POST", "/repos/{owner}/{repo}/pulls") in ENDPOINTS
    assert len(ENDPOINTS) == len(set(ENDPOINTS))
