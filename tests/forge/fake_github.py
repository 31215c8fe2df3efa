"""A small, real HTTP server speaking the part of GitHub's REST API that gitops-ml uses.

Only the endpoints gitops-ml calls (through forge.github_api.GitHubClient, and CML's comment
create) are implemented, listed in ENDPOINTS; any other request gets a 404 and is kept in
`request_log`, so a missing endpoint shows up in a test.
State is in memory. Failure injection: `fail_next(method, path_regex, status=500, times=1)`, with
`status="reset"` to drop the connection without an answer. With `prefix="/api/v3"` it looks like
a GitHub Enterprise server. Requests without `Authorization: token|Bearer <token>` get a 401; `users`
maps further tokens to other logins (a comment's author is the login of the token that wrote
it). `tls=(certfile, keyfile)` serves HTTPS (for clients such as CML that only speak HTTPS to
an Enterprise host).

Usage:
    with FakeGitHub(token="t", repos=["acme/churn"]) as gh:
        GitHubForge("acme/churn", "t", gh.api_url, throttle=False).open_pr(...)
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

# (method, path pattern relative to the API prefix); the single source for docs and the report
ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET", "/repos/{owner}/{repo}"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}"),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{number}"),
    ("GET", "/repos/{owner}/{repo}/issues/{number}"),
    ("GET", "/repos/{owner}/{repo}/issues/{number}/comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{number}/comments"),
    ("GET", "/repos/{owner}/{repo}/issues/comments/{id}"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{id}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}/files"),
    ("GET", "/repos/{owner}/{repo}/issues/{number}/labels"),
    ("POST", "/repos/{owner}/{repo}/issues/{number}/labels"),
    ("GET", "/repos/{owner}/{repo}/labels"),
    ("POST", "/repos/{owner}/{repo}/labels"),
    ("GET", "/repos/{owner}/{repo}/labels/{name}"),
    ("GET", "/repos/{owner}/{repo}/releases"),
    ("POST", "/repos/{owner}/{repo}/releases"),
    ("GET", "/repos/{owner}/{repo}/releases/{id}"),
    ("GET", "/repos/{owner}/{repo}/releases/tags/{tag}"),
    ("GET", "/repos/{owner}/{repo}/releases/{id}/assets"),
    (
        "GET",
        "/repos/{owner}/{repo}/releases/assets/{id}  (JSON, or the bytes with Accept: application/octet-stream)",
    ),
    ("DELETE", "/repos/{owner}/{repo}/releases/assets/{id}"),
    ("POST", "{upload prefix}/repos/{owner}/{repo}/releases/{id}/assets?name=  (the release's upload_url)"),
    ("GET", "/{owner}/{repo}/releases/download/{tag}/{name}  (browser_download_url, at the host root)"),
)

_SHA_ZERO = "0" * 40


@dataclass
class LoggedRequest:
    method: str
    path: str  # relative to the API prefix, no query
    query: dict[str, list[str]]
    status: int | str
    body: Any = None


@dataclass
class _FailRule:
    method: str
    pattern: re.Pattern[str]
    status: int | str
    remaining: int
    body: dict[str, Any] | None
    headers: dict[str, str]
    after: bool = False


@dataclass
class _Repo:
    owner: str
    name: str
    id: int
    default_branch: str = "main"
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # PRs are issues too
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased name -> label
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    assets: dict[int, dict[str, Any]] = field(default_factory=dict)
    asset_bytes: dict[int, bytes] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class _Call(NamedTuple):
    """One request to a repository's endpoints, as the routing tables read it."""

    method: str
    repo: _Repo
    rest: str  # the path after /repos/{owner}/{repo}
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    data: Any  # the JSON body, or None


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.payload: dict[str, Any] = {"message": message}
        if errors:
            self.payload["errors"] = errors


