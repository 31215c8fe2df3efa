"""Data acquisition: read every batch listed in a manifest into one DataFrame, verified.

Files (CSV, Parquet; local paths or any fsspec URL) are checked against the manifest's sha256
before a single byte is parsed, then against the usual ways a file breaks (empty, header only,
truncated last line, unterminated quote, bad bytes, corrupt Parquet). SQL batches are read
through SQLAlchemy (a table or a query). Values are read raw: pandas infers types and nothing
is coerced to the contract, because the contract validator is the one that reports wrong types.

Every failure is a `DataError` naming the batch, the file or source and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from gitops_ml.data.manifest import (
    BatchEntry,
    TimeRange,
    confine_uri,
    load_manifest,
    manifest_hash,
    open_binary,
    short_hash,
    time_range_of,
)
from gitops_ml.errors import DataError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class BatchInfo:
    """What was read for one manifest entry. For SQL, `sha256` hashes the rows read (content hash)."""

    name: str
    rows: int
    sha256: str
    source: str
    format: str
    time_range: TimeRange | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the time range as ISO dates."""
        return {
            "name": self.name,
            "rows": self.rows,
            "sha256": self.sha256,
            "source": self.source,
            "format": self.format,
            "time_range": self.time_range.model_dump(mode="json") if self.time_range is not None else None,
        }


@dataclass(frozen=True)
class AcquiredData:
    frame: pd.DataFrame
    batches: tuple[BatchInfo, ...]
    manifest_hash: str

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def origins(self) -> tuple[tuple[str, int], ...]:
        """(file or source, rows) per batch in frame order: where each row of `frame` comes from."""
        return tuple((b.source, b.rows) for b in self.batches)


# --- files ------------------------------------------------------------------------------------------


