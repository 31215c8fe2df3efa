"""What the CI workflows hand to each other, defined once.

`pr.yml` runs the PR's code with a read-only token and uploads ONE artifact; `pr-report.yml`
runs trusted code from the default branch with `pull-requests: write` and posts it. Both read
the names and paths below (through `gitops-ml ci artifact-paths`), so the layout cannot drift
between the writer and the reader.

Everything in the artifact was produced by the PR's code and is untrusted: the PR number is
validated as a plain integer (and, given the run's head sha, checked against GitHub), the
comment is rebuilt from report.md by trusted code, and only regular files are staged.

Also here: the nightly canary's pin report (which pinned dependency could move).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_ml.errors import GitopsMLError
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT, truncate_markdown

if TYPE_CHECKING:  # GitHub is reached only through forge/ (its one HTTP client)
    from gitops_ml.forge.github import CommentInfo, GitHubForge

logger = logging.getLogger(__name__)

ARTIFACT_NAME = "pr-check-report"
REPORT_DIR = Path("reports/pr")  # where `gitops-ml pr-check` writes by default
STAGING_DIR = Path("reports/pr-artifact")  # exactly what pr.yml uploads
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
PR_INFO_FILE = "pr.json"
COMMENT_FILE = "comment.md"  # written by the reader (trusted code), never taken from the artifact
PLOTS_DIR = "plots"
DEEPCHECKS_DIR = "deepchecks"
STAGED_FILES = (REPORT_FILE, SUMMARY_FILE)
STAGED_DIRS = (PLOTS_DIR, DEEPCHECKS_DIR)  # candidate/ and .cache/ stay out: big, and not for reviewers
WATERMARK_TITLE = "gitops-ml PR check"  # CML finds its earlier comment by this and edits it
MAX_PR_INFO_BYTES = 64 * 1024
MAX_REPORT_BYTES = 2 * 1024 * 1024
_MAX_PR_NUMBER = 2**31 - 1
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class CIArtifactError(GitopsMLError):
    """The PR artifact is missing a file or holds something invalid (exit code 2)."""


@dataclass(frozen=True)
class PrInfo:
    number: int
    head_sha: str | None = None
    base_sha: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "head_sha": self.head_sha, "base_sha": self.base_sha}


def layout(staging_dir: Path | str = STAGING_DIR) -> dict[str, str]:
    """Artifact name and paths, as `key=value` lines for `$GITHUB_OUTPUT` (see `gitops-ml ci artifact-paths`)."""
    root = Path(staging_dir)
    return {
        "name": ARTIFACT_NAME,
        "dir": root.as_posix(),
        "report": (root / REPORT_FILE).as_posix(),
        "summary": (root / SUMMARY_FILE).as_posix(),
        "pr_info": (root / PR_INFO_FILE).as_posix(),
        "comment": (root / COMMENT_FILE).as_posix(),
        "watermark": WATERMARK_TITLE,
    }


def staged_paths() -> tuple[str, ...]:
    """Relative paths an artifact may hold (a trailing '/' marks a folder)."""
    return (*STAGED_FILES, PR_INFO_FILE, *(f"{d}/" for d in STAGED_DIRS))


# -- writer side (pr.yml) ---------------------------------------------------------------------
def validate_pr_number(value: object, where: str = "PR number") -> int:
    """A positive integer and nothing else (no bool, float, string tricks); CIArtifactError if not."""
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,9}", value.strip()):
        value = int(value.strip())
    if type(value) is not int or not 1 <= value <= _MAX_PR_NUMBER:
        shown = repr(value)[:40]
        raise CIArtifactError(f"{where}: expected a positive integer pull request number, got {shown}")
    return value


def _validate_sha(value: object, where: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _SHA.match(value):
        raise CIArtifactError(
            f"{where}: expected a 40- or 64-digit lowercase hex commit sha, got {repr(value)[:80]}"
        )
    return value


def _copy_regular_tree(src: Path, dst: Path) -> list[str]:
    """Copy regular files only: a symlink in PR output could point at anything on the runner."""
    copied: list[str] = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_symlink():
            logger.warning("%s: symlink not staged", path)
            continue
        if path.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / rel)
            copied.append(rel.as_posix())
    return copied


def fallback_report(reason: str) -> str:
    return (
        "## ❌ PR check: no report\n\n"
        f"{reason}\n\nThe run's log says what happened; the check counts as failed.\n"
    )


def stage_pr_artifact(report_dir: Path | str, staging_dir: Path | str, info: PrInfo) -> list[str]:
    """Build `staging_dir` from pr-check's output: report.md, summary.json, plots/, deepchecks/, pr.json.

    Runs whatever pr-check did (it is the `if: always()` step), so a missing report.md becomes a
    short failure report and a missing summary.json a minimal error summary: the reviewer always
    gets a comment. The folder is built beside the target and renamed into place. Returns the
    staged paths, relative to the folder.
    """
    report_dir, staging_dir = Path(report_dir), Path(staging_dir)
    validate_pr_number(info.number, "--pr-number")
    _validate_sha(info.head_sha, "--head-sha")
    _validate_sha(info.base_sha, "--base-sha")
    staging_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir.parent / f".{staging_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        staged: list[str] = []
        for name in STAGED_FILES:
            src = report_dir / name
            if src.is_file() and not src.is_symlink():
                shutil.copyfile(src, tmp / name)
                staged.append(name)
        if REPORT_FILE not in staged:
            (tmp / REPORT_FILE).write_text(
                fallback_report(f"`gitops-ml pr-check` wrote no `{report_dir / REPORT_FILE}`."),
                encoding="utf-8",
            )
            staged.append(REPORT_FILE)
        if SUMMARY_FILE not in staged:
            summary = {
                "status": "error",
                "exit_code": 2,
                "error": f"{report_dir / SUMMARY_FILE} was not written",
            }
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            staged.append(SUMMARY_FILE)
        for name in STAGED_DIRS:
            src = report_dir / name
            if src.is_dir() and not src.is_symlink():
                staged += [f"{name}/{rel}" for rel in _copy_regular_tree(src, tmp / name)]
        (tmp / PR_INFO_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
        staged.append(PR_INFO_FILE)
        if staging_dir.exists():
            shutil.rmtree(staging_dir)
        tmp.rename(staging_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(staged)


# -- reader side (pr-report.yml) --------------------------------------------------------------
def read_pr_info(artifact_dir: Path | str) -> PrInfo:
    """The PR number (and shas) from an artifact, strictly validated; CIArtifactError names the problem."""
    path = Path(artifact_dir) / PR_INFO_FILE
    if not path.is_file() or path.is_symlink():
        raise CIArtifactError(f"{path}: missing from the artifact (expected {', '.join(staged_paths())})")
    if path.stat().st_size > MAX_PR_INFO_BYTES:
        raise CIArtifactError(
            f"{path}: {path.stat().st_size} bytes, more than {MAX_PR_INFO_BYTES}; refusing it"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CIArtifactError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CIArtifactError(f"{path}: expected a JSON object, got {type(data).__name__}")
    number = validate_pr_number(data.get("number"), f"{path}: field 'number'")
    return PrInfo(
        number,
        _validate_sha(data.get("head_sha"), f"{path}: field 'head_sha'"),
        _validate_sha(data.get("base_sha"), f"{path}: field 'base_sha'"),
    )


# Every pass over report.md below is linear: the PR controls up to MAX_REPORT_BYTES of it and
# this runs in the job that holds `pull-requests: write`. Character classes exclude the
# delimiters that start the next candidate match ('[' and ']'), and every quantifier is bounded,
# so no match attempt rescans text another attempt already covered.
_IMAGE = re.compile(r'!\[([^\[\]\n]{0,1000})\]\(([^()\s\[\]]{1,2000})(?:[ \t]+"[^"\n\[\]]{0,1000}")?\)')
# `@name` / `@org/team` that GitHub would turn into a notification; not e-mail addresses
# `\B` before `@` (a non-word character) keeps e-mail addresses (`a@b.example`) as they are
_MENTION = re.compile(r"\B@(?=[A-Za-z0-9])")
_IMAGE_MAX_CHARS = 4100  # the longest text one _IMAGE match can span
_ZERO_WIDTH_SPACE = "\u200b"
WATERMARK_IMAGE = "https://cml.dev/watermark.png"  # what CML 0.20.6 appends to every comment it posts
# A report produced by the PR's own code is the PR's claim about itself: said in the header.
PR_CODE_PATHS = ("src/", "flows/", "pyproject.toml", "uv.lock", "Makefile", "prefect.yaml")
RUN_CONCLUSIONS = frozenset(
    {
        "success",
        "failure",
        "cancelled",
        "skipped",
        "timed_out",
        "action_required",
        "neutral",
        "stale",
        "startup_failure",
    }
)
CHECK_FAILED = "## ❌ Check failed, see the run"


def cml_watermark_title(title: str = WATERMARK_TITLE) -> str:
    """The image title CML writes, escaped as CML escapes it (so a comment read back still matches)."""
    text = f"CML watermark {title}".strip()
    for char in ("_", "*", "[", "<"):
        text = text.replace(char, "\\" + char)
    return text


def cml_watermark(sha: str, title: str = WATERMARK_TITLE) -> str:
    """The line CML appends after a blank line: `![](https://cml.dev/watermark.png#<sha> "CML watermark T")`."""
    return f'![]({WATERMARK_IMAGE}#{sha} "{cml_watermark_title(title)}")'


def watermark_reserve(title: str = WATERMARK_TITLE) -> int:
    """Characters CML adds to a body: the blank line and the watermark (with a 64-digit sha, the longest)."""
    return len("\n\n") + len(cml_watermark("0" * 64, title))


def carries_watermark(body: str, title: str = WATERMARK_TITLE) -> bool:
    """CML's own test for "this comment is one of mine" (the sha is ignored)."""
    pattern = (
        re.escape(f"![]({WATERMARK_IMAGE}#") + "[0-9a-fA-F]+" + re.escape(f' "{cml_watermark_title(title)}")')
    )
    return re.search(pattern, body) is not None


