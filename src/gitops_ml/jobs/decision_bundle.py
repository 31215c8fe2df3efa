"""Decision bundles: what the token-free monitor job hands to the trusted job that opens the PRs.

The monitor reads the prediction store (rows any API client wrote) and runs the project's code, so
in CI it holds no write token. When it decides something that needs a pull request it writes a
bundle instead, one folder per kind under the `--bundle` folder:

- `retrain/`: the labelled window (contract inputs + `label`) as CSV and the report;
- `challenger/`: the champion/challenger decision (promote or retire) as JSON and the report.

Each folder's bundle.json names its kind, the commit the monitor ran on and the sha256 of every
other file. The trusted job reads bundles as data only, through ONE verifier (`read_bundles`):
folder names and kinds from a closed vocabulary, exactly the kind's regular files, bounded sizes,
hashes and commit checked; then per kind, against the checked-out commit: a retraining window's
columns are the contract's inputs, a challenger decision names the challenger and production that
deploy/ holds at that commit (the pointer file's sha256 included). Only after every bundle passes
does `open_prs_from_bundles` open anything.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.parsing import error_lines

if TYPE_CHECKING:
    from gitops_ml.forge.retrain_pr import RetrainPrOutcome
    from gitops_ml.jobs.retrain import RetrainingPr
    from gitops_ml.monitoring.challenger import ChallengerDecision

BUNDLE_FILE = "bundle.json"
WINDOW_FILE = "window.csv"
REPORT_FILE = "report.md"
DECISION_FILE = "decision.json"
LABEL_COLUMN = "label"
Kind = Literal["retrain", "challenger"]
KINDS: tuple[Kind, ...] = ("retrain", "challenger")  # also the folder names under --bundle
# bundle.json is a few hundred bytes; a report is capped below GitHub's 65,536-character body anyway
MAX_BYTES = {
    BUNDLE_FILE: 64 * 1024,
    REPORT_FILE: 1024 * 1024,
    DECISION_FILE: 1024 * 1024,
    WINDOW_FILE: 512 * 1024 * 1024,
}
_SHA256 = r"^[0-9a-f]{64}$"
_VERSION = r"^[A-Za-z0-9._:+-]+$"


class BundleError(GitopsMLError):
    """A decision bundle that is malformed or does not match what it claims: nothing is pushed."""


class _Header(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the commit the monitor ran on")
    report_sha256: str = Field(pattern=_SHA256)

    def members(self) -> dict[str, str]:
        """Every file of the bundle but bundle.json, with its sha256."""
        return {REPORT_FILE: self.report_sha256}


class RetrainBundle(_Header):
    kind: Literal["retrain"] = "retrain"
    window_end: AwareDatetime
    model_version: str = Field(min_length=1, max_length=200, pattern=_VERSION)
    rows: int = Field(ge=1, description="labelled rows in window.csv")
    window_sha256: str = Field(pattern=_SHA256)

    def members(self) -> dict[str, str]:
        return {**super().members(), WINDOW_FILE: self.window_sha256}


class ChallengerBundle(_Header):
    kind: Literal["challenger"] = "challenger"
    action: Literal["promote", "retire"]
    challenger_version: str = Field(min_length=1, max_length=200, pattern=_VERSION)
    production_version: str = Field(min_length=1, max_length=200, pattern=_VERSION)
    pointer_sha256: str = Field(pattern=_SHA256, description="deploy/challenger.yaml as the monitor read it")
    decision_sha256: str = Field(pattern=_SHA256)

    def members(self) -> dict[str, str]:
        return {**super().members(), DECISION_FILE: self.decision_sha256}


Bundle = Annotated[RetrainBundle | ChallengerBundle, Field(discriminator="kind")]
_BUNDLE = TypeAdapter(Bundle)


@dataclass(frozen=True)
class VerifiedRetrain:
    bundle: RetrainBundle
    window: pd.DataFrame
    report: str


@dataclass(frozen=True)
class VerifiedChallenger:
    bundle: ChallengerBundle
    decision: ChallengerDecision
    report: str


@dataclass(frozen=True)
class BundlePrs:
    """What the trusted job opened: each PR is None when its bundle was not there."""

    retrain: RetrainingPr | None
    challenger: RetrainPrOutcome | None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- writing (the token-free monitor) --------------------------------------------------------------


def _write(folder: Path, files: dict[str, bytes], bundle: _Header) -> Path:
    from gitops_ml.io_utils import atomic_write_bytes, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_FILE).unlink(missing_ok=True)  # a half-written bundle never has its bundle.json
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    atomic_write_text(folder / BUNDLE_FILE, bundle.model_dump_json(indent=2) + "\n")
    return folder


def clear_bundles(bundles_dir: Path) -> None:
    """Remove the bundles an earlier run left (only the kinds' folders): a run hands on only its own."""
    import shutil

    for kind in KINDS:
        folder = Path(bundles_dir) / kind
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)


