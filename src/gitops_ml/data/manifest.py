"""`data/manifest.yaml`: the list of data batches a model is trained on, with their checksums.

A batch is a file (`csv` or `parquet`, at a path relative to the manifest's folder or at any
fsspec URL) with its sha256, or a SQL source (`sql: {url, table | query}`, no sha256). The
manifest hash (sha256 of the parsed content) goes into every model's lineage, so a change of
data is a reviewable diff of this file.

    version: 1
    description: bundled churn example
    batches:
      - name: churn-2026-01
        uri: batches/churn-2026-01.csv
        format: csv
        sha256: 3f5a...
        rows: 5000
        time_range: {start: 2026-01-01, end: 2026-01-01}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gitops_ml.errors import DataError
from gitops_ml.io_utils import atomic_write_bytes, sha256_of
from gitops_ml.parsing import error_lines, read_yaml

Format = Literal["csv", "parquet", "sql"]
FORMAT_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _time_value(value: Any) -> date | int:
    """An ISO date (YAML may already have parsed it) or an integer period; nothing else, no guessing."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("time_value", "Input should be a valid date (YYYY-MM-DD) or an integer period")


TimeValue = Annotated[date | int, BeforeValidator(_time_value)]


class TimeRange(_Strict):
    """Inclusive range of the batch's time column: ISO dates, or integer periods (a day index, a year).

    The kind follows the column: an integer column is a period number and stays one; it is never
    read as a timestamp.
    """

    start: TimeValue
    end: TimeValue

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if isinstance(self.start, int) != isinstance(self.end, int):
            raise ValueError(f"start {self.start} and end {self.end} must both be dates or both integers")
        if self.end < self.start:  # type: ignore[operator]
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class SqlSource(_Strict):
    """A SQLAlchemy URL and either a table or a query."""

    url: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class BatchEntry(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    uri: str | None = Field(None, description="path relative to the manifest's folder, or an fsspec URL")
    format: Format
    sha256: str | None = None
    rows: int | None = Field(None, ge=0)
    time_range: TimeRange | None = None
    sql: SqlSource | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_RE.match(value):
            raise ValueError("must be 64 lowercase hex characters")
        return value

    @model_validator(mode="after")
    def _source(self) -> BatchEntry:
        if self.format == "sql":
            if self.sql is None:
                raise ValueError("format 'sql' needs a 'sql: {url, table | query}' block")
            if self.sha256 is not None:
                raise ValueError("a SQL batch has no sha256 (its content is not a file)")
        else:
            if self.sql is not None:
                raise ValueError(f"'sql' is only for format 'sql', not '{self.format}'")
            if not self.uri:
                raise ValueError(f"format '{self.format}' needs a 'uri'")
            if self.sha256 is None:
                raise ValueError("a file batch needs its 'sha256'")
        return self


class Manifest(_Strict):
    version: Literal[1] = 1
    description: str | None = None
    batches: list[BatchEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Manifest:
        names = [b.name for b in self.batches]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate batch names: {dupes}")
        return self

    def batch(self, name: str) -> BatchEntry:
        for entry in self.batches:
            if entry.name == name:
                return entry
        raise KeyError(name)


# --- reading and writing -------------------------------------------------------------------------


def parse_manifest(data: Any, source: str = "<manifest>") -> Manifest:
    """Validate already-loaded YAML; DataError lists every problem as `source: key.path: message`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping with 'batches', got {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {line}" for line in error_lines(exc, data)]
        raise DataError("invalid data manifest:\n  " + "\n  ".join(lines)) from exc


def load_manifest(path: Path | str) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data manifest not found")
    return parse_manifest(read_yaml(path, DataError), str(path))


def dump_manifest(manifest: Manifest) -> str:
    # python mode keeps dates as dates, so YAML writes them unquoted (2026-01-01)
    data = manifest.model_dump(mode="python", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)


def atomic_write(path: Path | str, content: str | bytes) -> None:
    """Readers never see half a file (see io_utils.atomic_write_bytes)."""
    atomic_write_bytes(Path(path), content.encode("utf-8") if isinstance(content, str) else content)


def write_manifest(path: Path | str, manifest: Manifest) -> None:
    atomic_write(path, dump_manifest(manifest))


def manifest_hash(manifest: Manifest) -> str:
    """sha256 of the manifest's content (canonical JSON): formatting, comments and key order do not count."""
    payload = json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --- locations and checksums ----------------------------------------------------------------------


def is_url(uri: str) -> bool:
    return "://" in uri


def resolve_uri(uri: str, base_dir: Path | str) -> str:
    """A URL stays as is; a relative path is taken from `base_dir` (the manifest's folder)."""
    if is_url(uri):
        return uri
    path = Path(uri)
    return str(path if path.is_absolute() else Path(base_dir) / path)


def repository_root(start: Path | str) -> Path:
    """The git work tree holding `start` (its nearest ancestor with a `.git`); outside git, the
    working directory when `start` lies in it (config paths are relative to it), else `start`."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    cwd = Path.cwd().resolve()
    return cwd if here.is_relative_to(cwd) else here


def confine_uri(uri: str, base_dir: Path | str, allowed_prefixes: Sequence[str] = (), *, label: str) -> str:
    """Where a manifest entry may point: a file inside the repository tree (symlinks resolved), or a
    URL under one of `dataset.allowed_uri_prefixes`. A pull request edits the manifest, so it must
    not reach anything else on the machine (`../`, `/etc/passwd`, `file:///...`) or the network."""
    if is_url(uri):
        if any(uri.startswith(prefix) for prefix in allowed_prefixes) and "/../" not in uri:
            return uri
        allowed = ", ".join(allowed_prefixes) or "none"
        raise DataError(
            f"{label}: uri {uri!r} is a URL outside dataset.allowed_uri_prefixes (allowed: {allowed}); "
            "a batch is a file inside the repository or under an allowed bucket"
        )
    root = repository_root(base_dir)
    target = (Path(base_dir) / uri).resolve()
    if not target.is_relative_to(root):
        raise DataError(
            f"{label}: uri {uri!r} resolves to {target}, outside the repository {root}; "
            "a batch must be a file inside the repository (or a URL under dataset.allowed_uri_prefixes)"
        )
    return str(Path(base_dir) / uri) if not Path(uri).is_absolute() else uri


def open_binary(path_or_url: Path | str):
    """Open a local path or any fsspec URL for reading bytes."""
    target = str(path_or_url)
    if not is_url(target):
        return open(target, "rb")
    import fsspec

    return fsspec.open(target, "rb").open()


def file_sha256(path_or_url: Path | str) -> str:
    """sha256 of a local file or URL, read in chunks (large batches never sit in memory)."""
    with open_binary(path_or_url) as handle:
        return sha256_of(handle)


def short_hash(value: str | None) -> str:
    return f"{value[:12]}…" if value else "none"


def time_range_of(frame: Any, time_column: str, *, label: str) -> TimeRange:
    """Inclusive min/max of the time column; DataError if it is missing, empty or neither dates nor integers.

    Integer values are periods (their range is integers); only text or datetime values are dates.
    """
    import pandas as pd

    from gitops_ml.contracts.draft import is_integral

    if time_column not in frame.columns:
        raise DataError(f"{label}: time column '{time_column}' not found (columns: {list(frame.columns)})")
    values = frame[time_column]
    if is_integral(values):
        if values.notna().sum() == 0:
            raise DataError(f"{label}: time column '{time_column}' has no values")
        return TimeRange(start=int(values.min()), end=int(values.max()))
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"{label}: time column '{time_column}' holds fractional numbers: neither dates nor "
            f"integer periods, e.g. {list(values.dropna().astype(str).unique()[:5])}"
        )
    parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = values[parsed.isna() & values.notna()]
    if len(bad):
        raise DataError(
            f"{label}: time column '{time_column}' has values that are not dates: "
            f"{list(bad.astype(str).unique()[:5])}"
        )
    if parsed.notna().sum() == 0:
        raise DataError(f"{label}: time column '{time_column}' has no values")
    return TimeRange(start=parsed.min().date(), end=parsed.max().date())


def csv_batch(
    name: str, frame: Any, time_column: str | None, *, subdir: str = "batches"
) -> tuple[BatchEntry, str, bytes]:
    """The manifest entry of `frame` written as `<subdir>/<name>.csv`, that relative path and the CSV bytes."""
    data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    relative = f"{subdir}/{name}.csv"
    time_range = time_range_of(frame, time_column, label=f"batch '{name}'") if time_column else None
    entry = BatchEntry(
        name=name,
        uri=relative,
        format="csv",
        sha256=hashlib.sha256(data).hexdigest(),
        rows=len(frame),
        time_range=time_range,
    )
    return entry, relative, data


def write_batches(
    out_dir: Path | str,
    batches: dict[str, Any],
    *,
    time_column: str | None,
    description: str | None = None,
    subdir: str = "batches",
) -> Manifest:
    """Write DataFrames as `out_dir/<subdir>/<name>.csv` and a fresh `out_dir/manifest.yaml` listing them.

    CSV bytes depend only on the frames (`\\n` line ends, no index), so the same frames give
    byte-identical files and the same manifest hash. Files are written atomically, the manifest last.
    """
    out_dir = Path(out_dir)
    entries = []
    payloads: list[tuple[Path, bytes]] = []
    for name, frame in batches.items():
        entry, relative, data = csv_batch(name, frame, time_column, subdir=subdir)
        entries.append(entry)
        payloads.append((out_dir / relative, data))
    manifest = Manifest(description=description, batches=entries)
    for path, data in payloads:
        atomic_write(path, data)
    write_manifest(out_dir / "manifest.yaml", manifest)
    return manifest
