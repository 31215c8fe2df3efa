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
import os
import re
import shutil
import tomllib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.errors import GitopsMLError

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
MAX_COMMENT_CHARS = 65_536  # GitHub's limit for a comment body
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
        raise CIArtifactError(f"{where}: expected a 40- or 64-digit lowercase hex commit sha, got {repr(value)[:80]}")
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
                fallback_report(f"`gitops-ml pr-check` wrote no `{report_dir / REPORT_FILE}`."), encoding="utf-8")
            staged.append(REPORT_FILE)
        if SUMMARY_FILE not in staged:
            summary = {"status": "error", "exit_code": 2, "error": f"{report_dir / SUMMARY_FILE} was not written"}
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
        raise CIArtifactError(f"{path}: {path.stat().st_size} bytes, more than {MAX_PR_INFO_BYTES}; refusing it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CIArtifactError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CIArtifactError(f"{path}: expected a JSON object, got {type(data).__name__}")
    number = validate_pr_number(data.get("number"), f"{path}: field 'number'")
    return PrInfo(number, _validate_sha(data.get("head_sha"), f"{path}: field 'head_sha'"),
                  _validate_sha(data.get("base_sha"), f"{path}: field 'base_sha'"))


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def comment_markdown(report_md: str, *, artifact_name: str = ARTIFACT_NAME, run_url: str | None = None,
                     limit: int = MAX_COMMENT_CHARS) -> str:
    """The PR comment: report.md with local images replaced by a pointer to the artifact, a footer,
    and GitHub's size limit respected (the verdict comes first, so truncation keeps it).

    Local images would otherwise be uploaded by CML to a public host (asset.cml.dev); the report
    reads well without them (Mermaid charts render natively).
    """
    where = f"the `{artifact_name}` artifact" + (f" of [this run]({run_url})" if run_url else "")

    def replace(match: re.Match[str]) -> str:
        alt, target = match.group(1), match.group(2)
        if re.match(r"^https?://", target):
            return match.group(0)
        label = alt.strip() or Path(target).name
        return f"_Plot **{label}**: in {where}._"

    body = _IMAGE.sub(replace, report_md).rstrip() + "\n"
    footer = f"\n---\n<sub>Plots, summary.json and the deepchecks HTML reports: {where}.</sub>\n"
    if len(body) + len(footer) > limit:
        note = "\n\n_Truncated: the full report is in the artifact._\n"
        body = body[: limit - len(footer) - len(note)] + note
    return body + footer


def read_report(artifact_dir: Path | str) -> str:
    path = Path(artifact_dir) / REPORT_FILE
    if not path.is_file() or path.is_symlink():
        raise CIArtifactError(f"{path}: missing from the artifact")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_REPORT_BYTES)
    return raw.decode("utf-8", errors="replace")


def pr_head_sha(repository: str, number: int, token: str | None, api_url: str | None = None,
                timeout_s: float = 30.0) -> str:
    """The current head commit of PR `number` on GitHub (to check an artifact names the right PR)."""
    import httpx

    api = (api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "gitops-ml"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{api}/repos/{repository}/pulls/{number}"
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise CIArtifactError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise CIArtifactError(f"GET {url}: HTTP {response.status_code}: pull request #{number} not readable")
    sha = (response.json().get("head") or {}).get("sha")
    if not isinstance(sha, str):
        raise CIArtifactError(f"GET {url}: no head.sha in the answer")
    return sha


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
    reasons = {m.group(1): (m.group(2) or "").strip() for line in text.splitlines() if (m := _DEP_LINE.match(line))}
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


def pin_rows(pyproject: Path | str, installed: Callable[[str], str | None] = installed_version,
             only: Iterable[str] | None = None) -> list[PinRow]:
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


def render_pin_report(rows: list[PinRow], tests_outcome: str | None = None, title: str = "Dependency pins") -> str:
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