def our_comment(
    comments: Iterable[CommentInfo], author: str, title: str = WATERMARK_TITLE
) -> CommentInfo | None:
    """The newest comment written by `author` that carries our watermark; None if there is none.

    A comment by anyone else is never ours, whatever it contains (anyone can copy the watermark).
    `comments` are objects with `author` and `body` (forge.github.CommentInfo), oldest first.
    """
    mine = [c for c in comments if c.author == author and carries_watermark(c.body, title)]
    return mine[-1] if mine else None


def neutralize_mentions(text: str) -> str:
    """`@name` -> `@<zero-width space>name`: the comment notifies nobody the PR chose."""
    return _MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)


def _safe_url(url: str | None) -> str | None:
    if url and re.fullmatch(r"https?://[^\s()<>\[\]]{1,500}", url):
        return url
    return None


def trusted_header(
    *, head_sha: str | None, conclusion: str | None, run_url: str | None, pr_code_changed: bool | None
) -> str:
    """What trusted code knows about the run (from GitHub, not from the artifact), above the report."""
    url = _safe_url(run_url)
    run = f"[workflow run]({url})" if url else "workflow run"
    sha = f"`{head_sha}`" if head_sha and _SHA.match(head_sha) else "an unknown commit"
    lines = [f"> **gitops-ml PR check** of {sha}: the {run} ended **{conclusion or 'unknown'}**."]
    if pr_code_changed is None:
        lines.append(
            "> ⚠️ Could not read which files this pull request changes: the report below may come "
            "from the pull request's own code."
        )
    elif pr_code_changed:
        shown = ", ".join(f"`{p}`" for p in PR_CODE_PATHS)
        lines.append(
            f"> ⚠️ This pull request changes the code that wrote the report below ({shown}): "
            "it is the pull request's own account of itself; the run log is authoritative."
        )
    return "\n".join(lines) + "\n\n"


