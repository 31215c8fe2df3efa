"""Adding a batch to the manifest: the file is read with acquisition's checks, then listed.

Its own module because it needs both the manifest (data.manifest) and the readers (data.acquire),
and acquire already reads the manifest.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from gitops_ml.data.acquire import read_file_batch
from gitops_ml.data.manifest import (
    FORMAT_BY_SUFFIX,
    BatchEntry,
    Format,
    Manifest,
    is_url,
    load_manifest,
    time_range_of,
    write_manifest,
)
from gitops_ml.errors import DataError
from gitops_ml.parsing import error_lines


def _relative_uri(batch_file: str, base_dir: Path) -> str:
    if is_url(batch_file):
        return batch_file
    path = Path(batch_file).resolve()
    try:
        return path.relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def add_batch(
    manifest_path: Path | str,
    batch_file: Path | str,
    *,
    name: str | None = None,
    time_column: str | None = None,
    format: Format | None = None,
    uri: str | None = None,
) -> BatchEntry:
    """Append the entry for `batch_file` (sha256, rows, time range) to the manifest, atomically.

    The file is read with the same checks as acquisition, so a broken file is refused here rather
    than in a later training run. The manifest is created if missing. `uri` overrides how the file
    is referenced (default: relative to the manifest's folder when inside it, else absolute/URL).
    Refuses a name, uri or sha256 already listed.
    """
    manifest_path = Path(manifest_path)
    base_dir = manifest_path.parent
    source = str(batch_file)
    manifest = load_manifest(manifest_path) if manifest_path.exists() else Manifest()
    if format is None:
        suffix = Path(source.split("?")[0]).suffix.lower()
        if suffix not in FORMAT_BY_SUFFIX:
            raise DataError(
                f"{source}: cannot tell the format from '{suffix or 'no suffix'}' (use csv or parquet)"
            )
        format = FORMAT_BY_SUFFIX[suffix]  # type: ignore[assignment]
    if format == "sql":
        raise DataError(f"{source}: add_batch takes files; write SQL batches into the manifest by hand")
    if name is None:
        name = Path(source.split("?")[0]).stem
    entry_uri = uri or _relative_uri(source, base_dir)

    assert format is not None
    label = f"batch '{name}' ({source})"
    frame, sha = read_file_batch(source, format, label=label)
    for other in manifest.batches:
        if other.name == name:
            raise DataError(f"{manifest_path}: batch '{name}' is already listed")
        if other.uri == entry_uri:
            raise DataError(f"{manifest_path}: {entry_uri} is already listed as batch '{other.name}'")
        if other.sha256 == sha:
            raise DataError(f"{manifest_path}: {source} has the same sha256 as batch '{other.name}'")

    time_range = None
    if time_column:
        time_range = time_range_of(frame, time_column, label=label)
    try:
        entry = BatchEntry(
            name=name, uri=entry_uri, format=format, sha256=sha, rows=len(frame), time_range=time_range
        )
        updated = Manifest(
            version=manifest.version, description=manifest.description, batches=[*manifest.batches, entry]
        )
    except ValidationError as exc:
        raise DataError(f"{manifest_path}: cannot add '{name}': {'; '.join(error_lines(exc))}") from exc
    write_manifest(manifest_path, updated)
    return entry
