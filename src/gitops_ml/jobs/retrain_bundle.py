"""The retraining bundle: what the token-free monitor job hands to the trusted job that opens the PR.

The monitor reads the prediction store (rows any API client wrote) and runs the project's code, so
in CI it holds no write token. When it decides to retrain it writes a bundle instead: the labelled
window (contract inputs + `label`) as CSV, the report, and bundle.json with their sha256 and the
commit it ran on. The trusted job reads the bundle as data only: exactly these three regular files,
bounded sizes, hashes and commit checked, columns from the default branch's contract; the rows are
then exported again (contract rules, ids already in the training data) on the retraining branch.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.parsing import error_lines

BUNDLE_FILE = "bundle.json"
WINDOW_FILE = "window.csv"
REPORT_FILE = "report.md"
LABEL_COLUMN = "label"
# bundle.json is a few hundred bytes; a report is capped below GitHub's 65,536-character body anyway
MAX_BYTES = {BUNDLE_FILE: 64 * 1024, REPORT_FILE: 1024 * 1024, WINDOW_FILE: 512 * 1024 * 1024}
_SHA256 = r"^[0-9a-f]{64}$"


class BundleError(GitopsMLError):
    """A retraining bundle that is malformed or does not match what it claims: nothing is pushed."""


class RetrainBundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the commit the monitor ran on")
    window_end: AwareDatetime
    model_version: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:+-]+$")
    rows: int = Field(ge=1, description="labelled rows in window.csv")
    window_sha256: str = Field(pattern=_SHA256)
    report_sha256: str = Field(pattern=_SHA256)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def window_columns(settings: Settings) -> list[str]:
    """The contract's input columns (the target comes from `label`), in contract order."""
    from gitops_ml.contracts.model import load_contract

    contract = load_contract(settings.dataset.contract)
    return [c for c in contract.column_names if c != settings.dataset.target]


def write_retraining_bundle(
    settings: Settings,
    window: pd.DataFrame,
    report: str,
    out_dir: Path,
    *,
    window_end: datetime,
    model_version: str,
    commit: str,
) -> RetrainBundle:
    """The labelled rows of `window` with the report, for the trusted job (which exports them)."""
    from gitops_ml.io_utils import atomic_write_bytes, atomic_write_text

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
    out_dir = Path(out_dir)
    (out_dir / BUNDLE_FILE).unlink(missing_ok=True)  # a half-written bundle never has its bundle.json
    atomic_write_bytes(out_dir / WINDOW_FILE, data)
    atomic_write_bytes(out_dir / REPORT_FILE, text)
    atomic_write_text(out_dir / BUNDLE_FILE, bundle.model_dump_json(indent=2) + "\n")
    return bundle


def _read_member(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BundleError(f"{path}: missing from the retraining bundle") from None
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{path}: not a regular file (symlinks and folders are refused)")
    if info.st_size > MAX_BYTES[name]:
        raise BundleError(f"{path}: {info.st_size:,} bytes, more than the {MAX_BYTES[name]:,} allowed")
    return path.read_bytes()


def read_retraining_bundle(
    folder: Path, settings: Settings, *, expect_commit: str
) -> tuple[RetrainBundle, pd.DataFrame, str]:
    """bundle.json, the window (rows as data) and the report; BundleError for anything unexpected."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise BundleError(f"{folder}: not a folder")
    extra = sorted({p.name for p in folder.iterdir()} - set(MAX_BYTES))
    if extra:
        raise BundleError(f"{folder}: unexpected files in the retraining bundle: {extra[:5]}")
    raw = _read_member(folder, BUNDLE_FILE)
    try:
        bundle = RetrainBundle.model_validate(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder / BUNDLE_FILE}: not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(error_lines(exc))
        raise BundleError(f"{folder / BUNDLE_FILE}: {problems}") from None
    if bundle.commit != expect_commit:
        raise BundleError(
            f"{folder / BUNDLE_FILE}: commit {bundle.commit} is not the commit of this run ({expect_commit})"
        )
    data = _read_member(folder, WINDOW_FILE)
    text = _read_member(folder, REPORT_FILE)
    for name, content, expected in (
        (WINDOW_FILE, data, bundle.window_sha256),
        (REPORT_FILE, text, bundle.report_sha256),
    ):
        if _sha256(content) != expected:
            raise BundleError(
                f"{folder / name}: sha256 differs from bundle.json's (changed after it was written)"
            )
    try:
        report = text.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{folder / REPORT_FILE}: not UTF-8 text") from None
    frame = _read_window(folder / WINDOW_FILE, data, settings)
    if len(frame) != bundle.rows:
        raise BundleError(f"{folder / WINDOW_FILE}: {len(frame)} rows, bundle.json says {bundle.rows}")
    return bundle, frame, report


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
