"""The GitHub Releases model store against the fake GitHub server (tests/forge/fake_github.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_ml.config import RegistryConfig
from gitops_ml.errors import ArtifactError
from gitops_ml.forge.github_api import web_root
from gitops_ml.registry.github_release import GitHubReleaseStore, parse_release_url
from gitops_ml.registry.model_store import fetch_artifact, open_store
from gitops_ml.registry.pointer import read_pointer
from gitops_ml.registry.promote import promote_candidate, rollback
from tests.forge.fake_github import FakeGitHub

TOKEN = "ghp_releaseStoreTOKEN0123456789"
REPO = "acme/churn"

# The rest of what registry.artifacts.ArtifactMetadata requires of a metadata file.
TYPED_FIELDS = {"task": "binary", "target": "y", "features": ["a"], "created_at": "2026-12-01T00:00:00+00:00"}


def make_candidate(root: Path, version: str, payload: bytes | None = None) -> tuple[Path, str]:
    folder = root / f"cand-{version}"
    folder.mkdir(parents=True)
    data = payload if payload is not None else f"model bytes of {version}".encode()
    (folder / "model.skops").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    meta = {
        "version": version,
        "sha256": sha,
        "git_commit": "abc123",
        "config_hash": "c" * 64,
        "data_hash": "d" * 64,
        "metrics": {"roc_auc": 0.8},
        **TYPED_FIELDS,
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder, sha


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    for var in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL"):
        monkeypatch.delenv(var, raising=False)
    with FakeGitHub(token=TOKEN, repos=[REPO]) as server:
        yield server


def store_for(gh: FakeGitHub, token: str | None = TOKEN) -> GitHubReleaseStore:
    return GitHubReleaseStore(REPO, token=token, api_url=gh.api_url, backoff_s=0.01)


def _release_assets(gh: FakeGitHub, tag: str) -> dict[str, bytes]:
    repo = gh._repos[REPO]
    release = next(r for r in repo.releases.values() if r["tag_name"] == tag)
    return {repo.assets[a]["name"]: repo.asset_bytes[a] for a in release["assets"]}


def test_publish_then_fetch_round_trip(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "20261127-abc")
    uri = store_for(gh).publish(folder, "20261127-abc", sha)

    assert uri == "github-release://acme/churn/model-20261127-abc/model.skops"
    assets = _release_assets(gh, "model-20261127-abc")
    assert assets == {
        "model.skops": b"model bytes of 20261127-abc",
        "metadata.json": (folder / "metadata.json").read_bytes(),
    }
    path = store_for(gh).fetch(uri, tmp_path / "cache")
    assert path.name == "model.skops" and path.read_bytes() == b"model bytes of 20261127-abc"
    assert json.loads((path.parent / "metadata.json").read_text())["sha256"] == sha
    assert not list(path.parent.glob(".*.tmp")), "temp files left behind"
    # cached: a second fetch makes no request
    before = len(gh.request_log)
    assert store_for(gh).fetch(uri, tmp_path / "cache") == path
    assert len(gh.request_log) == before


def test_republish_is_idempotent_and_a_different_model_is_refused(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v1")
    store = store_for(gh)
    uri = store.publish(folder, "v1", sha)
    assert store.publish(folder, "v1", sha) == uri
    assert len(gh.requests("POST", r"/releases$")) == 1
    assert len([r for r in gh.request_log if r.method == "POST" and "assets" in r.path]) == 2

    other, other_sha = make_candidate(tmp_path / "other", "v1", payload=b"another model")
    with pytest.raises(ArtifactError, match="already holds a different model.skops"):
        store.publish(other, "v1", other_sha)
    assert _release_assets(gh, "model-v1")["model.skops"] == b"model bytes of v1"


def test_rerun_after_a_crash_uploads_only_what_is_missing(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v2")
    # a first attempt that died after creating the release and uploading model.skops only
    gh.fail_next("POST", r"/releases/\d+/assets", status=502, times=10, after=False)
    with pytest.raises(ArtifactError, match="could not upload model.skops"):
        store_for(gh).publish(folder, "v2", sha)
    gh._rules.clear()
    store_for(gh).publish(folder, "v2", sha)
    repo = gh._repos[REPO]
    meta_id = next(a for a, v in repo.assets.items() if v["name"] == "metadata.json")
    repo.releases[repo.assets[meta_id]["release_id"]]["assets"].remove(meta_id)
    uploads_before = len([r for r in gh.request_log if r.method == "POST" and "assets" in r.path])

    uri = store_for(gh).publish(folder, "v2", sha)

    uploads = [r for r in gh.request_log if r.method == "POST" and "assets" in r.path][uploads_before:]
    assert [r.query["name"] for r in uploads] == [["metadata.json"]]
    assert set(_release_assets(gh, "model-v2")) == {"model.skops", "metadata.json"}
    assert len(gh.requests("POST", r"/releases$")) == 1
    assert uri.endswith("/model-v2/model.skops")


def test_lost_answer_on_create_release_makes_no_duplicate(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v3")
    gh.fail_next("POST", r"/releases$", status=502, after=True)  # created, answer lost
    store_for(gh).publish(folder, "v3", sha)
    assert len(gh._repos[REPO].releases) == 1


def test_publish_checks_local_sha_and_needs_a_token(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v4")
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        store_for(gh).publish(folder, "v4", "0" * 64)
    with pytest.raises(ArtifactError, match="needs a token"):
        store_for(gh, token=None).publish(folder, "v4", sha)
    assert gh._repos[REPO].releases == {}


def test_tampered_asset_is_refused_by_the_sha_check(
    gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer's sha256 is the trust anchor: an asset replaced on GitHub is downloaded but refused."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    registry = RegistryConfig(
        pointer=tmp_path / "deploy" / "production.yaml",
        history=tmp_path / "deploy" / "history.yaml",
        store_url=f"github-release://{REPO}",
        lock_timeout_s=2,
    )
    first, _ = make_candidate(tmp_path, "v1")
    second, _ = make_candidate(tmp_path, "v2")
    promote_candidate(first, registry, reason="first")
    promote_candidate(second, registry, reason="second")
    pointer_v1_sha = hashlib.sha256(b"model bytes of v1").hexdigest()

    repo = gh._repos[REPO]
    release = next(r for r in repo.releases.values() if r["tag_name"] == "model-v1")
    model_id = next(a for a in release["assets"] if repo.assets[a]["name"] == "model.skops")
    repo.asset_bytes[model_id] = b"evil model"

    fetched = fetch_artifact("github-release://acme/churn/model-v1/model.skops", tmp_path / "fresh")
    assert fetched.read_bytes() == b"evil model"
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() != pointer_v1_sha
    with pytest.raises(ArtifactError, match="sha256 no longer matches"):
        rollback(registry, to_version="v1", reason="test")
    pointer = read_pointer(registry.pointer)
    assert pointer is not None and pointer.version == "v2"


def test_open_store_and_fetch_artifact_dispatch(
    gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    store = open_store(f"github-release://{REPO}")
    assert isinstance(store, GitHubReleaseStore)
    assert store.token == TOKEN and store.api_url == gh.api_url
    folder, sha = make_candidate(tmp_path, "v5")
    uri = store.publish(folder, "v5", sha)
    path = fetch_artifact(uri, tmp_path / "cache")
    assert path.read_bytes() == b"model bytes of v5"


def test_github_enterprise_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    with FakeGitHub(token=TOKEN, repos=[REPO], prefix="/api/v3") as ghe:
        assert ghe.api_url.endswith("/api/v3")
        store = GitHubReleaseStore(REPO, token=TOKEN, api_url=ghe.api_url, backoff_s=0.01)
        folder, sha = make_candidate(tmp_path, "v6")
        uri = store.publish(folder, "v6", sha)
        assert store.fetch(uri, tmp_path / "cache").read_bytes() == b"model bytes of v6"
        # uploads went to GHE's /api/uploads beside the API, never to a github.com host
        assert any(r.path.startswith("/api/uploads/") for r in ghe.request_log)
        assert not ghe.unhandled()


def test_public_repository_fetch_without_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGitHub(token=None, repos=[REPO]) as public:
        folder, sha = make_candidate(tmp_path, "v7")
        uri = GitHubReleaseStore(REPO, token="anything", api_url=public.api_url).publish(folder, "v7", sha)
        anonymous = GitHubReleaseStore(REPO, token=None, api_url=public.api_url)
        path = anonymous.fetch(uri, tmp_path / "cache")
        assert path.read_bytes() == b"model bytes of v7"
        assert (path.parent / "metadata.json").exists()
        assert any("/releases/download/model-v7/model.skops" in r.path for r in public.request_log)
        with pytest.raises(ArtifactError, match="not found in the model store"):
            anonymous.fetch("github-release://acme/churn/model-nope/model.skops", tmp_path / "cache")


def test_private_repository_fetch_without_token_says_why(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v8")
    uri = store_for(gh).publish(folder, "v8", sha)
    with pytest.raises(ArtifactError, match="private repository needs GITHUB_TOKEN"):
        store_for(gh, token=None).fetch(uri, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("model.skops"))


def test_missing_release_or_asset(gh: FakeGitHub, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="release model-zzz not found"):
        store_for(gh).fetch("github-release://acme/churn/model-zzz/model.skops", tmp_path)
    folder, sha = make_candidate(tmp_path, "v9")
    store_for(gh).publish(folder, "v9", sha)
    with pytest.raises(ArtifactError, match="has no asset other.bin"):
        store_for(gh).fetch("github-release://acme/churn/model-v9/other.bin", tmp_path)


def test_transient_download_errors_are_retried(gh: FakeGitHub, tmp_path: Path) -> None:
    folder, sha = make_candidate(tmp_path, "v10")
    uri = store_for(gh).publish(folder, "v10", sha)
    gh.fail_next("GET", r"/releases/assets/\d+$", status=503, times=2)
    assert store_for(gh).fetch(uri, tmp_path / "cache").read_bytes() == b"model bytes of v10"


def test_the_token_goes_only_over_https_or_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://attacker.example/api")
    with pytest.raises(ArtifactError, match=r"github-release://acme/churn: .*only sent over https"):
        GitHubReleaseStore.from_url(f"github-release://{REPO}", token=TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example/api/v3/")
    assert GitHubReleaseStore(REPO, token=TOKEN).api_url == "https://ghe.example/api/v3"


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/x",
        "github-release://acme",
        "github-release://acme/churn/tag",
        "github-release://acme/churn/../x/model.skops",
        "github-release://ac me/churn",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ArtifactError, match=url.split("://")[0]):
        parse_release_url(url)


def test_url_helpers() -> None:
    loc = parse_release_url("github-release://acme/churn/model-1/model.skops")
    assert (loc.repository, loc.tag, loc.asset) == ("acme/churn", "model-1", "model.skops")
    assert parse_release_url("github-release://acme/churn/").tag is None
    assert web_root("https://api.github.com") == "https://github.com"
    assert web_root("https://ghe.example.com/api/v3/") == "https://ghe.example.com"
