"""The one way gitops-ml talks to GitHub's REST API: `GitHubClient`, and the rules it keeps.

Pull requests and comments (forge/github.py, used by the retraining and challenger PRs and the CI
comment) and the release model store (registry/github_release.py) both go through it:
- which host may receive the token (`api_url_for`: GITHUB_API_URL checked against the remote;
  https only, plain http to loopback only; absolute URLs from answers only to the API's own hosts);
- timeouts, `Authorization` on every request, the token in no log line, exception or repr;
- retries: an idempotent call (GET, PATCH of a body, PUT, DELETE) is retried with exponential
  backoff after a 5xx, a dropped connection or a timeout; a POST never is, except after a
  rate-limit refusal (GitHub did not process it). A write that must not happen twice goes through
  `GitHubClient.once`, which asks whether a failed attempt took effect before trying again;
- rate limits: 429, or 403 with `Retry-After`, `x-ratelimit-remaining: 0` or a "rate limit"
  message, waits as long as GitHub says (or `rate_limit_wait_s` for a secondary limit without a
  header) and tries again; a wait longer than `max_rate_limit_wait_s` is an error instead;
- pagination by the `Link: <...>; rel="next"` header;
- errors: `GitHubError` (a ForgeError) naming what failed, the status, GitHub's message and a hint
  for 401/403/404.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from gitops_ml.errors import GitopsMLError

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
API_URL_ENV = "GITHUB_API_URL"  # set by GitHub Actions, also on GitHub Enterprise runners
UPLOADS_URL = "https://uploads.github.com"  # github.com's release asset uploads (GHE: HOST/api/uploads)
_LOOPBACK = ("127.0.0.1", "localhost")
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})  # our PATCHes set a body
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_T = TypeVar("_T")


class ForgeError(GitopsMLError):
    """GitHub could not be reached, refused a request, or is not the host a token may go to."""


def _host_of(url: str) -> str:
    """Host of an https or scp-style (git@host:owner/name) remote, lower-cased; '' if none."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:]+)", url, re.IGNORECASE) or re.match(
        r"^[^@/]+@([^:/]+):", url
    )
    return match.group(1).lower() if match else ""


def check_transport(url: str, where: str = "GitHub API URL") -> None:
    """ForgeError unless `url` is https, or plain http to this machine (a test server)."""
    if not url.lower().startswith("https://") and _host_of(url) not in _LOOPBACK:
        raise ForgeError(f"{where}={url!r}: a token is only sent over https (plain http: loopback only)")


def api_url_for(remote_url: str | None, env_url: str | None = None) -> str:
    """The REST API of the repository's own host: `GITHUB_API_URL` if set, else derived from the
    remote (github.com -> api.github.com, another host -> https://HOST/api/v3).

    Never read from the repository's config: a PR could otherwise send the token to any host.
    When both are known they must agree (api.github.com for github.com, the remote's own host for
    an Enterprise server), or ForgeError refuses before any token is sent.
    """
    env_url = (env_url if env_url is not None else os.environ.get(API_URL_ENV, "")).strip().rstrip("/")
    remote_host = _host_of(remote_url or "")
    if not env_url:
        if not remote_host or remote_host == "github.com":
            return DEFAULT_API_URL
        return f"https://{remote_host}/api/v3"
    api_host = _host_of(env_url)
    check_transport(env_url, API_URL_ENV)
    expected = "api.github.com" if remote_host == "github.com" else remote_host
    if remote_host and api_host != expected:
        raise ForgeError(
            f"{API_URL_ENV}={env_url!r} is not the API of the repository's host {remote_host!r} "
            f"(expected {expected}); refusing to send a token there"
        )
    return env_url


def web_root(api_url: str) -> str:
    """Where browser downloads live: github.com for api.github.com, HOST for HOST/api/v3."""
    api_url = api_url.rstrip("/")
    if api_url == DEFAULT_API_URL:
        return "https://github.com"
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/api/v3")]
    return api_url