class FakeGitHub:
    """In-memory GitHub on 127.0.0.1:<free port>; start() / stop() or use as a context manager."""

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        repos: Iterable[str] = ("acme/churn",),
        prefix: str = "",
        git_remotes: Mapping[str, Path | str] | None = None,
        users: Mapping[str, str] | None = None,
        tls: tuple[Path | str, Path | str] | None = None,
    ):
        self.token = token
        # token -> login; the main token is the bot's
        self.users: dict[str, str] = {**({token: "gitops-ml-bot"} if token else {}), **(users or {})}
        self.tls = tls
        self.prefix = prefix.rstrip("/")
        # GHE serves uploads beside the API (/api/uploads); github.com uses another host
        self.upload_prefix = "/api/uploads" if self.prefix == "/api/v3" else f"{self.prefix}/uploads"
        self.git_remotes = {k: Path(v) for k, v in (git_remotes or {}).items()}
        self.request_log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._rules: list[_FailRule] = []
        self._repos: dict[str, _Repo] = {}
        self._next_id = 1000
        for full_name in repos:
            self.add_repo(full_name)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.root_url + self.prefix

    # -- test hooks -----------------------------------------------------------------------------
    def add_repo(self, full_name: str, default_branch: str = "main") -> None:
        owner, name = full_name.split("/", 1)
        with self._lock:
            self._repos[full_name.lower()] = _Repo(owner, name, self._new_id(), default_branch)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int | str = 500,
        times: int = 1,
        *,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """The next `times` requests matching method + regex (searched in the path relative to the
        prefix) fail with `status`, or with a dropped connection for status="reset".

        after=True performs the request first and then fails the response: the case of a server
        that did the work but whose answer was lost (the cause of duplicate PRs).
        """
        rule = _FailRule(
            method.upper(), re.compile(path_regex), status, times, body, dict(headers or {}), after
        )
        with self._lock:
            self._rules.append(rule)

    def pulls(self, full_name: str = "acme/churn", state: str | None = None) -> list[dict[str, Any]]:
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            return [
                self._pull_json(repo, i)
                for i in repo.issues.values()
                if i["is_pull"] and (state is None or i["state"] == state)
            ]

    def add_pull(
        self,
        head: str,
        head_sha: str,
        *,
        base: str = "main",
        title: str = "a PR",
        files: Iterable[str] = (),
        full_name: str = "acme/churn",
    ) -> int:
        """Open a pull request directly (no git branch needed); `files` are the paths it changes."""
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            number = len(repo.issues) + 1
            repo.issues[number] = {
                "id": self._new_id(),
                "number": number,
                "is_pull": True,
                "state": "open",
                "title": title,
                "body": None,
                "head": head,
                "head_sha": head_sha,
                "base": base,
                "labels": [],
                "files": list(files),
            }
            return number

    def add_comment(
        self, number: int, body: str, user: str = "mallory", full_name: str = "acme/churn"
    ) -> int:
        """A comment written by `user` (e.g. another participant copying our watermark)."""
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            comment = {"id": self._new_id(), "body": body, "user": user}
            repo.comments.setdefault(number, []).append(comment)
            return comment["id"]

    def comment_records(self, number: int, full_name: str = "acme/churn") -> list[dict[str, Any]]:
        """[{id, body, user}] in posting order."""
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            return [dict(c) for c in repo.comments.get(number, [])]

    def comments(self, number: int, full_name: str = "acme/churn") -> list[str]:
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            return [c["body"] for c in repo.comments.get(number, [])]

    def labels(self, full_name: str = "acme/churn") -> dict[str, dict[str, Any]]:
        repo = self._repo_or_none(full_name)
        assert repo is not None, full_name
        with self._lock:
            return {v["name"]: dict(v) for v in repo.labels.values()}

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [
                r
                for r in self.request_log
                if (method is None or r.method == method.upper())
                and (path_regex is None or re.search(path_regex, r.path))
            ]

    def unhandled(self) -> list[LoggedRequest]:
        """Requests that hit no endpoint (404 from routing, not from a missing object)."""
        with self._lock:
            return [r for r in self.request_log if r.status == "unrouted"]

    # -- helpers --------------------------------------------------------------------------------
    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _repo_or_none(self, full_name: str) -> _Repo | None:
        return self._repos.get(full_name.lower())

    def _take_rule(self, method: str, path: str) -> _FailRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.method == method and rule.pattern.search(path):
                    rule.remaining -= 1
                    return rule
        return None

    def _caller(self, headers: Mapping[str, str]) -> str:
        given = (headers.get("Authorization") or "").partition(" ")[2]
        return self.users.get(given, "gitops-ml-bot")

    def _api(self, path: str) -> str:
        return f"{self.api_url}{path}"

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        return {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {"login": repo.owner, "id": 1, "type": "Organization"},
            "private": True,
            "default_branch": repo.default_branch,
            "url": self._api(f"/repos/{repo.full_name}"),
            "html_url": f"{self.root_url}/{repo.full_name}",
        }

    def _label_json(self, repo: _Repo, label: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": label["id"],
            "name": label["name"],
            "color": label["color"],
            "description": label["description"],
            "default": False,
            "url": self._api(f"/repos/{repo.full_name}/labels/{quote(label['name'])}"),
        }

    def _pull_json(self, repo: _Repo, issue: dict[str, Any]) -> dict[str, Any]:
        n = issue["number"]
        base_api = self._api(f"/repos/{repo.full_name}")
        return {
            "id": issue["id"],
            "number": n,
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "draft": False,
            "merged": False,
            "url": f"{base_api}/pulls/{n}",
            "html_url": f"{self.root_url}/{repo.full_name}/pull/{n}",
            "issue_url": f"{base_api}/issues/{n}",
            "comments_url": f"{base_api}/issues/{n}/comments",
            "labels": [self._label_json(repo, repo.labels[k]) for k in issue["labels"]],
            "head": {
                "label": f"{repo.owner}:{issue['head']}",
                "ref": issue["head"],
                "sha": issue["head_sha"],
                "repo": self._repo_json(repo),
            },
            "base": {
                "label": f"{repo.owner}:{issue['base']}",
                "ref": issue["base"],
                "sha": _SHA_ZERO,
                "repo": self._repo_json(repo),
            },
            "user": {"login": "gitops-ml-bot", "id": 2, "type": "User"},
        }

    def _issue_json(self, repo: _Repo, issue: dict[str, Any]) -> dict[str, Any]:
        n = issue["number"]
        data = {
            "id": issue["id"],
            "number": n,
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "url": self._api(f"/repos/{repo.full_name}/issues/{n}"),
            "html_url": f"{self.root_url}/{repo.full_name}/issues/{n}",
            "labels": [self._label_json(repo, repo.labels[k]) for k in issue["labels"]],
        }
        if issue["is_pull"]:
            data["pull_request"] = {"url": self._api(f"/repos/{repo.full_name}/pulls/{n}")}
        return data

    def _comment_json(self, repo: _Repo, number: int, comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": comment["id"],
            "body": comment["body"],
            "url": self._api(f"/repos/{repo.full_name}/issues/comments/{comment['id']}"),
            "html_url": f"{self.root_url}/{repo.full_name}/pull/{number}#issuecomment-{comment['id']}",
            "user": {"login": comment.get("user", "gitops-ml-bot"), "id": 2, "type": "User"},
        }

    def _release_json(self, repo: _Repo, release: dict[str, Any]) -> dict[str, Any]:
        rid = release["id"]
        return {
            "id": rid,
            "tag_name": release["tag_name"],
            "name": release["name"],
            "body": release["body"],
            "draft": release["draft"],
            "prerelease": release["prerelease"],
            "target_commitish": release["target_commitish"],
            "url": self._api(f"/repos/{repo.full_name}/releases/{rid}"),
            "html_url": f"{self.root_url}/{repo.full_name}/releases/tag/{quote(release['tag_name'])}",
            "assets_url": self._api(f"/repos/{repo.full_name}/releases/{rid}/assets"),
            "upload_url": f"{self.root_url}{self.upload_prefix}/repos/{repo.full_name}/releases/{rid}"
            "/assets{?name,label}",
            "assets": [self._asset_json(repo, repo.assets[a]) for a in release["assets"]],
        }

    def _asset_json(self, repo: _Repo, asset: dict[str, Any]) -> dict[str, Any]:
        tag = repo.releases[asset["release_id"]]["tag_name"]
        return {
            "id": asset["id"],
            "name": asset["name"],
            "label": asset["label"],
            "content_type": asset["content_type"],
            "size": len(repo.asset_bytes[asset["id"]]),
            "state": "uploaded",
            "download_count": 0,
            "url": self._api(f"/repos/{repo.full_name}/releases/assets/{asset['id']}"),
            "browser_download_url": f"{self.root_url}/{repo.full_name}/releases/download/{quote(tag)}/"
            f"{quote(asset['name'])}",
        }

    def _branch_sha(self, repo: _Repo, branch: str) -> str | None:
        """The head's commit in the linked bare repository; without one, any branch 'exists'."""
        remote = self.git_remotes.get(repo.full_name.lower()) or self.git_remotes.get(repo.full_name)
        if remote is None:
            return _SHA_ZERO
        proc = subprocess.run(
            ["git", "-C", str(remote), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            capture_output=True,
            check=False,
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    # -- routing --------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Route one request; returns (status, headers, body). Runs under the state lock."""
        # browser downloads live at the host root, not under the API prefix
        m = re.fullmatch(r"/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/]+)", path)
        if m:
            return self._browser_download(*(unquote(g) for g in m.groups()))
        if path.startswith(self.upload_prefix + "/"):
            return self._upload(path[len(self.upload_prefix) :], query, headers, body)
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                raise _HTTPError(404, "Not Found")
            path = path[len(self.prefix) :]
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            raise LookupError(path)
        repo = self._repo_or_none(f"{m.group(1)}/{m.group(2)}")
        if repo is None:
            raise _HTTPError(404, "Not Found")
        rest = m.group(3) or ""
        data = json.loads(body) if body else None
        return self._route_repo(_Call(method, repo, rest, query, headers, data))

    def _route_repo(self, call: _Call) -> tuple[int, dict[str, str], bytes]:  # noqa: C901 - one flat table
        method, repo, rest, query, headers, data = call

        def q(name: str, default: str | None = None) -> str | None:
            return query.get(name, [default])[0]

        if rest == "" and method == "GET":
            return _json(200, self._repo_json(repo))
        if rest == "/pulls" and method == "GET":
            items = [i for i in repo.issues.values() if i["is_pull"]]
            state = q("state", "open")
            if state != "all":
                items = [i for i in items if i["state"] == state]
            head = q("head")
            if head:
                owner, _, ref = head.rpartition(":")
                items = [i for i in items if i["head"] == ref and (not owner or owner == repo.owner)]
            base = q("base")
            if base:
                items = [i for i in items if i["base"] == base]
            items.sort(key=lambda i: i["number"], reverse=True)  # GitHub's default: newest first
            return self._paginated(repo, "/pulls", query, [self._pull_json(repo, i) for i in items])
        if rest == "/pulls" and method == "POST":
            return self._create_pull(repo, data or {})
        m = re.fullmatch(r"/(pulls|issues)/(\d+)", rest)
        if m:
            issue = repo.issues.get(int(m.group(2)))
            if issue is None or (m.group(1) == "pulls" and not issue["is_pull"]):
                raise _HTTPError(404, "Not Found")
            if method == "GET":
                render = self._pull_json if m.group(1) == "pulls" else self._issue_json
                return _json(200, render(repo, issue))
            if method == "PATCH" and m.group(1) == "pulls":
                for key in ("title", "body", "state", "base"):
                    if key in (data or {}):
                        issue[key] = data[key]
                return _json(200, self._pull_json(repo, issue))
        m = re.fullmatch(r"/pulls/(\d+)/files", rest)
        if m and method == "GET":
            issue = repo.issues.get(int(m.group(1)))
            if issue is None or not issue["is_pull"]:
                raise _HTTPError(404, "Not Found")
            files = [{"filename": f, "status": "modified"} for f in issue.get("files", [])]
            return self._paginated(repo, f"/pulls/{m.group(1)}/files", query, files)
        m = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m:
            found = [(n, c) for n, cs in repo.comments.items() for c in cs if c["id"] == int(m.group(1))]
            if not found:
                raise _HTTPError(404, "Not Found")
            number, comment = found[0]
            if method == "PATCH":
                comment["body"] = _comment_body(data)
            if method in ("GET", "PATCH"):
                return _json(200, self._comment_json(repo, number, comment))
        m = re.fullmatch(r"/issues/(\d+)/(comments|labels)", rest)
        if m:
            number = int(m.group(1))
            issue = repo.issues.get(number)
            if issue is None:
                raise _HTTPError(404, "Not Found")
            if m.group(2) == "comments":
                comments = repo.comments.setdefault(number, [])
                if method == "GET":
                    rendered = [self._comment_json(repo, number, c) for c in comments]
                    return self._paginated(repo, f"/issues/{number}/comments", query, rendered)
                if method == "POST":
                    comment = {
                        "id": self._new_id(),
                        "body": _comment_body(data),
                        "user": self._caller(headers),
                    }
                    comments.append(comment)
                    return _json(201, self._comment_json(repo, number, comment))
            else:
                if method == "POST":
                    names = data.get("labels", []) if isinstance(data, dict) else data
                    for name in names or []:
                        key = self._ensure_label(repo, name)
                        if key not in issue["labels"]:
                            issue["labels"].append(key)
                if method in ("GET", "POST"):
                    return _json(200, [self._label_json(repo, repo.labels[k]) for k in issue["labels"]])
        if rest == "/labels" and method == "GET":
            return self._paginated(
                repo, "/labels", query, [self._label_json(repo, v) for v in repo.labels.values()]
            )
        if rest == "/labels" and method == "POST":
            name = (data or {}).get("name")
            if not name:
                raise _HTTPError(
                    422, "Validation Failed", [{"resource": "Label", "field": "name", "code": "missing"}]
                )
            if name.lower() in repo.labels:
                raise _HTTPError(
                    422,
                    "Validation Failed",
                    [{"resource": "Label", "code": "already_exists", "field": "name"}],
                )
            key = self._ensure_label(repo, name, data.get("color", "ededed"), data.get("description"))
            return _json(201, self._label_json(repo, repo.labels[key]))
        m = re.fullmatch(r"/labels/([^/]+)", rest)
        if m and method == "GET":
            label = repo.labels.get(unquote(m.group(1)).lower())
            if label is None:
                raise _HTTPError(404, "Not Found")
            return _json(200, self._label_json(repo, label))
        return self._route_releases(call)

    def _route_releases(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        method, repo, rest, query, headers, data = call
        if rest == "/releases" and method == "GET":
            items = sorted(repo.releases.values(), key=lambda r: r["id"], reverse=True)
            return self._paginated(repo, "/releases", query, [self._release_json(repo, r) for r in items])
        if rest == "/releases" and method == "POST":
            tag = (data or {}).get("tag_name")
            if not tag:
                raise _HTTPError(422, "Validation Failed", [{"field": "tag_name", "code": "missing"}])
            if any(r["tag_name"] == tag for r in repo.releases.values()):
                raise _HTTPError(
                    422,
                    "Validation Failed",
                    [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
                )
            release = {
                "id": self._new_id(),
                "tag_name": tag,
                "name": data.get("name") or tag,
                "body": data.get("body", ""),
                "draft": bool(data.get("draft", False)),
                "prerelease": bool(data.get("prerelease", False)),
                "target_commitish": data.get("target_commitish", repo.default_branch),
                "assets": [],
            }
            repo.releases[release["id"]] = release
            return _json(201, self._release_json(repo, release))
        m = re.fullmatch(r"/releases/tags/(.+)", rest)
        if m and method == "GET":
            tag = unquote(m.group(1))
            for release in repo.releases.values():
                if release["tag_name"] == tag:
                    return _json(200, self._release_json(repo, release))
            raise _HTTPError(404, "Not Found")
        m = re.fullmatch(r"/releases/(\d+)(/assets)?", rest)
        if m and method == "GET":
            release = repo.releases.get(int(m.group(1)))
            if release is None:
                raise _HTTPError(404, "Not Found")
            if m.group(2):
                assets = [self._asset_json(repo, repo.assets[a]) for a in release["assets"]]
                return self._paginated(repo, f"/releases/{release['id']}/assets", query, assets)
            return _json(200, self._release_json(repo, release))
        m = re.fullmatch(r"/releases/assets/(\d+)", rest)
        if m:
            asset = repo.assets.get(int(m.group(1)))
            if asset is None:
                raise _HTTPError(404, "Not Found")
            if method == "GET":
                if "application/octet-stream" in headers.get("Accept", ""):
                    payload = repo.asset_bytes[asset["id"]]
                    return 200, {"Content-Type": "application/octet-stream"}, payload
                return _json(200, self._asset_json(repo, asset))
            if method == "DELETE":
                repo.releases[asset["release_id"]]["assets"].remove(asset["id"])
                del repo.assets[asset["id"]]
                del repo.asset_bytes[asset["id"]]
                return 204, {}, b""
        raise LookupError(rest)

    def _upload(
        self, path: str, query: dict[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases/(\d+)/assets", path)
        if not m:
            raise LookupError(path)
        repo = self._repo_or_none(f"{m.group(1)}/{m.group(2)}")
        release = repo.releases.get(int(m.group(3))) if repo else None
        if repo is None or release is None:
            raise _HTTPError(404, "Not Found")
        name = query.get("name", [""])[0]
        if not name:
            raise _HTTPError(422, "Validation Failed", [{"field": "name", "code": "missing"}])
        if any(repo.assets[a]["name"] == name for a in release["assets"]):
            raise _HTTPError(
                422,
                "Validation Failed",
                [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
            )
        asset = {
            "id": self._new_id(),
            "name": name,
            "label": query.get("label", [""])[0],
            "content_type": headers.get("Content-Type", "application/octet-stream"),
            "release_id": release["id"],
        }
        repo.assets[asset["id"]] = asset
        repo.asset_bytes[asset["id"]] = body
        release["assets"].append(asset["id"])
        return _json(201, self._asset_json(repo, asset))

    def _browser_download(
        self, owner: str, name: str, tag: str, filename: str
    ) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo_or_none(f"{owner}/{name}")
        if repo is not None:
            for release in repo.releases.values():
                if release["tag_name"] != tag:
                    continue
                for asset_id in release["assets"]:
                    if repo.assets[asset_id]["name"] == filename:
                        return 200, {"Content-Type": "application/octet-stream"}, repo.asset_bytes[asset_id]
        raise _HTTPError(404, "Not Found")

    def _create_pull(self, repo: _Repo, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        head, base, title = data.get("head"), data.get("base"), data.get("title")
        missing = [k for k, v in (("head", head), ("base", base), ("title", title)) if not v]
        if missing:
            raise _HTTPError(
                422,
                "Validation Failed",
                [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing],
            )
        head_ref = head.rpartition(":")[2]
        sha = self._branch_sha(repo, head_ref)
        if sha is None:
            raise _HTTPError(
                422, "Validation Failed", [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            )
        for issue in repo.issues.values():
            if (
                issue["is_pull"]
                and issue["state"] == "open"
                and issue["head"] == head_ref
                and issue["base"] == base
            ):
                raise _HTTPError(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {repo.owner}:{head_ref}.",
                        }
                    ],
                )
        number = len(repo.issues) + 1
        issue = {
            "id": self._new_id(),
            "number": number,
            "is_pull": True,
            "state": "open",
            "title": title,
            "body": data.get("body"),
            "head": head_ref,
            "head_sha": sha,
            "base": base,
            "labels": [],
        }
        repo.issues[number] = issue
        return _json(201, self._pull_json(repo, issue))

    def _ensure_label(
        self, repo: _Repo, name: str, color: str = "ededed", description: str | None = None
    ) -> str:
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = {
                "id": self._new_id(),
                "name": name,
                "color": color,
                "description": description,
            }
        return key

    def _paginated(
        self, repo: _Repo, rest: str, query: dict[str, list[str]], items: list[Any]
    ) -> tuple[int, dict[str, str], bytes]:
        per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            params = {k: v[0] for k, v in query.items()}
            params.update(page=str(page + 1), per_page=str(per_page))
            headers["Link"] = (
                f'<{self._api(f"/repos/{repo.full_name}{rest}")}?{urlencode(params)}>; rel="next"'
            )
        status, base_headers, body = _json(200, chunk)
        base_headers.update(headers)
        return status, base_headers, body


def _comment_body(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("body"), str):
        raise _HTTPError(422, "Validation Failed", [{"field": "body", "code": "missing"}])
    if len(data["body"]) > 65_536:  # GitHub refuses longer bodies
        raise _HTTPError(
            422, "Validation Failed", [{"field": "body", "code": "custom", "message": "body is too long"}]
        )
    return data["body"]


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub  # set on the per-server subclass
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx and CML reuse connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def _dispatch(self) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rel_path = path[len(fake.prefix) :] if fake.prefix and path.startswith(fake.prefix) else path
        try:
            logged_body: Any = (
                json.loads(body) if body and "json" in (self.headers.get("Content-Type") or "") else None
            )
        except ValueError:
            logged_body = None
        entry = LoggedRequest(self.command, rel_path, query, 0, logged_body)
        with fake._lock:
            fake.request_log.append(entry)

        if fake.token is not None and not self._authorized(fake.token, path):
            entry.status = 401
            self._send(
                401, {"Content-Type": "application/json"}, json.dumps({"message": "Bad credentials"}).encode()
            )
            return
        rule = fake._take_rule(self.command, rel_path)
        if rule is not None and not rule.after:
            self._fail(entry, rule)
            return
        with fake._lock:
            try:
                status, headers, payload = fake.handle(self.command, path, query, self.headers, body)
                entry.status = status
            except _HTTPError as exc:
                status, headers, payload = _json(exc.status, exc.payload)
                entry.status = status
            except LookupError:
                status, headers, payload = _json(404, {"message": "Not Found (fake: no such endpoint)"})
                entry.status = "unrouted"
        if rule is not None:  # after=True: the work is done, the answer is lost
            self._fail(entry, rule)
            return
        self._send(status, headers, payload)

    def _authorized(self, token: str, path: str) -> bool:
        # browser downloads of a private repo's asset need the token too
        value = self.headers.get("Authorization", "")
        scheme, _, given = value.partition(" ")
        return scheme.lower() in ("token", "bearer") and (given == token or given in self.fake.users)

    def _fail(self, entry: LoggedRequest, rule: _FailRule) -> None:
        entry.status = rule.status
        if rule.status == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        payload = rule.body or {"message": "Server Error (injected by fake)"}
        self._send(
            int(rule.status),
            {"Content-Type": "application/json", **rule.headers},
            json.dumps(payload).encode(),
        )

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch
