from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import yaml

from gitops_ml.data.add_batch import add_batch
from gitops_ml.data.manifest import (
    BatchEntry,
    Manifest,
    dump_manifest,
    file_sha256,
    load_manifest,
    manifest_hash,
    write_batches,
)
from gitops_ml.errors import DataError

from .helpers import csv_bytes, write_manifest

SHA = "a" * 64


def _entry(**overrides: object) -> dict[str, object]:
    return {"name": "b1", "uri": "b1.csv", "format": "csv", "sha256": SHA, "rows": 3, **overrides}


def test_load_valid_manifest(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        [
            _entry(time_range={"start": "2026-01-01", "end": "2026-01-31"}),
            {"name": "from-db", "format": "sql", "sql": {"url": "sqlite:///x.db", "table": "churn"}},
        ],
        description="demo",
    )
    manifest = load_manifest(path)
    assert manifest.description == "demo"
    assert manifest.batch("b1").time_range.start == date(2026, 1, 1)  # type: ignore[union-attr]
    assert manifest.batch("from-db").sql.table == "churn"  # type: ignore[union-attr]
    assert load_manifest(path) == manifest
    with pytest.raises(Exception):  # noqa: B017 - frozen model, any pydantic error type
        manifest.description = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (_entry(colour="red"), r"batches\[0\] \(b1\)\.colour: Extra inputs are not permitted"),
        (_entry(format="xlsx"), r"batches\[0\] \(b1\)\.format: Input should be 'csv', 'parquet' or 'sql'"),
        (_entry(sha256=None), r"batches\[0\] \(b1\): Value error, a file batch needs its 'sha256'"),
        (_entry(sha256="ABC"), r"batches\[0\] \(b1\)\.sha256: Value error, must be 64 lowercase hex"),
        (_entry(rows=-1), r"batches\[0\] \(b1\)\.rows: Input should be greater than or equal to 0"),
        (_entry(uri=None), r"batches\[0\] \(b1\): Value error, format 'csv' needs a 'uri'"),
        (
            _entry(time_range={"start": "2026-02-01", "end": "2026-01-01"}),
            r"batches\[0\] \(b1\)\.time_range: Value error, end 2026-01-01 is before start 2026-02-01",
        ),
        (
            _entry(time_range={"start": "soon", "end": "2026-01-01"}),
            r"batches\[0\] \(b1\)\.time_range\.start: Input",
        ),
        (
            {"name": "q", "format": "sql", "sha256": SHA, "sql": {"url": "sqlite://", "table": "t"}},
            r"batches\[0\] \(q\): Value error, a SQL batch has no sha256",
        ),
        (
            {"name": "q", "format": "sql", "sql": {"url": "sqlite://", "table": "t", "query": "select 1"}},
            r"batches\[0\] \(q\)\.sql: Value error, give exactly one of 'table' or 'query'",
        ),
        ({"name": "q", "format": "sql"}, r"batches\[0\] \(q\): Value error, format 'sql' needs a 'sql"),
    ],
)
def test_invalid_entries_name_file_and_key_path(tmp_path: Path, batch: dict, expected: str) -> None:
    path = write_manifest(tmp_path, [batch])
    with pytest.raises(DataError, match=f"{path}: {expected}"):
        load_manifest(path)


def test_manifest_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DataError, match=f"{missing}: data manifest not found"):
        load_manifest(missing)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("batches: [\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{bad_yaml}: not valid YAML"):
        load_manifest(bad_yaml)
    a_list = tmp_path / "list.yaml"
    a_list.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected a mapping with 'batches', got list"):
        load_manifest(a_list)
    dupes = write_manifest(tmp_path, [_entry(), _entry(uri="other.csv")])
    with pytest.raises(DataError, match=r"duplicate batch names: \['b1'\]"):
        load_manifest(dupes)
    version = write_manifest(tmp_path, [], version=2)
    with pytest.raises(DataError, match=r"version: Input should be 1"):
        load_manifest(version)


def test_manifest_hash_is_content_not_formatting(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, [_entry(time_range={"start": "2026-01-01", "end": "2026-01-01"})])
    original = manifest_hash(load_manifest(path))
    assert len(original) == 64
    reordered = yaml.safe_load(path.read_text())
    reordered["batches"][0] = dict(reversed(list(reordered["batches"][0].items())))
    path.write_text("# a comment\n" + yaml.safe_dump(reordered, sort_keys=True, indent=4))
    assert manifest_hash(load_manifest(path)) == original
    changed = write_manifest(
        tmp_path, [_entry(rows=4, time_range={"start": "2026-01-01", "end": "2026-01-01"})]
    )
    assert manifest_hash(load_manifest(changed)) != original