def check_failed_markdown(conclusion: str | None, run_url: str | None, why: str) -> str:
    url = _safe_url(run_url)
    where = f"[the run]({url})" if url else "the run"
    return (
        f"{CHECK_FAILED}\n\nThe PR check ended **{conclusion or 'unknown'}**: {why}. "
        f"Any earlier verdict on this pull request no longer applies; see {where}.\n"
    )


def shows_report(conclusion: str | None, status: str | None) -> bool:
    """Whether the artifact's verdict may stand: a run that failed may not leave a passing verdict up."""
    return conclusion in (None, "success") or status in ("fail", "error")


def comment_markdown(
    report_md: str | None,
    *,
    artifact_name: str = ARTIFACT_NAME,
    run_url: str | None = None,
    limit: int | None = None,
    head_sha: str | None = None,
    conclusion: str | None = None,
    status: str | None = None,
    pr_code_changed: bool | None = False,
    header: bool = False,
) -> str:
    """The PR comment: a trusted header (with `header=True`), then report.md with local images replaced
    by a pointer to the artifact, @mentions neutralized, a footer, and room left for CML's watermark
    so the posted body fits GitHub's 65,536 characters (the verdict comes first, so truncation keeps it).

    A missing report, or a run that did not succeed while the report says pass, becomes "check
    failed, see the run". Local images would otherwise be uploaded by CML to a public host; the
    report reads well without them (Mermaid charts render natively).
    """
    if conclusion is not None and conclusion not in RUN_CONCLUSIONS:
        raise CIArtifactError(
            f"--conclusion: expected one of {sorted(RUN_CONCLUSIONS)}, got {conclusion[:40]!r}"
        )
    limit = GITHUB_COMMENT_LIMIT - watermark_reserve() if limit is None else limit
    top = (
        trusted_header(
            head_sha=head_sha, conclusion=conclusion, run_url=run_url, pr_code_changed=pr_code_changed
        )
        if header
        else ""
    )
    if report_md is None:
        return top + check_failed_markdown(conclusion, run_url, "it produced no report")
    if not shows_report(conclusion, status):
        return top + check_failed_markdown(conclusion, run_url, "the run failed although its report passed")
    where = f"the `{artifact_name}` artifact" + (
        f" of [this run]({_safe_url(run_url)})" if _safe_url(run_url) else ""
    )
    footer = f"\n---\n<sub>Plots, summary.json and the deepchecks HTML reports: {where}.</sub>\n"
    note = "\n\n_Truncated: the full report is in the artifact._\n"
    budget = max(0, limit - len(top) - len(footer) - len(note))
    body, cut = _rewrite_images(report_md, where, budget)
    body = neutralize_mentions(body).rstrip() + "\n"
    if cut:
        body = body[:budget] + note
    return top + truncate_markdown(body, limit - len(top) - len(footer), note) + footer


