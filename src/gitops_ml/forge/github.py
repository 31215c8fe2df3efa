"""GitHub pull requests for the retraining step, through PyGithub.

Retries: idempotent requests (GET, PATCH of a body, ...) are retried by urllib3 with exponential
backoff on 5xx, dropped connections and rate limits. A POST is replayed by urllib3 only when
GitHub refused it for a rate limit (the request was not processed). Any other failed POST is
retried here, after checking whether the first attempt took effect (a 500 or a lost answer can
hide a PR that was in fact created), so a flaky API never yields a duplicate pull request.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gitops_ml.forge.github_api import ForgeError, retry_call, status_hint
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT, truncate_markdown

logger = logging.getLogger(__name__)

TRUNCATION_NOTE = "\n\n---\n_Truncated by gitops-ml: the full report is in the run's artifacts._\n"
_T = TypeVar("_T")


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    url: str  # the HTML page
    head_branch: str
    base_branch: str
    title: str
    labels: tuple[str, ...] = field(default_factory=tuple)
    state: str = "open"


@dataclass(frozen=True)
class CommentInfo:
    id: int
    author: str  # login of whoever wrote it
    body: str


MAX_LISTED = 10_000  # comments or files read from one PR: bounds the work on a hostile PR


def truncate_body(body: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Fit GitHub's body limit, keeping the start (the verdict comes first) and saying so."""
    return truncate_markdown(body, limit, TRUNCATION_NOTE)


def _make_retry(max_retries: int, backoff_factor: float, secondary_rate_wait: float) -> Any:
    from github import GithubRetry

    class _SafeRetry(GithubRetry):
        """GithubRetry that replays a POST only after a rate-limit refusal (403/429)."""

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method.upper() == "POST":
                return status_code in (403, 429) and super().is_retry("GET", status_code, has_retry_after)
            return super().is_retry(method, status_code, has_retry_after)

    return _SafeRetry(
        total=max_retries,
        backoff_factor=backoff_factor,
        secondary_rate_wait=secondary_rate_wait,
        # POST is absent: urllib3 then never replays it after a read error or a 5xx.
        # PATCH is here because our only PATCH (set the PR body) is idempotent.
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"}),
        respect_retry_after_header=True,
    )


