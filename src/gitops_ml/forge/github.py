"""GitHub pull requests, labels and comments for the retraining and challenger PRs and the CI comment.

Every call goes through `forge.github_api.GitHubClient` (one transport for all of GitHub):
idempotent requests (GET, PATCH of a body) are retried there with exponential backoff on 5xx,
dropped connections and rate limits; a POST is replayed only after a rate-limit refusal (the
request was not processed). Any other failed POST (a PR, a comment) is retried through
`GitHubClient.once`, after checking whether the first attempt took effect (a 500 or a lost answer
can hide a PR that was in fact created), so a flaky API never yields a duplicate pull request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gitops_ml.forge.github_api import DEFAULT_API_URL, ForgeError, GitHubClient, GitHubError
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT, truncate_markdown

TRUNCATION_NOTE = "\n\n---\n_Truncated by gitops-ml: the full report is in the run's artifacts._\n"


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


class GitHubForge:
    """One repository on github.com or a GitHub Enterprise server (api_url=https://HOST/api/v3)."""

    def __init__(
        self,
        repository: str,
        token: str,
        api_url: str = DEFAULT_API_URL,
        *,
        max_retries: int = 5,
        backoff_factor: float = 1.0,
        secondary_rate_wait: float = 60.0,
        timeout_s: int = 30,
        throttle: bool = True,
        per_page: int = 100,
    ):
        """throttle=False drops the 1 s pause between writes: fine for tests and for a fake
        server, not for github.com, whose secondary rate limits it avoids."""
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise ForgeError(f"forge.repository: expected 'owner/name', got {repository!r}")
        if not token:
            raise ForgeError("GitHubForge needs a token (GITHUB_TOKEN, GH_TOKEN or a Prefect Secret block)")
        self.repository = repository
        self.owner = repository.split("/")[0]
        self.api_url = api_url.rstrip("/")
        self._api = GitHubClient(
            self.api_url,
            token,
            label=repository,
            access="pull requests and issues read/write",
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_factor,
            rate_limit_wait_s=secondary_rate_wait,
            write_interval_s=1.0 if throttle else 0.0,
            per_page=per_page,
        )
        self._repo = f"/repos/{quote(self.owner, safe='')}/{quote(repository.split('/')[1], safe='')}"

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
        pulls = self._api.paginate(
            f"list open PRs with head {branch}",
            f"{self._repo}/pulls",
            {"state": "open", "head": f"{self.owner}:{branch}"},
        )
        prs = [_info(p) for p in pulls if p["head"]["ref"] == branch]
        return min(prs, key=lambda p: p.number) if prs else None

    def _list_open_prs(self) -> list[PullRequestInfo]:
        pulls = self._api.paginate("list open pull requests", f"{self._repo}/pulls", {"state": "open"})
        # a fork's branch (or a deleted fork's) is not ours to push to
        return [
            _info(p)
            for p in pulls
            if (p["head"].get("repo") or {}).get("full_name", "").lower() == self.repository.lower()
        ]

    # -- changes --------------------------------------------------------------------------------
    def open_pr(
        self, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequestInfo:
        """Open a PR (or adopt the open one already on `head`) and add `labels`."""
        body = truncate_body(body)
        what = f"open a pull request from {head} into {base}"

        def create() -> PullRequestInfo:
            payload = {"base": base, "head": head, "title": title, "body": body}
            return _info(self._api.json(what, "POST", f"{self._repo}/pulls", json=payload))

        info = self.find_open_pr_by_head(head) or self._api.once(
            what, create, lambda: self.find_open_pr_by_head(head)
        )
        missing = [x for x in labels if x.lower() not in {y.lower() for y in info.labels}]
        if missing:
            label_what = f"label PR #{info.number}"
            # adding a label twice is harmless, so this POST may simply be retried
            self._api.once(
                label_what,
                lambda: self._api.request(
                    label_what, "POST", f"{self._repo}/issues/{info.number}/labels", json={"labels": missing}
                ),
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
        what = f"comment on PR #{pr_number}"

        def already() -> str | None:
            comments = self._comments(pr_number)
            for c in reversed(comments[-20:]):
                if c.get("body") == body:
                    return str(c["html_url"])
            return None

        def post() -> str:
            path = f"{self._repo}/issues/{pr_number}/comments"
            return str(self._api.json(what, "POST", path, json={"body": body})["html_url"])

        return self._api.once(what, post, already)

    def issue_comments(self, number: int) -> list[CommentInfo]:
        """Every comment of issue/PR `number`, oldest first, all pages (at most MAX_LISTED)."""
        return [
            CommentInfo(int(c["id"]), (c.get("user") or {}).get("login", ""), c.get("body") or "")
            for c in self._comments(number)
        ]

    def edit_comment(self, number: int, comment_id: int, body: str, *, author: str) -> str:
        """Replace the body of comment `comment_id`, re-checking first that `author` wrote it;
        returns its URL. ForgeError if the comment is someone else's."""
        what = f"edit comment {comment_id} on #{number}"
        path = f"{self._repo}/issues/comments/{comment_id}"
        comment = self._api.json(what, "GET", path)
        if (comment.get("user") or {}).get("login", "") != author:
            raise ForgeError(f"comment {comment_id} on #{number} was not written by {author}; not editing it")
        return str(self._api.json(what, "PATCH", path, json={"body": body})["html_url"])

    def pull_files(self, number: int) -> list[str]:
        """Paths pull request `number` changes (all pages, at most MAX_LISTED)."""
        files = self._api.paginate(
            f"list the files of PR #{number}", f"{self._repo}/pulls/{number}/files", limit=MAX_LISTED
        )
        return [str(f["filename"]) for f in files]

    def pull_head_sha(self, number: int) -> str:
        return str(self._api.json(f"read PR #{number}", "GET", f"{self._repo}/pulls/{number}")["head"]["sha"])

    def find_pr_by_head_sha(self, head_owner: str, head_branch: str, head_sha: str) -> int | None:
        """The open PR whose head is `head_owner:head_branch` at `head_sha` (fork PRs included)."""
        pulls = self._api.paginate(
            f"list open PRs with head {head_owner}:{head_branch}",
            f"{self._repo}/pulls",
            {"state": "open", "head": f"{head_owner}:{head_branch}"},
            limit=100,
        )
        numbers = [int(p["number"]) for p in pulls if p["head"]["sha"] == head_sha]
        return min(numbers) if numbers else None

    def update_pr_body(self, pr_number: int, body: str) -> None:
        body = truncate_body(body)
        self._api.request(
            f"update the body of PR #{pr_number}",
            "PATCH",
            f"{self._repo}/pulls/{pr_number}",
            json={"body": body},
        )

    def ensure_label(self, name: str, color: str = "fbca04", description: str = "") -> None:
        """Create the label unless it exists (either way the end state is the same)."""
        what = f"ensure label {name!r}"

        def run() -> bool:
            try:
                self._api.request(what, "GET", f"{self._repo}/labels/{quote(name, safe='')}")
                return True
            except GitHubError as exc:
                if exc.status != 404:
                    raise
            payload = {"name": name, "color": color.lstrip("#"), "description": description}
            try:
                self._api.request(what, "POST", f"{self._repo}/labels", json=payload)
            except GitHubError as exc:
                # 422 already_exists: created by someone else in between
                if exc.status != 422:
                    raise
            return True

        # run() looks before it creates, so a retry after an unclear failure is safe
        self._api.once(what, run, lambda: None)

    # -- helpers --------------------------------------------------------------------------------
    def _comments(self, number: int) -> list[dict[str, Any]]:
        return self._api.paginate(
            f"list the comments of #{number}", f"{self._repo}/issues/{number}/comments", limit=MAX_LISTED
        )


def _info(pr: dict[str, Any]) -> PullRequestInfo:
    return PullRequestInfo(
        number=int(pr["number"]),
        url=str(pr["html_url"]),
        head_branch=str(pr["head"]["ref"]),
        base_branch=str(pr["base"]["ref"]),
        title=str(pr["title"]),
        labels=tuple(str(label["name"]) for label in pr.get("labels") or ()),
        state=str(pr["state"]),
    )