def window_columns(settings: Settings) -> list[str]:
    """The contract's input columns (the target comes from `label`), in contract order."""
    from gitops_ml.contracts.model import load_contract

    contract = load_contract(settings.dataset.contract)
    return [c for c in contract.column_names if c != settings.dataset.target]


def write_retraining_bundle(
    settings: Settings,
    window: pd.DataFrame,
    report: str,
    bundles_dir: Path,
    *,
    window_end: datetime,
    model_version: str,
    commit: str,
) -> Path:
    """`bundles_dir/retrain/`: the labelled rows of `window` with the report (the trusted job exports them)."""
    labelled = window[window[LABEL_COLUMN].notna()] if LABEL_COLUMN in window else window.iloc[0:0]
    if labelled.empty:
        raise GitopsMLError("retraining bundle: the window holds no labelled rows")
    columns = [c for c in window_columns(settings) if c in labelled.columns] + [LABEL_COLUMN]
    data = labelled[columns].to_csv(index=False).encode("utf-8")
    text = report.encode("utf-8")
    bundle = RetrainBundle(
        commit=commit,
        window_end=window_end,
        model_version=model_version,
        rows=len(labelled),
        window_sha256=_sha256(data),
        report_sha256=_sha256(text),
    )
    return _write(Path(bundles_dir) / "retrain", {WINDOW_FILE: data, REPORT_FILE: text}, bundle)


def write_challenger_bundle(
    settings: Settings, decision: ChallengerDecision, report: str, bundles_dir: Path, *, commit: str
) -> Path:
    """`bundles_dir/challenger/`: a promote or retire decision, its evidence and the pointer's sha256."""
    from gitops_ml.registry.challenger import challenger_path

    if decision.action == "keep collecting":
        raise GitopsMLError("challenger bundle: 'keep collecting' opens no pull request")
    data = (json.dumps(decision.to_dict(), indent=2) + "\n").encode("utf-8")
    text = report.encode("utf-8")
    bundle = ChallengerBundle(
        commit=commit,
        action=decision.action,
        challenger_version=decision.challenger_version,
        production_version=decision.production_version,
        pointer_sha256=_sha256(challenger_path(settings.registry).read_bytes()),
        decision_sha256=_sha256(data),
        report_sha256=_sha256(text),
    )
    return _write(Path(bundles_dir) / "challenger", {DECISION_FILE: data, REPORT_FILE: text}, bundle)


# -- the one verifier (the trusted job) ------------------------------------------------------------