class GitHubForge:
    """One repository on github.com or a GitHub Enterprise server (api_url=https://HOST/api/v3)."""

    def __init__(
        self,
        repository: str,
        token: str,
        api_url: str = "https://api.github.com",
        *,
        max_retries: int = 5,
        backoff_factor: float = 1.0,
        secondary_rate_wait: float = 60.0,
        timeout_s: int = 30,
        throttle: bool = True,
    ):
        """throttle=False drops PyGithub's pauses between requests (0.25 s) and writes (1 s): fine
        for tests and for a fake server, not for github.com, whose secondary rate limits they avoid."""
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise ForgeError(f"forge.repository: expected 'owner/name', got {repository!r}")
        if not token:
            raise ForgeError("GitHubForge needs a token (GITHUB_TOKEN, GH_TOKEN or a Prefect Secret block)")
        from github import Auth, Github

        self.repository = repository
        self.owner = repository.split("/")[0]
        self.api_url = api_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        kwargs: dict[str, Any] = {}
        if not throttle:
            kwargs.update(seconds_between_requests=None, seconds_between_writes=None)
        self._gh = Github(
            base_url=self.api_url,
            auth=Auth.Token(token),
            retry=_make_retry(max_retries, backoff_factor, secondary_rate_wait),
            timeout=timeout_s,
            per_page=100,
            lazy=True,  # objects built from a URL do not GET themselves until needed
            **kwargs,
        )
        self._repo = self._gh.get_repo(repository, lazy=True)

    # -- queries --------------------------------------------------------------------------------
    def find_open_pr(self, label: str, head_prefix: str) -> PullRequestInfo | None:
        """The oldest open PR from this repository whose head starts with head_prefix and which
        carries `label`; None if there is none."""
        matches = [
            pr
            for pr in self._list_open_prs()
            if pr.head_branch.startswith(head_prefix) and label.lower() in {x.lower() for x in pr.labels}
        ]
        return min(matches, key=lambda p: p.number) if matches else None

    def find_open_pr_by_head(self, branch: str) -> PullRequestInfo | None:
        prs = self._call(
            f"list open PRs with head {branch}",
            lambda: [
                self._info(p) for p in self._repo.get_pulls(state="open", head=f"{self.owner}:{branch}")
            ],
        )
        prs = [p for p in prs if p.head_branch == branch]
        return min(prs, key=lambda p: p.number) if prs else None

    def _list_open_prs(self) -> list[PullRequestInfo]:
        def run() -> list[PullRequestInfo]:
            out = []
            for pr in self._repo.get_pulls(state="open"):
                head_repo = pr.head.repo
                # a fork's branch (or a deleted fork's) is not ours to push to
                if head_repo is None or head_repo.full_name.lower() != self.repository.lower():
                    continue
                out.append(self._info(pr))
            return out

        return self._call("list open pull requests", run)

    # -- changes --------------------------------------------------------------------------------
    def open_pr(
        self, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequestInfo:
        """Open a PR (or adopt the open one already on `head`) and add `labels`."""
        body = truncate_body(body)

        def create() -> PullRequestInfo:
            return self._info(self._repo.create_pull(base=base, head=head, title=title, body=body))

        existing = self.find_open_pr_by_head(head)
        info = existing or self._post_once(
            f"open a pull request from {head} into {base}", create, lambda: self.find_open_pr_by_head(head)
        )
        missing = [x for x in labels if x.lower() not in {y.lower() for y in info.labels}]
        if missing:
            # adding a label twice is harmless, so this POST may simply be retried
            self._post_once(
                f"label PR #{info.number}",
                lambda: self._repo.get_issue(info.number).add_to_labels(*missing),
                lambda: None,
            )
            info = PullRequestInfo(
                info.number,
                info.url,
                info.head_branch,
                info.base_branch,
                info.title,
                (*info.labels, *missing),
                info.state,
            )
        return info

    def comment(self, pr_number: int, body: str) -> str:
        """Post a comment; returns its URL. A retry after an unclear failure first looks for it."""
        body = truncate_body(body)

        def already() -> str | None:
            comments = list(self._repo.get_issue(pr_number).get_comments())
            for c in reversed(comments[-20:]):
                if c.body == body:
                    return str(c.html_url)
            return None

        return self._post_once(
            f"comment on PR #{pr_number}",
            lambda: str(self._repo.get_issue(pr_number).create_comment(body).html_url),
            already,
        )

    def issue_comments(self, number: int) -> list[CommentInfo]:
        """Every comment of issue/PR `number`, oldest first, all pages (at most MAX_LISTED)."""
        return self._call(
            f"list the comments of #{number}",
            lambda: [
                CommentInfo(c.id, c.user.login if c.user else "", c.body or "")
                for c in itertools.islice(self._repo.get_issue(number).get_comments(), MAX_LISTED)
            ],
        )

    def edit_comment(self, number: int, comment_id: int, body: str, *, author: str) -> str:
        """Replace the body of comment `comment_id`, re-checking first that `author` wrote it;
        returns its URL. ForgeError if the comment is someone else's."""

        def run() -> str:
            comment = self._repo.get_issue(number).get_comment(comment_id)
            if (comment.user.login if comment.user else "") != author:
                raise ForgeError(
                    f"comment {comment_id} on #{number} was not written by {author}; not editing it"
                )
            comment.edit(body)
            return str(comment.html_url)

        try:
            return run()
        except ForgeError:
            raise
        except Exception as exc:  # noqa: BLE001 - one clear message
            raise self._error(f"edit comment {comment_id} on #{number}", exc) from exc

    def pull_files(self, number: int) -> list[str]:
        """Paths pull request `number` changes (all pages, at most MAX_LISTED)."""
        return self._call(
            f"list the files of PR #{number}",
            lambda: [
                f.filename for f in itertools.islice(self._repo.get_pull(number).get_files(), MAX_LISTED)
            ],
        )

    def pull_head_sha(self, number: int) -> str:
        return self._call(f"read PR #{number}", lambda: str(self._repo.get_pull(number).head.sha))

    def find_pr_by_head_sha(self, head_owner: str, head_branch: str, head_sha: str) -> int | None:
        """The open PR whose head is `head_owner:head_branch` at `head_sha` (fork PRs included)."""
        pulls = self._call(
            f"list open PRs with head {head_owner}:{head_branch}",
            lambda: list(
                itertools.islice(self._repo.get_pulls(state="open", head=f"{head_owner}:{head_branch}"), 100)
            ),
        )
        numbers = [p.number for p in pulls if p.head.sha == head_sha]
        return min(numbers) if numbers else None

    def update_pr_body(self, pr_number: int, body: str) -> None:
        body = truncate_body(body)
        self._call(
            f"update the body of PR #{pr_number}", lambda: self._repo.get_pull(pr_number).edit(body=body)
        )

    def ensure_label(self, name: str, color: str = "fbca04", description: str = "") -> None:
        """Create the label unless it exists (either way the end state is the same)."""
        from github import GithubException

        def run() -> None:
            try:
                self._repo.get_label(name).color  # noqa: B018 - lazy object: an unset attribute fetches it
                return
            except GithubException as exc:
                if exc.status != 404:
                    raise
            try:
                self._repo.create_label(name=name, color=color.lstrip("#"), description=description)
            except GithubException as exc:
                # 422 already_exists: created by someone else in between
                if exc.status != 422:
                    raise

        self._post_once(f"ensure label {name!r}", run, lambda: None)

    # -- helpers --------------------------------------------------------------------------------
    def _info(self, pr: Any) -> PullRequestInfo:
        return PullRequestInfo(
            number=pr.number,
            url=pr.html_url,
            head_branch=pr.head.ref,
            base_branch=pr.base.ref,
            title=pr.title,
            labels=tuple(label.name for label in pr.labels),
            state=pr.state,
        )

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run an idempotent call (urllib3 already retried it) and turn failures into ForgeError."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
            raise self._error(what, exc) from exc

    def _post_once(self, what: str, fn: Callable[[], _T], find_done: Callable[[], _T | None]) -> _T:
        """Retry a non-idempotent call: before each new attempt, ask `find_done` whether the last
        one took effect after all, and return that instead of doing it twice."""
        return retry_call(
            what,
            fn,
            catch=(Exception,),
            transient=_transient,
            error=self._error,
            max_retries=self.max_retries,
            backoff_s=self.backoff_factor,
            done=lambda: self._call(f"check whether '{what}' took effect", find_done),
        )

    def _error(self, what: str, exc: BaseException) -> ForgeError:
        return ForgeError(f"GitHub {self.api_url} ({self.repository}): could not {what}: {_describe(exc)}")


def _transient(exc: BaseException) -> bool:
    """5xx, dropped connections, timeouts and rate limits are worth another try; 4xx are not."""
    from github import GithubException, RateLimitExceededException
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import RetryError, Timeout

    if isinstance(exc, RateLimitExceededException):
        return True
    if isinstance(exc, GithubException):
        return exc.status >= 500
    return isinstance(exc, RequestsConnectionError | Timeout | RetryError | ConnectionError | TimeoutError)


def _describe(exc: BaseException) -> str:
    from github import GithubException

    if isinstance(exc, GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
        detail = f"{exc.status} {message}"
        if errors:
            detail += f" {errors}"
        return detail + status_hint(exc.status, "pull requests and issues read/write")
    return f"{type(exc).__name__}: {exc}"