def _rewrite_images(text: str, where: str, budget: int) -> tuple[str, bool]:
    """Local images -> a pointer to the artifact, reading only as much of `text` as the comment can
    hold: at most `budget` output characters (plus one replacement) are produced, and each search
    is confined to the next budget + one match of input, so hostile text costs time linear in what
    is kept. Returns (text, whether it was cut)."""

    def replace(match: re.Match[str]) -> str:
        alt, target = match.group(1), match.group(2)
        if re.match(r"^https?://", target):
            return match.group(0)
        label = alt.strip() or Path(target).name
        return f"_Plot **{label}**: in {where}._"

    out: list[str] = []
    size = pos = 0
    while size <= budget:
        endpos = min(len(text), pos + (budget - size) + _IMAGE_MAX_CHARS)
        match = _IMAGE.search(text, pos, endpos)
        if match is None:  # no image in reach: keep what still fits, the rest is cut anyway
            keep = min(endpos, pos + (budget - size) + 1)
            out.append(text[pos:keep])
            return "".join(out), keep < len(text)
        out.append(text[pos : match.start()])
        replacement = replace(match)
        out.append(replacement)
        size += match.start() - pos + len(replacement)
        pos = match.end()
    return "".join(out), pos < len(text)


def read_summary_status(artifact_dir: Path | str) -> str | None:
    """summary.json's `status` (pass, fail, error) or None when absent or unreadable."""
    path = Path(artifact_dir) / SUMMARY_FILE
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_REPORT_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    status = data.get("status") if isinstance(data, dict) else None
    return status if status in ("pass", "fail", "error") else None


def touches_pr_code(files: Iterable[str]) -> bool:
    return any(f == p or f.startswith(p) for f in files for p in PR_CODE_PATHS)


def read_report(artifact_dir: Path | str, *, missing_ok: bool = False) -> str | None:
    """report.md, at most MAX_REPORT_BYTES of it; None (with missing_ok) when the artifact has none."""
    path = Path(artifact_dir) / REPORT_FILE
    if not path.is_file() or path.is_symlink():
        if missing_ok:
            return None
        raise CIArtifactError(f"{path}: missing from the artifact")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_REPORT_BYTES)
    return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PostedComment:
    action: str  # "created" (by CML) or "edited" (our own earlier comment)
    comment_id: int | None
    output: str  # CML's output (the comment URL) or the edited comment's URL