def _read_member(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BundleError(f"{path}: missing from the bundle") from None
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{path}: not a regular file (symlinks and folders are refused)")
    if info.st_size > MAX_BYTES[name]:
        raise BundleError(f"{path}: {info.st_size:,} bytes, more than the {MAX_BYTES[name]:,} allowed")
    return path.read_bytes()


def _real_folder(folder: Path) -> None:
    if folder.is_symlink() or not folder.is_dir():
        raise BundleError(f"{folder}: not a folder")


def read_bundle(
    folder: Path, *, expect_commit: str
) -> tuple[RetrainBundle | ChallengerBundle, dict[str, bytes]]:
    """One bundle folder: bundle.json (kind from the closed vocabulary), exactly its kind's regular
    files, each within its size and matching its sha256, made on `expect_commit`."""
    folder = Path(folder)
    _real_folder(folder)
    present = {p.name for p in folder.iterdir()}
    extra = sorted(present - set(MAX_BYTES))
    if extra:
        raise BundleError(f"{folder}: unexpected files in the bundle: {extra[:5]}")
    raw = _read_member(folder, BUNDLE_FILE)
    try:
        bundle = _BUNDLE.validate_python(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder / BUNDLE_FILE}: not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(error_lines(exc))
        raise BundleError(f"{folder / BUNDLE_FILE}: {problems}") from None
    if bundle.commit != expect_commit:
        raise BundleError(
            f"{folder / BUNDLE_FILE}: commit {bundle.commit} is not the commit of this run ({expect_commit})"
        )
    members = bundle.members()
    extra = sorted(present - set(members) - {BUNDLE_FILE})
    if extra:
        raise BundleError(f"{folder}: files a {bundle.kind} bundle does not hold: {extra}")
    contents = {}
    for name, expected in members.items():
        contents[name] = _read_member(folder, name)
        if _sha256(contents[name]) != expected:
            raise BundleError(
                f"{folder / name}: sha256 differs from bundle.json's (changed after it was written)"
            )
    return bundle, contents


def _text(folder: Path, name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{folder / name}: not UTF-8 text") from None


def read_retraining_bundle(folder: Path, settings: Settings, *, expect_commit: str) -> VerifiedRetrain:
    """A retraining bundle: the window (rows as data, the contract's columns) and the report."""
    bundle, contents = read_bundle(folder, expect_commit=expect_commit)
    if not isinstance(bundle, RetrainBundle):
        raise BundleError(f"{Path(folder) / BUNDLE_FILE}: kind {bundle.kind!r}, expected 'retrain'")
    report = _text(folder, REPORT_FILE, contents[REPORT_FILE])
    frame = _read_window(Path(folder) / WINDOW_FILE, contents[WINDOW_FILE], settings)
    if len(frame) != bundle.rows:
        raise BundleError(f"{Path(folder) / WINDOW_FILE}: {len(frame)} rows, bundle.json says {bundle.rows}")
    return VerifiedRetrain(bundle, frame, report)


def read_challenger_bundle(folder: Path, settings: Settings, *, expect_commit: str) -> VerifiedChallenger:
    """A challenger bundle, checked against deploy/ as checked out: the pointer file's sha256, the
    challenger's and production's versions, and decision.json agreeing with bundle.json."""
    from gitops_ml.monitoring.challenger import decision_from_dict
    from gitops_ml.registry.challenger import ChallengerError, challenger_path, read_challenger
    from gitops_ml.registry.pointer import read_pointer

    folder = Path(folder)
    bundle, contents = read_bundle(folder, expect_commit=expect_commit)
    if not isinstance(bundle, ChallengerBundle):
        raise BundleError(f"{folder / BUNDLE_FILE}: kind {bundle.kind!r}, expected 'challenger'")
    path = challenger_path(settings.registry)
    if not path.is_file():
        raise BundleError(
            f"{folder / BUNDLE_FILE}: decides on challenger {bundle.challenger_version}, "
            f"but {path} does not exist at {expect_commit}"
        )
    if _sha256(path.read_bytes()) != bundle.pointer_sha256:
        raise BundleError(
            f"{folder / BUNDLE_FILE}: pointer_sha256 is not the sha256 of {path} at {expect_commit} "
            "(the decision was made on another challenger file)"
        )
    try:
        challenger = read_challenger(path)
    except ChallengerError as exc:
        raise BundleError(f"{path}: {exc}") from None
    production = read_pointer(settings.registry.pointer)
    found = {
        "challenger_version": challenger.version if challenger else None,
        "production_version": production.version if production else None,
    }
    for key, value in found.items():
        if getattr(bundle, key) != value:
            raise BundleError(
                f"{folder / BUNDLE_FILE}: {key} {getattr(bundle, key)!r} is not deploy/'s {value!r} at {expect_commit}"
            )
    try:
        decision = decision_from_dict(json.loads(_text(folder, DECISION_FILE, contents[DECISION_FILE])))
    except (json.JSONDecodeError, ValueError) as exc:
        raise BundleError(f"{folder / DECISION_FILE}: {exc}") from None
    claimed = (bundle.action, bundle.challenger_version, bundle.production_version)
    if (decision.action, decision.challenger_version, decision.production_version) != claimed:
        raise BundleError(
            f"{folder / DECISION_FILE}: decision {decision.action} of {decision.challenger_version} vs "
            f"{decision.production_version} is not bundle.json's {' of '.join(claimed[:2])} vs {claimed[2]}"
        )
    return VerifiedChallenger(bundle, decision, _text(folder, REPORT_FILE, contents[REPORT_FILE]))


def read_bundles(
    bundles_dir: Path, settings: Settings, *, expect_commit: str
) -> tuple[VerifiedRetrain | None, VerifiedChallenger | None]:
    """Every bundle under `bundles_dir` (folders named by kind, nothing else), each verified."""
    root = Path(bundles_dir)
    _real_folder(root)
    names = sorted(p.name for p in root.iterdir())
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise BundleError(f"{root}: only bundle folders {list(KINDS)} may be here; found {unknown[:5]}")
    if not names:
        raise BundleError(f"{root}: no bundle in it")
    for name in names:
        _real_folder(root / name)
    retrain = (
        read_retraining_bundle(root / "retrain", settings, expect_commit=expect_commit)
        if "retrain" in names
        else None
    )
    challenger = (
        read_challenger_bundle(root / "challenger", settings, expect_commit=expect_commit)
        if "challenger" in names
        else None
    )
    return retrain, challenger


def open_prs_from_bundles(
    settings: Settings, bundles_dir: Path, *, repo_dir: Path, expect_commit: str, store_url: str | None
) -> BundlePrs:
    """The trusted half of a split monitor: verify every bundle, then open or update its PR.

    The checkout must be at `expect_commit` (the commit the monitor ran on). Retraining rows go
    through the same export (contract rules, ids already trained on) as a local run; a challenger
    decision through the same promote/retire PR code as a local monitor run.
    """
    from gitops_ml.ci_artifacts import neutralize_mentions
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.jobs.challenger import open_decision_pr
    from gitops_ml.jobs.retrain import open_retraining_pr

    head = GitRepo(repo_dir).head_commit()
    if head != expect_commit:
        raise BundleError(f"{repo_dir}: checked out at {head}, not at the expected commit {expect_commit}")
    retrain, challenger = read_bundles(bundles_dir, settings, expect_commit=expect_commit)
    # the reports came from a job that read client-written rows: they notify nobody
    retrain_pr = (
        open_retraining_pr(
            settings,
            retrain.window,
            neutralize_mentions(retrain.report),
            repo_dir=repo_dir,
            window_end=retrain.bundle.window_end,
            store_url=store_url,
        )
        if retrain is not None
        else None
    )
    challenger_pr = (
        open_decision_pr(
            settings,
            challenger.decision,
            neutralize_mentions(challenger.report),
            repo_dir=repo_dir,
            pointer_sha256=challenger.bundle.pointer_sha256,  # the file as judged, checked on the branch
        )
        if challenger is not None
        else None
    )
    return BundlePrs(retrain_pr, challenger_pr)


def _read_window(path: Path, data: bytes, settings: Settings) -> pd.DataFrame:
    """Columns must be the contract's inputs (some may be missing: the export counts that) + label."""
    from gitops_ml.data.acquire import parse_csv_bytes

    allowed = [*window_columns(settings), LABEL_COLUMN]
    try:
        frame = parse_csv_bytes(data, str(path))
    except GitopsMLError as exc:
        raise BundleError(str(exc)) from None
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown or LABEL_COLUMN not in frame.columns:
        shown = [re.sub(r"[^\w.-]", "?", str(c))[:40] for c in unknown[:5]]
        raise BundleError(
            f"{path}: columns must be the contract's inputs and {LABEL_COLUMN!r}; "
            f"unknown: {shown}{'' if LABEL_COLUMN in frame.columns else f', {LABEL_COLUMN!r} missing'}"
        )
    return frame
