"""A model store in the repository's own GitHub Releases: no bucket, no account beyond GitHub.

Each promoted version is a release tagged `model-<version>` holding `model.skops` and
`metadata.json`; the pointer names it as `github-release://owner/name/model-<version>/model.skops`.

Publishing is idempotent (a rerun after a crash reuses the release and uploads only what is
missing) and refuses to change a version: a release that already holds a different model.skops
is an error, never overwritten. Every upload is read back and its sha256 checked. Fetching needs
no token for a public repository; a private one needs a token that can read contents. The sha256
of a fetched file is checked by the loader against the pointer, which is the trust anchor (a
release asset can be replaced by anyone with write access; the pointer changes only by commit).

API base: `api_url` argument, else `GITHUB_API_URL` (set by GitHub Actions, also on GitHub
Enterprise), else https://api.github.com. Every request goes through `forge.github_api.GitHubClient`
(the one GitHub transport: token rules, retries that never repeat a write, rate limits, errors).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.errors import ArtifactError
from gitops_ml.forge.github_api import (
    ForgeError,
    GitHubClient,
    GitHubError,
    api_url_for,
    check_transport,
    web_root,
)
from gitops_ml.io_utils import sha256_file
from gitops_ml.registry.artifacts import METADATA_FILE, MODEL_FILE

logger = logging.getLogger(__name__)

SCHEME = "github-release://"
TAG_PREFIX = "model-"
_CONTENT_TYPES = {MODEL_FILE: "application/octet-stream", METADATA_FILE: "application/json"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ReleaseLocation:
    """Parsed `github-release://owner/name[/tag/asset]`; tag and asset are None for a store URL."""

    repository: str
    tag: str | None = None
    asset: str | None = None


def parse_release_url(url: str) -> ReleaseLocation:
    """Split a store URL or an artifact URI; ArtifactError names the URL and what is wrong."""
    if not url.startswith(SCHEME):
        raise ArtifactError(f"{url}: not a {SCHEME} URL")
    parts = url[len(SCHEME) :].strip("/").split("/")
    if len(parts) not in (2, 4) or not all(_NAME.match(p) and p not in (".", "..") for p in parts):
        raise ArtifactError(
            f"{url}: expected {SCHEME}OWNER/NAME (store) or {SCHEME}OWNER/NAME/TAG/FILE (artifact); "
            "each part may hold only letters, digits, '_', '.', '-'"
        )
    repository = f"{parts[0]}/{parts[1]}"
    if len(parts) == 2:
        return ReleaseLocation(repository)
    return ReleaseLocation(repository, parts[2], parts[3])


class GitHubReleaseStore:
    """publish/fetch model artifacts as assets of `model-<version>` releases of one repository."""

    def __init__(
        self,
        repository: str,
        *,
        token: str | None = None,
        api_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
    ):
        if repository.count("/") != 1 or not all(_NAME.match(p) for p in repository.split("/")):
            raise ArtifactError(f"github-release store: expected 'owner/name', got {repository!r}")
        self.repository = repository
        self.token = token or None
        try:  # the token goes only over https (http: loopback) to GITHUB_API_URL or api.github.com
            self.api_url = (api_url or api_url_for(None)).rstrip("/")
            if self.token:
                check_transport(self.api_url)
        except ForgeError as exc:
            raise ArtifactError(f"{SCHEME}{repository}: {exc}") from exc
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    @classmethod
    def from_url(
        cls, url: str, *, token: str | None = None, api_url: str | None = None
    ) -> GitHubReleaseStore:
        """Store for a store URL or an artifact URI; the token comes from GITHUB_TOKEN / GH_TOKEN."""
        location = parse_release_url(url)
        if token is None:
            from gitops_ml.forge.tokens import resolve_token

            token = resolve_token()
        return cls(location.repository, token=token, api_url=api_url)

    # -- public API -----------------------------------------------------------------------------
    def artifact_uri(self, version: str, name: str = MODEL_FILE) -> str:
        return f"{SCHEME}{self.repository}/{self.tag_for(version)}/{name}"

    @staticmethod
    def tag_for(version: str) -> str:
        tag = f"{TAG_PREFIX}{version}"
        if not _NAME.match(tag):
            raise ArtifactError(f"model version {version!r}: not usable in a release tag")
        return tag

    def publish(self, local_dir: Path, version: str, sha256: str) -> str:
        """Upload model.skops + metadata.json of `local_dir` as release `model-<version>`; return the URI."""
        local_dir = Path(local_dir)
        for name in (MODEL_FILE, METADATA_FILE):
            if not (local_dir / name).is_file():
                raise ArtifactError(
                    f"{local_dir / name}: missing; a candidate holds {MODEL_FILE} and {METADATA_FILE}"
                )
        if sha256_file(local_dir / MODEL_FILE) != sha256:
            raise ArtifactError(f"{local_dir / MODEL_FILE}: sha256 does not match the candidate's metadata")
        if not self.token:
            raise ArtifactError(
                f"publishing to {SCHEME}{self.repository} needs a token allowed to create releases "
                "(GITHUB_TOKEN with `contents: write`)"
            )
        tag = self.tag_for(version)
        with self._client() as client, _as_artifact_error():
            release = self._get_or_create_release(client, tag, version, sha256)
            assets = {a["name"]: a for a in release.get("assets", [])}
            model = assets.get(MODEL_FILE)
            if model is not None and model.get("state", "uploaded") != "uploaded":
                # an interrupted upload leaves a 'starter' asset that blocks the name: remove it
                self._delete_asset(client, model)
                model = None
            if model is not None:
                actual = self._remote_sha256(client, model)
                if actual != sha256:
                    raise ArtifactError(
                        f"{self.artifact_uri(version)}: release {tag} already holds a different {MODEL_FILE} "
                        f"(sha256 {actual[:12]}, expected {sha256[:12]}); a published version is never replaced"
                    )
            else:
                model = self._upload(client, release, local_dir / MODEL_FILE)
                actual = self._remote_sha256(client, model)
                if actual != sha256:
                    self._delete_asset(client, model)
                    raise ArtifactError(
                        f"{self.artifact_uri(version)}: uploaded {MODEL_FILE} reads back with sha256 "
                        f"{actual[:12]}, expected {sha256[:12]}; removed it"
                    )
            meta = assets.get(METADATA_FILE)
            if meta is not None and meta.get("state", "uploaded") != "uploaded":
                self._delete_asset(client, meta)
                meta = None
            if meta is None:
                self._upload(client, release, local_dir / METADATA_FILE)
        logger.info("published %s", self.artifact_uri(version))
        return self.artifact_uri(version)

    def fetch(self, artifact_uri: str, cache_dir: Path) -> Path:
        """Download the artifact (and its metadata.json) once into `cache_dir`; return the model path.

        Temp file + rename, so a crash never leaves a half file under the final name. The caller
        checks sha256 against the pointer on every load.
        """
        location = parse_release_url(artifact_uri)
        if location.tag is None or location.asset is None:
            raise ArtifactError(f"{artifact_uri}: names a store, not an artifact (…/TAG/FILE)")
        if location.repository.lower() != self.repository.lower():
            raise ArtifactError(f"{artifact_uri}: not in this store ({SCHEME}{self.repository})")
        folder = Path(cache_dir) / hashlib.sha256(artifact_uri.encode()).hexdigest()[:16]
        target = folder / location.asset
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        with self._client() as client, _as_artifact_error():
            if self.token:
                release = self._get_release(client, location.tag)
                if release is None:
                    raise ArtifactError(
                        f"{artifact_uri}: release {location.tag} not found in {self.repository}"
                    )
                assets = {a["name"]: a for a in release.get("assets", [])}
                if location.asset not in assets:
                    raise ArtifactError(
                        f"{artifact_uri}: release {location.tag} has no asset {location.asset} "
                        f"(it has: {', '.join(sorted(assets)) or 'none'})"
                    )
                meta = assets.get(METADATA_FILE) if location.asset != METADATA_FILE else None
                self._download(client, assets[location.asset]["url"], target, api=True, uri=artifact_uri)
                if meta is not None:
                    self._download(client, meta["url"], folder / METADATA_FILE, api=True, uri=artifact_uri)
            else:
                base = f"{web_root(self.api_url)}/{self.repository}/releases/download/{location.tag}"
                self._download(client, f"{base}/{location.asset}", target, api=False, uri=artifact_uri)
                if location.asset != METADATA_FILE:
                    try:
                        self._download(
                            client,
                            f"{base}/{METADATA_FILE}",
                            folder / METADATA_FILE,
                            api=False,
                            uri=artifact_uri,
                        )
                    except ArtifactError:
                        logger.warning("%s: no %s beside it", artifact_uri, METADATA_FILE)
        return target

    # -- HTTP -----------------------------------------------------------------------------------
    def _client(self) -> GitHubClient:
        return GitHubClient(
            self.api_url,
            self.token,
            label=self.repository,
            access="contents read/write",
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
        )

    def _api(self, path: str) -> str:
        return f"/repos/{self.repository}{path}"

    # -- releases -------------------------------------------------------------------------------
    def _get_release(self, client: GitHubClient, tag: str) -> dict[str, Any] | None:
        try:
            return client.json(f"read release {tag}", "GET", self._api(f"/releases/tags/{tag}"))
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    def _get_or_create_release(
        self, client: GitHubClient, tag: str, version: str, sha256: str
    ) -> dict[str, Any]:
        existing = self._get_release(client, tag)
        if existing is not None:
            return existing
        body = {
            "tag_name": tag,
            "name": f"Model {version}",
            "body": f"Model {version}, published by gitops-ml on promotion.\n\n"
            f"sha256 of `{MODEL_FILE}`: `{sha256}`\n",
            "draft": False,
            "prerelease": False,
        }
        what = f"create release {tag}"

        def create() -> dict[str, Any]:
            try:
                return client.json(what, "POST", self._api("/releases"), json=body)
            except GitHubError as exc:
                if exc.status == 422:  # already_exists: created by a concurrent or earlier attempt
                    found = self._get_release(client, tag)
                    if found is not None:
                        return found
                raise

        return client.once(what, create, lambda: self._get_release(client, tag))

    def _find_asset(self, client: GitHubClient, release_id: int, name: str) -> dict[str, Any] | None:
        assets = client.paginate(
            f"list assets of release {release_id}", self._api(f"/releases/{release_id}/assets")
        )
        return next(
            (a for a in assets if a["name"] == name and a.get("state", "uploaded") == "uploaded"), None
        )

    def _upload(self, client: GitHubClient, release: dict[str, Any], path: Path) -> dict[str, Any]:
        url = release["upload_url"].split("{", 1)[0]
        data = path.read_bytes()
        what = f"upload {path.name} to release {release['tag_name']}"

        def run() -> dict[str, Any]:
            try:
                return client.json(
                    what,
                    "POST",
                    url,
                    params={"name": path.name},
                    content=data,
                    headers={"Content-Type": _CONTENT_TYPES.get(path.name, "application/octet-stream")},
                )
            except GitHubError as exc:
                if exc.status == 422:  # already uploaded by an attempt whose answer was lost
                    found = self._find_asset(client, release["id"], path.name)
                    if found is not None:
                        return found
                raise

        return client.once(what, run, lambda: self._find_asset(client, release["id"], path.name))

    def _delete_asset(self, client: GitHubClient, asset: dict[str, Any]) -> None:
        try:
            client.request(f"delete asset {asset['name']}", "DELETE", asset["url"])
        except GitHubError as exc:
            if exc.status != 404:
                raise

    def _remote_sha256(self, client: GitHubClient, asset: dict[str, Any]) -> str:
        def digest(blocks: Iterator[bytes]) -> str:
            h = hashlib.sha256()
            for block in blocks:
                h.update(block)
            return h.hexdigest()

        return client.stream(
            f"read back {asset['name']}", asset["url"], digest, headers={"Accept": "application/octet-stream"}
        )

    def _download(self, client: GitHubClient, url: str, target: Path, *, api: bool, uri: str) -> None:
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"

        def write(blocks: Iterator[bytes]) -> None:
            with open(tmp, "wb") as handle:
                handle.writelines(blocks)

        try:
            client.stream(
                f"download {target.name}", url, write, headers={"Accept": "application/octet-stream"}
            )
            tmp.replace(target)
        except GitHubError as exc:
            if exc.status in (401, 403, 404):
                where = "" if api else " (a private repository needs GITHUB_TOKEN to download)"
                raise ArtifactError(f"{uri}: artifact not found in the model store{where}: {exc}") from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _as_artifact_error() -> Iterator[None]:
    """A store failure is an ArtifactError (what promote, serving and the CLI report), message kept."""
    try:
        yield
    except ForgeError as exc:
        raise ArtifactError(str(exc)) from exc