def post_sticky_comment(
    forge: GitHubForge,
    number: int,
    comment_file: Path | str,
    *,
    author: str,
    sha: str,
    cml: Sequence[str],
    repo_url: str,
    title: str = WATERMARK_TITLE,
    timeout_s: float = 300.0,
) -> PostedComment:
    """Post the report as ONE comment per PR that is always ours.

    CML 0.20.6's `comment update` edits the newest comment carrying the watermark from ANY author
    and reads only the first page (30) of comments, and it cannot be pointed at a comment id. So
    trusted code lists every page, keeps only comments written by `author` (the token's own login)
    that carry the watermark, and then:
    - none: `cml comment create --no-publish` posts the report (CML appends its watermark);
    - one or more: the newest is edited through the same API call CML would make, with the body
      CML would send (report, blank line, watermark), after re-checking its author.
    """
    path = Path(comment_file)
    body = path.read_text(encoding="utf-8")
    if len(body) + watermark_reserve(title) > GITHUB_COMMENT_LIMIT:
        raise CIArtifactError(
            f"{path}: {len(body)} characters; with CML's watermark that exceeds GitHub's "
            f"{GITHUB_COMMENT_LIMIT} (build it with `gitops-ml ci comment`)"
        )
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", sha or ""):
        raise CIArtifactError(f"--sha: expected the run's 40- or 64-digit commit sha, got {str(sha)[:80]!r}")
    mine = our_comment(forge.issue_comments(number), author, title)
    if mine is not None:
        url = forge.edit_comment(number, mine.id, f"{body}\n\n{cml_watermark(sha, title)}", author=author)
        return PostedComment("edited", mine.id, url)
    command = [
        *cml,
        "comment",
        "create",
        f"--target=pr/{number}",
        f"--watermark-title={title}",
        "--no-publish",
        "--driver=github",
        f"--repo={repo_url}",
        str(path),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CIArtifactError(f"{cml[0]}: could not run CML: {exc}") from exc
    if proc.returncode != 0:
        raise CIArtifactError(f"cml comment create exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return PostedComment("created", None, proc.stdout.strip())


# -- nightly canary: which pins could move ----------------------------------------------------
# The core dependencies with an upper bound (pyproject.toml); numpy, pandas and the rest move with the lock.
CANARY_PACKAGES = ("prefect", "pydantic", "sqlalchemy", "skops")
_DEP_LINE = re.compile(r'^\s*"([^"]+)"\s*,?\s*(?:#\s*(.*))?$')


@dataclass(frozen=True)
class PinRow:
    package: str
    spec: str  # e.g. "<2,>=1.26"
    reason: str  # the comment beside the pin in pyproject.toml
    installed: str | None
    inside: bool | None  # None when not installed


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(pyproject: Path | str) -> list[tuple[str, str, str]]:
    """(package, specifier, reason) for every dependency with an upper bound or exact version."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = Path(pyproject)
    try:
        text = path.read_text(encoding="utf-8")
        deps = tomllib.loads(text)["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise CIArtifactError(f"{path}: cannot read [project].dependencies: {exc}") from exc
    reasons = {
        m.group(1): (m.group(2) or "").strip() for line in text.splitlines() if (m := _DEP_LINE.match(line))
    }
    pins = []
    for dep in deps:
        try:
            req = Requirement(dep)
        except InvalidRequirement as exc:
            raise CIArtifactError(f"{path}: dependency {dep!r}: {exc}") from exc
        if any(s.operator in ("<", "<=", "==", "~=", "===") for s in req.specifier):
            pins.append((_canonical(req.name), str(req.specifier), reasons.get(dep, "")))
    return pins


def installed_version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def pin_rows(
    pyproject: Path | str,
    installed: Callable[[str], str | None] = installed_version,
    only: Iterable[str] | None = None,
) -> list[PinRow]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    wanted = {_canonical(p) for p in only} if only else None
    rows = []
    for package, spec, reason in read_pins(pyproject):
        if wanted is not None and package not in wanted:
            continue
        version = installed(package)
        inside: bool | None = None
        if version is not None:
            try:
                inside = SpecifierSet(spec).contains(Version(version), prereleases=True)
            except InvalidVersion:
                inside = None
        rows.append(PinRow(package, spec, reason, version, inside))
    return rows


def render_pin_report(
    rows: list[PinRow], tests_outcome: str | None = None, title: str = "Dependency pins"
) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY`: per pin, whether the newest installable version is outside
    it and, given the unit tests' outcome, whether the pin can move."""
    passed = tests_outcome == "success"
    lines = [f"## {title}", ""]
    if tests_outcome:
        lines += [f"Unit tests with these versions: **{tests_outcome}**.", ""]
    lines += ["| package | pin | installed | verdict | why pinned |", "| --- | --- | --- | --- | --- |"]
    movable = []
    for row in rows:
        if row.installed is None:
            verdict = "not installed"
        elif row.inside:
            verdict = "inside the pin"
        elif row.inside is None:
            verdict = "unparseable version"
        elif tests_outcome is None:
            verdict = "outside the pin: run the tests to know"
        elif passed:
            verdict = f"✅ outside the pin and tests pass: the pin can move to {row.installed}"
            movable.append(row.package)
        else:
            verdict = "❌ outside the pin and tests fail: keep the pin"
        reason = row.reason.replace("|", "\\|")
        lines.append(f"| `{row.package}` | `{row.spec}` | {row.installed or '-'} | {verdict} | {reason} |")
    lines.append("")
    lines.append(f"**Pins that can move:** {', '.join(movable)}" if movable else "**No pin can move yet.**")
    return "\n".join(lines) + "\n"