def status_hint(status: int | None, access: str) -> str:
    """What a refusal most likely means, for the message; `access` names the permission needed."""
    if status == 401:
        return " (check the token)"
    if status in (403, 404):
        return f" (repository not found, or the token lacks access: {access})"
    return ""


class GitHubError(ForgeError):
    """One call failed (after its retries). `status` is None for a transport failure; `transient`
    says whether another attempt may succeed; `retry_after` is the wait a rate limit asks for."""

    def __init__(
        self, message: str, *, status: int | None, transient: bool, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


def _rate_limit_wait(response: httpx.Response, message: str, default: float) -> float | None:
    """Seconds GitHub asks us to wait, or None when the refusal is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return float(retry_after)
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(0.0, int(reset) - time.time()) + 1.0
    if response.status_code == 429 or "rate limit" in message.lower():
        return default  # a secondary rate limit without a header: GitHub says "wait a few minutes"
    return None


def _verify() -> ssl.SSLContext | bool:
    """TLS trust: REQUESTS_CA_BUNDLE first (how an Enterprise server's private CA was configured
    when this went through PyGithub and requests), else httpx's own SSL_CERT_FILE / SSL_CERT_DIR."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE", "").strip()
    if bundle:
        return ssl.create_default_context(cafile=bundle)
    return True


def _untrusted_certificate(exc: BaseException) -> bool:
    """A certificate that fails verification fails the same way on every attempt."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class GitHubClient:
    """httpx over one GitHub API root (https://api.github.com or https://HOST/api/v3).

    `label` (e.g. the repository) and `access` (the permission a 403/404 most likely lacks) go
    into error messages. `write_interval_s` spaces writes, as GitHub asks of integrations to stay
    clear of secondary rate limits.
    """

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        label: str,
        access: str,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        rate_limit_wait_s: float = 60.0,
        max_rate_limit_wait_s: float = 600.0,
        write_interval_s: float = 0.0,
        per_page: int = 100,
    ):
        self.api_url = api_url.rstrip("/")
        if token:  # an anonymous client (public release downloads) sends nothing worth guarding
            check_transport(self.api_url)
        self.label = label
        self.access = access
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.rate_limit_wait_s = rate_limit_wait_s
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.write_interval_s = write_interval_s
        self.per_page = per_page
        self._last_write = 0.0
        # where an absolute URL from an answer (next page, upload_url, an asset) may point
        self._origins = {_origin(self.api_url), _origin(web_root(self.api_url))}
        if self.api_url == DEFAULT_API_URL:
            self._origins.add(_origin(UPLOADS_URL))
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "gitops-ml",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # httpx drops Authorization when a redirect leaves the origin (asset downloads go to a CDN)
        self._http = httpx.Client(headers=headers, timeout=timeout_s, follow_redirects=True, verify=_verify())

    def __repr__(self) -> str:  # never the headers: they hold the token
        return f"GitHubClient({self.api_url!r}, label={self.label!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        """`/repos/...` under the API root; an absolute URL only on the API's own hosts."""
        if "://" not in path_or_url:
            return f"{self.api_url}{path_or_url}"
        if _origin(path_or_url) not in self._origins:
            raise ForgeError(
                f"GitHub {self.api_url} ({self.label}): refusing to send a request to "
                f"{urlsplit(path_or_url).netloc!r}, which is not this API's host"
            )
        return path_or_url

    def request(
        self,
        what: str,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call, retried as the module docstring says; a non-2xx answer raises GitHubError."""
        url = self.url(path_or_url)

        def attempt() -> httpx.Response:
            response = self._http.request(
                method, url, params=params, json=json, content=content, headers=headers
            )
            self._raise_for_status(what, response)
            return response

        return self._retrying(what, method, attempt)

    def json(self, what: str, method: str, path_or_url: str, **kwargs: Any) -> Any:
        return self.request(what, method, path_or_url, **kwargs).json()

    def paginate(
        self, what: str, path: str, params: Mapping[str, Any] | None = None, *, limit: int = 10_000
    ) -> list[Any]:
        """Every item of a list endpoint, page after page (`Link: rel="next"`), at most `limit`."""
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, Any] | None = {"per_page": self.per_page, **(params or {})}
        while url is not None and len(items) < limit:
            response = self.request(what, "GET", url, params=query)
            items.extend(response.json())
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query
        return items[:limit]

    def stream(
        self,
        what: str,
        path_or_url: str,
        consume: Callable[[Iterator[bytes]], _T],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> _T:
        """GET a body in 1 MiB blocks into `consume` (run again from the start on a retry)."""
        url = self.url(path_or_url)

        def attempt() -> _T:
            with self._http.stream("GET", url, headers=headers) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for_status(what, response)
                return consume(response.iter_bytes(1 << 20))

        return self._retrying(what, "GET", attempt)

    def once(self, what: str, write: Callable[[], _T], done: Callable[[], _T | None]) -> _T:
        """A write that must not happen twice (a PR, a comment, a release, an asset): after a
        transient failure, `done()` is asked whether the attempt took effect after all (a 500 or a
        lost answer can hide a PR that was created) and its answer is returned instead of writing
        again; only when it says None is the write tried again, with backoff."""
        attempt = 0
        while True:
            try:
                return write()
            except GitHubError as exc:
                attempt += 1
                if not exc.transient or attempt > self.max_retries:
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1)
                logger.warning("%s; checking whether it took effect, then retrying in %.1f s", exc, delay)
                time.sleep(delay)
                found = done()
                if found is not None:
                    return found

    # -- internals ------------------------------------------------------------------------------
    def _retrying(self, what: str, method: str, attempt_fn: Callable[[], _T]) -> _T:
        method = method.upper()
        attempt = 0
        while True:
            self._space_writes(method)
            try:
                return attempt_fn()
            except httpx.TransportError as exc:  # no answer: a POST may or may not have happened
                error = GitHubError(
                    self._message(what, f"{type(exc).__name__}: {exc}", None),
                    status=None,
                    transient=not _untrusted_certificate(exc),
                )
                cause: BaseException = exc
            except GitHubError as exc:
                error, cause = exc, exc
            attempt += 1
            rate_limited = error.retry_after is not None
            replay = rate_limited or (error.transient and method in _IDEMPOTENT)
            if not replay or attempt > self.max_retries:
                if error is cause:
                    raise error
                raise error from cause
            delay = error.retry_after if rate_limited else self.backoff_s * 2 ** (attempt - 1)
            assert delay is not None
            logger.warning("%s; retrying in %.1f s", error, delay)
            time.sleep(delay)

    def _space_writes(self, method: str) -> None:
        if method in _READS or self.write_interval_s <= 0:
            return
        wait = self._last_write + self.write_interval_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_write = time.monotonic()

    def _raise_for_status(self, what: str, response: httpx.Response) -> None:
        if response.is_success:
            return
        status = response.status_code
        message, errors = "", None
        try:
            data = response.json()
        except ValueError:
            message = response.text[:200]
        else:
            if isinstance(data, dict):
                message, errors = str(data.get("message", "")), data.get("errors")
        detail = f"{status} {message}".rstrip() + (f" {errors}" if errors else "")
        wait = _rate_limit_wait(response, message, self.rate_limit_wait_s)
        if wait is not None and wait > self.max_rate_limit_wait_s:
            detail += f" (rate limited for {wait:.0f} s more: giving up)"
            wait = None
        raise GitHubError(
            self._message(what, detail, status),
            status=status,
            transient=status >= 500 or wait is not None,
            retry_after=wait,
        )

    def _message(self, what: str, detail: str, status: int | None) -> str:
        return f"GitHub {self.api_url} ({self.label}): could not {what}: {detail}{status_hint(status, self.access)}"