def _read_bytes(source: str, label: str) -> bytes:
    try:
        with open_binary(source) as handle:
            chunks = []
            while chunk := handle.read(_CHUNK):
                chunks.append(chunk)
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{label}: is a folder, not a file") from None
    except (OSError, ValueError, ImportError) as exc:  # fsspec: unknown protocol, missing backend, I/O
        raise DataError(f"{label}: cannot open: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks)


def _check_utf8(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # a BOM (Excel) is not part of the first name
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise DataError(
            f"{label}: not UTF-8 text: invalid byte 0x{bad} at byte offset {exc.start} (line {line})"
        ) from None


def _check_header(text: str, label: str) -> list[str]:
    first = text.split("\n", 1)[0].rstrip("\r")
    header = next(csv.reader([first]), [])
    if not any(h.strip() for h in header):
        raise DataError(f"{label}: no header line (the file holds only blank lines)")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{label}: duplicate column names in the header: {dupes}")
    return header


def _check_last_line(text: str, n_columns: int, label: str) -> None:
    """A short last record is how a cut-off copy looks; pandas would silently pad it with NaN."""
    body = text.rstrip("\r\n")
    last = body[body.rfind("\n") + 1 :].rstrip("\r")
    if last.count('"') % 2:
        return  # the end of a multi-line quoted field; an unterminated quote fails in pandas instead
    fields = next(csv.reader([last]), [])
    if len(fields) < n_columns:
        line = body.count("\n") + 1
        raise DataError(
            f"{label}: truncated CSV: last line (line {line}) has {len(fields)} of {n_columns} fields"
        )


def parse_csv_bytes(data: bytes, label: str) -> pd.DataFrame:
    """A CSV batch's bytes as a frame; DataError naming `label` for anything malformed or truncated."""
    text = _check_utf8(data, label)
    header = _check_header(text, label)
    try:
        frame = pd.read_csv(io.StringIO(text), low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: no header line (the file holds only blank lines)") from None
    except pd.errors.ParserError as exc:
        message = str(exc).strip().replace("Error tokenizing data. C error: ", "")
        if "EOF inside string" in message:
            raise DataError(f"{label}: truncated CSV: unterminated quote ({message})") from None
        raise DataError(f"{label}: malformed CSV: {message}") from None
    if frame.empty:
        raise DataError(f"{label}: header-only file (0 rows; columns: {header})")
    _check_last_line(text, len(header), label)
    return frame


def _parse_parquet(data: bytes, label: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for corrupt files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{label}: corrupt or unreadable Parquet file: {message}") from None
    if frame.empty:
        raise DataError(f"{label}: Parquet file has 0 rows (columns: {list(frame.columns)})")
    return frame


def read_file_batch(
    source: str, format: str, *, label: str, expected_sha256: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Read one CSV/Parquet file (path or fsspec URL); returns the frame and the file's sha256.

    The checksum is compared before parsing: a changed file is reported as changed, not as
    whatever parse error its new bytes happen to cause.
    """
    data = _read_bytes(source, label)
    if not data:
        raise DataError(f"{label}: empty file (0 bytes)")
    actual = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise DataError(
            f"{label}: sha256 mismatch: manifest says {short_hash(expected_sha256)}, file has "
            f"{short_hash(actual)} (the file changed since it was listed)"
        )
    if format == "csv":
        frame = parse_csv_bytes(data, label)
    elif format == "parquet":
        frame = _parse_parquet(data, label)
    else:
        raise DataError(f"{label}: unknown file format '{format}' (csv or parquet)")
    return frame, actual


# --- SQL ----------------------------------------------------------------------------------------------


def _scrub(message: str, secrets: list[str]) -> str:
    from gitops_ml.data.sql_url import scrub

    first = message.strip().splitlines()[0] if message.strip() else ""
    return scrub(first, secrets)


def read_sql_batch(entry: BatchEntry, *, base_dir: Path, label: str) -> tuple[pd.DataFrame, str]:
    """Read a table or a query through SQLAlchemy. Credentials come from `${ENV_VAR}`s in the URL;
    messages show the URL with its password and query-parameter values hidden.

    A relative SQLite path is taken from the manifest's folder, like file URIs; a missing SQLite
    file is an error (SQLite would otherwise create an empty database).
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from gitops_ml.data.sql_url import expand_env, redact_url, url_secrets

    assert entry.sql is not None
    raw = expand_env(entry.sql.url, f"{label}: sql.url")
    try:
        url = make_url(raw)
    except Exception:  # the raw URL may hold a password: never echo it
        raise DataError(f"{label}: sql.url is not a valid SQLAlchemy URL") from None
    secret = url_secrets(raw)
    if (
        url.get_backend_name() == "sqlite"
        and url.database
        and url.database != ":memory:"
        and not url.database.startswith("file:")
    ):
        db_path = Path(url.database)
        if not db_path.is_absolute():
            db_path = base_dir / db_path
            url = url.set(database=str(db_path))
        if not db_path.is_file():
            raise DataError(f"{label}: cannot reach {redact_url(url)}: SQLite file {db_path} not found")
    shown = redact_url(url)
    connect_args = {"connect_timeout": 10} if url.get_backend_name() == "postgresql" else {}
    try:
        engine = sa.create_engine(url, connect_args=connect_args)
    except Exception as exc:  # NoSuchModuleError (no driver), bad arguments
        raise DataError(f"{label}: cannot use {shown}: {_scrub(str(exc), secret)}") from None
    try:
        try:
            conn = engine.connect()
        except Exception as exc:
            raise DataError(f"{label}: cannot reach {shown}: {_scrub(str(exc), secret)}") from None
        with conn:
            try:
                if entry.sql.table is not None:
                    if not sa.inspect(conn).has_table(entry.sql.table):
                        raise DataError(f"{label}: table '{entry.sql.table}' not found in {shown}")
                    frame = pd.read_sql_table(entry.sql.table, conn)
                else:
                    frame = pd.read_sql_query(sa.text(entry.sql.query or ""), conn)
            except DataError:
                raise
            except Exception as exc:
                what = f"table '{entry.sql.table}'" if entry.sql.table else "query"
                raise DataError(
                    f"{label}: reading {what} from {shown} failed: {_scrub(str(exc), secret)}"
                ) from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DataError(f"{label}: SQL source returned 0 rows")
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode("utf-8"))
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return frame, digest.hexdigest()


# --- the manifest -----------------------------------------------------------------------------------


def _check_columns(frames: list[tuple[str, pd.DataFrame]]) -> None:
    first_name, first = frames[0]
    reference = list(first.columns)
    problems = []
    for name, frame in frames[1:]:
        missing = [c for c in reference if c not in frame.columns]
        extra = [c for c in frame.columns if c not in reference]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {missing}")
            if extra:
                parts.append(f"has extra {extra}")
            problems.append(f"batch '{name}' {' and '.join(parts)}")
    if problems:
        raise DataError(
            f"batches have different columns (compared with batch '{first_name}'): " + "; ".join(problems)
        )


def _describe_sql(entry: BatchEntry) -> str:
    from gitops_ml.data.sql_url import redact_url

    assert entry.sql is not None
    shown = redact_url(entry.sql.url)  # as written: ${VARS} unexpanded, secrets hidden
    return f"{shown} table={entry.sql.table}" if entry.sql.table else f"{shown} query"


def _sort_key(time_range: TimeRange | None) -> tuple[int, int]:
    """Dated batches by start date, then integer-period batches by start, then undated ones."""
    if time_range is None:
        return (2, 0)
    if isinstance(time_range.start, date):
        return (0, time_range.start.toordinal())
    return (1, time_range.start)


def acquire(
    manifest_path: Path | str, *, time_column: str | None = None, allowed_uri_prefixes: Sequence[str] = ()
) -> AcquiredData:
    """Read, verify and concatenate every batch of the manifest.

    The frame is sorted by each batch's `time_range.start` (batches without one keep manifest
    order, after the dated ones) and its index reset. With `time_column`, every batch must have
    that column, its values must be dates inside the manifest's `time_range` when one is given,
    and batches without a `time_range` are ordered by their data. A file batch must lie inside the
    repository tree, a URL under one of `allowed_uri_prefixes` (`dataset.allowed_uri_prefixes`).
    """
    manifest_path = Path(manifest_path)
    manifest = load_manifest(manifest_path)
    if not manifest.batches:
        raise DataError(f"{manifest_path}: the manifest lists no batches")
    base_dir = manifest_path.parent
    loaded: list[tuple[tuple[int, int], int, BatchEntry, pd.DataFrame, BatchInfo]] = []
    for index, entry in enumerate(manifest.batches):
        if entry.format == "sql":
            source = _describe_sql(entry)
            label = f"{manifest_path}: batch '{entry.name}' ({source})"
            frame, sha = read_sql_batch(entry, base_dir=base_dir, label=label)
        else:
            assert entry.uri is not None
            source = confine_uri(
                entry.uri, base_dir, allowed_uri_prefixes, label=f"{manifest_path}: batch '{entry.name}'"
            )
            label = f"{manifest_path}: batch '{entry.name}' ({source})"
            frame, sha = read_file_batch(source, entry.format, label=label, expected_sha256=entry.sha256)
        if entry.rows is not None and len(frame) != entry.rows:
            raise DataError(f"{label}: manifest says {entry.rows} rows, the source has {len(frame)}")
        time_range = entry.time_range
        if time_column is not None:
            actual = time_range_of(frame, time_column, label=label)
            if time_range is not None and isinstance(time_range.start, int) != isinstance(actual.start, int):
                kinds = ("integer periods", "dates")
                raise DataError(
                    f"{label}: the manifest's time_range holds {kinds[isinstance(time_range.start, date)]}, "
                    f"'{time_column}' holds {kinds[isinstance(actual.start, date)]}"
                )
            if time_range is not None and (actual.start < time_range.start or actual.end > time_range.end):  # type: ignore[operator]
                raise DataError(
                    f"{label}: '{time_column}' spans {actual.start}..{actual.end}, outside the manifest's "
                    f"time_range {time_range.start}..{time_range.end}"
                )
            time_range = time_range or actual
        info = BatchInfo(
            name=entry.name,
            rows=len(frame),
            sha256=sha,
            source=source,
            format=entry.format,
            time_range=time_range,
        )
        loaded.append((_sort_key(time_range), index, entry, frame, info))

    loaded.sort(key=lambda item: (item[0], item[1]))
    _check_columns([(entry.name, frame) for _, _, entry, frame, _ in loaded])
    columns = list(loaded[0][3].columns)
    frame = pd.concat([f[columns] for _, _, _, f, _ in loaded], ignore_index=True)
    return AcquiredData(
        frame=frame,
        batches=tuple(info for *_, info in loaded),
        manifest_hash=manifest_hash(manifest),
    )