def test_dump_round_trips(tmp_path: Path) -> None:
    manifest = Manifest(
        batches=[BatchEntry.model_validate(_entry(time_range={"start": "2026-01-01", "end": "2026-01-02"}))]
    )
    text = dump_manifest(manifest)
    assert "start: 2026-01-01\n" in text and "null" not in text
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert load_manifest(path) == manifest


def test_file_sha256_local_file_url_and_memory(tmp_path: Path) -> None:
    data = b"x" * (3 << 20) + b"tail"  # several streaming chunks
    expected = hashlib.sha256(data).hexdigest()
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    assert file_sha256(local) == expected
    assert file_sha256(str(local)) == expected
    assert file_sha256(local.as_uri()) == expected
    with fsspec.open("memory://sha-test/blob.bin", "wb") as handle:
        handle.write(data)
    assert file_sha256("memory://sha-test/blob.bin") == expected


def test_add_batch_creates_and_appends(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    manifest_path = tmp_path / "data" / "manifest.yaml"
    batch_dir = tmp_path / "data" / "batches"
    batch_dir.mkdir(parents=True)
    first, second = batch_dir / "churn-2026-01.csv", batch_dir / "churn-2026-02.csv"
    first.write_bytes(csv_bytes(small_batches[0]))
    second.write_bytes(csv_bytes(small_batches[1]))

    entry = add_batch(manifest_path, first, time_column="snapshot_date")
    assert entry.name == "churn-2026-01"
    assert entry.uri == "batches/churn-2026-01.csv"
    assert entry.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert entry.rows == 200
    assert (entry.time_range.start, entry.time_range.end) == (date(2026, 1, 1), date(2026, 1, 1))  # type: ignore[union-attr]

    add_batch(manifest_path, second, name="feb", time_column="snapshot_date")
    manifest = load_manifest(manifest_path)
    assert [b.name for b in manifest.batches] == ["churn-2026-01", "feb"]
    assert sorted(p.name for p in manifest_path.parent.iterdir()) == [
        "batches",
        "manifest.yaml",
    ]  # no temp files


def test_add_batch_outside_folder_and_memory_url(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    manifest_path = tmp_path / "m" / "manifest.yaml"
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(csv_bytes(small_batches[0]))
    assert add_batch(manifest_path, outside).uri == str(outside.resolve())
    with fsspec.open("memory://add-test/feb.csv", "wb") as handle:
        handle.write(csv_bytes(small_batches[1]))
    entry = add_batch(manifest_path, "memory://add-test/feb.csv", time_column="snapshot_date")
    assert entry.uri == "memory://add-test/feb.csv" and entry.name == "feb" and entry.time_range is not None


def test_add_batch_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, small_batches: list[pd.DataFrame]
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes(small_batches[0]))
    manifest_path = tmp_path / "manifest.yaml"
    add_batch(manifest_path, good)
    before = manifest_path.read_bytes()

    header_only = tmp_path / "header.csv"
    header_only.write_text("customer_id,snapshot_date\n")
    with pytest.raises(DataError, match=r"batch 'header' .*header.csv\): header-only file \(0 rows"):
        add_batch(manifest_path, header_only)
    with pytest.raises(DataError, match="batch 'good' is already listed"):
        add_batch(manifest_path, good)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(good.read_bytes())
    with pytest.raises(DataError, match="copy.csv has the same sha256 as batch 'good'"):
        add_batch(manifest_path, copy)
    with pytest.raises(DataError, match="file not found"):
        add_batch(manifest_path, tmp_path / "missing.csv")
    with pytest.raises(DataError, match="cannot tell the format from '.txt'"):
        add_batch(manifest_path, tmp_path / "notes.txt")
    no_time = tmp_path / "no_time.csv"
    no_time.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"time column 'snapshot_date' not found \(columns: \['a', 'b'\]\)"):
        add_batch(manifest_path, no_time, time_column="snapshot_date")
    bad_dates = tmp_path / "bad_dates.csv"
    bad_dates.write_text("snapshot_date\n2026-01-01\nlast tuesday\n")
    with pytest.raises(DataError, match=r"not dates: \['last tuesday'\]"):
        add_batch(manifest_path, bad_dates, time_column="snapshot_date")
    assert manifest_path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_batches_is_byte_stable(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    frames = {"churn-2026-01": small_batches[0], "churn-2026-02": small_batches[1]}
    one = write_batches(tmp_path / "one", frames, time_column="snapshot_date", description="d")
    two = write_batches(tmp_path / "two", frames, time_column="snapshot_date", description="d")
    assert manifest_hash(one) == manifest_hash(two)
    assert (tmp_path / "one/manifest.yaml").read_bytes() == (tmp_path / "two/manifest.yaml").read_bytes()
    assert load_manifest(tmp_path / "one/manifest.yaml") == one
    for entry in one.batches:
        assert file_sha256(tmp_path / "one" / entry.uri) == entry.sha256  # type: ignore[operator]
