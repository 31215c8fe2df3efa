"""What every call to GitHub's REST API shares: which host may get the token, how failures read,
and how a failed call is retried without doing it twice.

Pull requests and comments (forge/github.py, through PyGithub) and the release model store
(registry/github_release.py, streaming assets through httpx) both come through here.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import TypeVar

from gitops_ml.errors import GitopsMLError

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
API_URL_ENV = "GITHUB_API_URL"  # set by GitHub Actions, also on GitHub Enterprise runners
_LOOPBACK = ("127.0.0.1", "localhost")
_T = TypeVar("_T")


class ForgeError(GitopsMLError):
    """GitHub could not be reached, refused a request, or is not the host a token may go to."""


def _host_of(url: str) -> str:
    """Host of an https or scp-style (git@host:owner/name) remote, lower-cased; '' if none."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:]+)", url, re.IGNORECASE) or re.match(
        r"^[^@/]+@([^:/]+):", url
    )
    return match.group(1).lower() if match else ""


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
    if not env_url.lower().startswith("https://") and api_host not in _LOOPBACK:
        raise ForgeError(
            f"{API_URL_ENV}={env_url!r}: a token is only sent over https (plain http: loopback only)"
        )
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


def retry_call(
    what: str,
    fn: Callable[[], _T],
    *,
    catch: tuple[type[BaseException], ...],
    transient: Callable[[BaseException], bool],
    error: Callable[[str, BaseException], Exception],
    max_retries: int,
    backoff_s: float,
    done: Callable[[], _T | None] | None = None,
) -> _T:
    """`fn()`, tried again after a transient failure (`catch`ed and `transient`), waiting
    `backoff_s * 2**n`; other failures and the last one become `error(what, exc)`.

    A call that must not run twice (creating a PR, a release, an asset) passes `done`: before each
    new attempt it is asked whether the failed one took effect after all, and its answer is
    returned instead of doing it again.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except catch as exc:
            attempt += 1
            if not transient(exc) or attempt > max_retries:
                raise error(what, exc) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            logger.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            if done is not None:
                result = done()
                if result is not None:
                    return result
