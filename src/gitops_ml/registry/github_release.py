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
Enterprise), else https://api.github.com.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gitops_ml.errors import ArtifactError
from gitops_ml.forge.github_api import ForgeError, api_url_for, retry_call, status_hint, web_root
from gitops_ml.io_utils import sha256_file
from gitops_ml.registry.artifacts import METADATA_FILE, MODEL_FILE

logger = logging.getLogger(__name__)

SCHEME = "github-release://"
TAG_PREFIX = "model-"
_CONTENT_TYPES = {MODEL_FILE: "application/octet-stream", METADATA_FILE: "application/json"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_T = TypeVar("_T")


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


class _HTTPStatusError(Exception):
    def __init__(self, status: int, method: str, url: str, detail: str):
        super().__init__(f"{method} {url}: HTTP {status} {detail}")
        self.status = status


def _transient(exc: BaseException) -> bool:
    """5xx, rate limits (429) and dropped connections are worth another try; other 4xx are not."""
    status = exc.status if isinstance(exc, _HTTPStatusError) else None
    return status is None or status >= 500 or status == 429


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
        with self._client() as client:
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
        with self._client() as client:
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
    def _client(self) -> Any:
        import httpx

        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "gitops-ml",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # httpx drops Authorization when a redirect leaves the origin (asset downloads go to a CDN)
        return httpx.Client(headers=headers, timeout=self.timeout_s, follow_redirects=True)

    def _api(self, path: str) -> str:
        return f"{self.api_url}/repos/{self.repository}{path}"

    def _request(
        self, client: Any, method: str, url: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> Any:
        """One request; HTTP errors become _HTTPStatusError (callers decide what is fatal)."""
        response = client.request(method, url, **kwargs)
        if response.status_code not in ok:
            try:
                detail = response.json().get("message", "")
            except ValueError:
                detail = response.text[:200]
            raise _HTTPStatusError(response.status_code, method, url, detail)
        return response

    def _retry(
        self,
        what: str,
        fn: Callable[[], _T],
        *,
        done: Callable[[], _T | None] | None = None,
    ) -> _T:
        """Retry 5xx, 429 and dropped connections with backoff. A non-idempotent call passes `done`:
        it is retried only after `done()` says the failed attempt did not take effect."""
        import httpx

        return retry_call(
            what,
            fn,
            catch=(_HTTPStatusError, httpx.TransportError),
            transient=_transient,
            error=self._error,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            done=done,
        )

    def _error(self, what: str, exc: BaseException) -> ArtifactError:
        status = exc.status if isinstance(exc, _HTTPStatusError) else None
        hint = status_hint(status, "contents read/write")
        return ArtifactError(f"GitHub {self.api_url} ({self.repository}): could not {what}: {exc}{hint}")

    # -- releases -------------------------------------------------------------------------------
    def _get_release(self, client: Any, tag: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            try:
                return self._request(client, "GET", self._api(f"/releases/tags/{tag}")).json()
            except _HTTPStatusError as exc:
                if exc.status == 404:
                    return None
                raise

        return self._retry(f"read release {tag}", run)

    def _get_or_create_release(self, client: Any, tag: str, version: str, sha256: str) -> dict[str, Any]:
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

        def create() -> dict[str, Any]:
            try:
                return self._request(client, "POST", self._api("/releases"), ok=(201,), json=body).json()
            except _HTTPStatusError as exc:
                if exc.status == 422:  # already_exists: created by a concurrent or earlier attempt
                    found = self._get_release(client, tag)
                    if found is not None:
                        return found
                raise

        return self._retry(f"create release {tag}", create, done=lambda: self._get_release(client, tag))

    def _find_asset(self, client: Any, release_id: int, name: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            assets = self._request(
                client, "GET", self._api(f"/releases/{release_id}/assets"), params={"per_page": 100}
            ).json()
            return next(
                (a for a in assets if a["name"] == name and a.get("state", "uploaded") == "uploaded"), None
            )

        return self._retry(f"list assets of release {release_id}", run)

    def _upload(self, client: Any, release: dict[str, Any], path: Path) -> dict[str, Any]:
        url = release["upload_url"].split("{", 1)[0]
        data = path.read_bytes()

        def run() -> dict[str, Any]:
            try:
                return self._request(
                    client,
                    "POST",
                    url,
                    ok=(201,),
                    params={"name": path.name},
                    content=data,
                    headers={"Content-Type": _CONTENT_TYPES.get(path.name, "application/octet-stream")},
                ).json()
            except _HTTPStatusError as exc:
                if exc.status == 422:  # already uploaded by an attempt whose answer was lost
                    found = self._find_asset(client, release["id"], path.name)
                    if found is not None:
                        return found
                raise

        return self._retry(
            f"upload {path.name} to release {release['tag_name']}",
            run,
            done=lambda: self._find_asset(client, release["id"], path.name),
        )

    def _delete_asset(self, client: Any, asset: dict[str, Any]) -> None:
        def run() -> None:
            try:
                self._request(client, "DELETE", asset["url"], ok=(204,))
            except _HTTPStatusError as exc:
                if exc.status != 404:
                    raise

        self._retry(f"delete asset {asset['name']}", run)

    def _remote_sha256(self, client: Any, asset: dict[str, Any]) -> str:
        def run() -> str:
            digest = hashlib.sha256()
            with client.stream(
                "GET", asset["url"], headers={"Accept": "application/octet-stream"}
            ) as response:
                if response.status_code != 200:
                    raise _HTTPStatusError(response.status_code, "GET", asset["url"], "")
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
            return digest.hexdigest()

        return self._retry(f"read back {asset['name']}", run)

    def _download(self, client: Any, url: str, target: Path, *, api: bool, uri: str) -> None:
        headers = {"Accept": "application/octet-stream"}
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"

        def run() -> None:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise _HTTPStatusError(response.status_code, "GET", url, "")
                with open(tmp, "wb") as handle:
                    handle.writelines(response.iter_bytes(1 << 20))

        try:
            self._retry(f"download {target.name}", run)
            tmp.replace(target)
        except ArtifactError as exc:
            if isinstance(exc.__cause__, _HTTPStatusError) and exc.__cause__.status in (401, 403, 404):
                where = "" if api else " (a private repository needs GITHUB_TOKEN to download)"
                raise ArtifactError(f"{uri}: artifact not found in the model store{where}: {exc}") from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)
