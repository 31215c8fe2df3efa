from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from gitops_ml.data.acquire import acquire
from gitops_ml.data.manifest import load_manifest, manifest_hash, write_batches
from gitops_ml.errors import DataError

from .helpers import csv_bytes, file_entry, sha256_bytes, write_csv, write_manifest


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _one_csv_batch(tmp_path: Path, data: bytes, name: str = "b1", **extra: object) -> Path:
    uri = write_csv(tmp_path, name, data)
    return write_manifest(tmp_path, [file_entry(name, uri, data, **extra)])


# --- reading ----------------------------------------------------------------------------------------


def test_round_trip_equals_the_generated_frames(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    names = ["churn-2026-01", "churn-2026-02", "churn-2026-03"]
    manifest = write_batches(
        tmp_path, dict(zip(names, small_batches, strict=True)), time_column="snapshot_date"
    )
    data = acquire(tmp_path / "manifest.yaml", time_column="snapshot_date")
    pd.testing.assert_frame_equal(data.frame, pd.concat(small_batches, ignore_index=True))
    assert [b.name for b in data.batches] == names
    assert [b.rows for b in data.batches] == [200, 200, 200]
    assert [b.sha256 for b in data.batches] == [b.sha256 for b in manifest.batches]
    assert data.batches[0].source == str(tmp_path / "batches/churn-2026-01.csv")
    assert data.manifest_hash == manifest_hash(load_manifest(tmp_path / "manifest.yaml"))


def test_batches_sorted_by_time_range_and_index_reset(
    tmp_path: Path, small_batches: list[pd.DataFrame]
) -> None:
    entries = []
    for frame, name in zip(reversed(small_batches), ("mar", "feb", "jan"), strict=True):
        data = csv_bytes(frame)
        day = frame["snapshot_date"].iloc[0]
        entries.append(
            file_entry(name, write_csv(tmp_path, name, data), data, time_range={"start": day, "end": day})
        )
    # a batch without a time range goes last; with time_column its range comes from the data
    undated = small_batches[0].head(5).assign(customer_id=[f"CUST-99{i:05d}" for i in range(5)])
    undated_data = csv_bytes(undated)
    entries.insert(0, file_entry("undated", write_csv(tmp_path, "undated", undated_data), undated_data))
    path = write_manifest(tmp_path, entries)

    data = acquire(path)
    assert [b.name for b in data.batches] == ["jan", "feb", "mar", "undated"]
    assert data.frame.index.equals(pd.RangeIndex(605))
    assert data.frame["snapshot_date"].iloc[[0, 200, 400, 600]].tolist() == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
        "2026-01-01",
    ]
    dated = acquire(path, time_column="snapshot_date")
    assert [b.name for b in dated.batches] == ["undated", "jan", "feb", "mar"]  # ties keep manifest order
    assert str(dated.batches[0].time_range.start) == "2026-01-01"  # type: ignore[union-attr]


def test_values_are_read_raw_not_coerced(tmp_path: Path) -> None:
    data = b"customer_id,tenure_months,plan\nCUST-0000001,12,basic\nCUST-0000002,twelve,basic\n"
    frame = acquire(_one_csv_batch(tmp_path, data)).frame
    assert frame["tenure_months"].tolist() == ["12", "twelve"]  # left for the contract to report
    assert pd.api.types.is_string_dtype(frame["customer_id"])  # text, whichever dtype pandas uses for it


def test_parquet_file_url_and_memory_url(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    jan, feb, mar = small_batches
    parquet = _parquet_bytes(feb)
    (tmp_path / "feb.parquet").write_bytes(parquet)
    csv_jan = csv_bytes(jan)
    (tmp_path / "jan.csv").write_bytes(csv_jan)
    mem_data = csv_bytes(mar)
    with fsspec.open("memory://acquire-test/mar.csv", "wb") as handle:
        handle.write(mem_data)
    mem_parquet = _parquet_bytes(
        mar.head(10).assign(snapshot_date="2026-04-01", customer_id=[f"CUST-98{i:05d}" for i in range(10)])
    )
    with fsspec.open("memory://acquire-test/apr.parquet", "wb") as handle:
        handle.write(mem_parquet)
    path = write_manifest(
        tmp_path,
        [
            file_entry("mar", "memory://acquire-test/mar.csv", mem_data),
            file_entry("feb", "feb.parquet", parquet),
            file_entry("jan", (tmp_path / "jan.csv").as_uri(), csv_jan),
            file_entry("apr", "memory://acquire-test/apr.parquet", mem_parquet),
        ],
    )
    # URLs are read only under the prefixes config allows (dataset.allowed_uri_prefixes)
    allowed = ("memory://acquire-test/", tmp_path.as_uri() + "/")
    data = acquire(path, time_column="snapshot_date", allowed_uri_prefixes=allowed)
    assert [b.format for b in data.batches] == ["csv", "parquet", "csv", "parquet"]
    assert [b.name for b in data.batches] == ["jan", "feb", "mar", "apr"]
    assert len(data.frame) == 610
    got = data.frame.iloc[200:400].reset_index(drop=True)
    # Parquet gives None for a missing string, CSV gives NaN: compare with one null marker
    pd.testing.assert_frame_equal(
        got.astype(object).where(got.notna(), None),
        feb.reset_index(drop=True).astype(object).where(feb.notna().to_numpy(), None),
    )


def test_sql_table_and_query_from_sqlite(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    jan, feb, _ = small_batches
    with sqlite3.connect(tmp_path / "churn.db") as conn:
        jan.to_sql("churn_jan", conn, index=False)
        feb.to_sql("churn_all", conn, index=False)
    path = write_manifest(
        tmp_path,
        [
            {
                "name": "feb",
                "format": "sql",
                "rows": 150,
                "sql": {"url": "sqlite:///churn.db", "query": "SELECT * FROM churn_all WHERE rowid <= 150"},
            },
            {
                "name": "jan",
                "format": "sql",
                "time_range": {"start": "2026-01-01", "end": "2026-01-01"},
                "sql": {"url": f"sqlite:///{tmp_path / 'churn.db'}", "table": "churn_jan"},
            },
        ],
    )
    data = acquire(path, time_column="snapshot_date")
    assert [(b.name, b.rows) for b in data.batches] == [("jan", 200), ("feb", 150)]
    assert data.batches[0].source.endswith("churn.db table=churn_jan")
    assert data.frame["customer_id"].tolist() == [*jan["customer_id"], *feb["customer_id"].head(150)]
    assert len(data.batches[0].sha256) == 64
    assert acquire(path).batches[0].sha256 == data.batches[0].sha256  # content hash is stable


# --- failures: each names the batch/file and the problem -----------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, [file_entry("gone", "gone.csv", b"a\n1\n")])
    with pytest.raises(DataError, match=rf"batch 'gone' \({tmp_path}/gone.csv\): file not found"):
        acquire(path)
    mem = write_manifest(tmp_path, [file_entry("gone", "memory://acquire-test/nothing.csv", b"a\n1\n")])
    with pytest.raises(
        DataError, match=r"batch 'gone' \(memory://acquire-test/nothing.csv\): file not found"
    ):
        acquire(mem, allowed_uri_prefixes=("memory://acquire-test/",))


def test_sha256_mismatch_is_checked_before_parsing(tmp_path: Path) -> None:
    listed = b"a,b\n1,2\n"
    path = _one_csv_batch(tmp_path, listed)
    (tmp_path / "b1.csv").write_bytes(b"\xff\xfe not even csv")
    expected, actual = sha256_bytes(listed)[:12], sha256_bytes(b"\xff\xfe not even csv")[:12]
    with pytest.raises(
        DataError, match=rf"batch 'b1' .*: sha256 mismatch: manifest says {expected}…, file has {actual}…"
    ):
        acquire(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"batch 'b1' .*b1.csv\): empty file \(0 bytes\)"):
        acquire(_one_csv_batch(tmp_path, b""))


def test_blank_lines_only(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"batch 'b1' .*: no header line"):
        acquire(_one_csv_batch(tmp_path, b"\n\n"))


def test_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"batch 'b1' .*: header-only file \(0 rows; columns: \['a', 'b'\]\)"):
        acquire(_one_csv_batch(tmp_path, b"a,b\n"))


def test_truncated_last_line(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    full = csv_bytes(small_batches[0].head(20))
    cut = full[: full.rindex(b",", 0, len(full) - 30)]  # a copy cut off in the middle of the last row
    with pytest.raises(
        DataError, match=r"batch 'b1' .*: truncated CSV: last line \(line 21\) has \d+ of 14 fields"
    ):
        acquire(_one_csv_batch(tmp_path, cut))


def test_unterminated_quote(tmp_path: Path) -> None:
    data = b'id,comment\n1,"fine"\n2,"cut off here\n'
    with pytest.raises(
        DataError, match=r"batch 'b1' .*: truncated CSV: unterminated quote \(EOF inside string"
    ):
        acquire(_one_csv_batch(tmp_path, data))


def test_row_with_too_many_fields(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"batch 'b1' .*: malformed CSV: Expected 2 fields in line 3, saw 3"):
        acquire(_one_csv_batch(tmp_path, b"a,b\n1,2\n3,4,5\n6,7\n"))


def test_multiline_quoted_last_field_is_not_truncation(tmp_path: Path) -> None:
    frame = acquire(_one_csv_batch(tmp_path, b'id,note\n1,"two\nlines"\n')).frame
    assert frame["note"].tolist() == ["two\nlines"]


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    frame = acquire(_one_csv_batch(tmp_path, b"\xef\xbb\xbfid,name\r\n1,a\r\n2,b\r\n")).frame
    assert frame.columns.tolist() == ["id", "name"] and frame["name"].tolist() == ["a", "b"]


def test_duplicate_header(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"duplicate column names in the header: \['a'\]"):
        acquire(_one_csv_batch(tmp_path, b"a,b,a\n1,2,3\n"))


def test_non_utf8_bytes_name_offset_and_line(tmp_path: Path) -> None:
    data = b"a,b\n1,ok\n2,caf" + b"\xe9\n"  # latin-1 é
    with pytest.raises(
        DataError, match=r"batch 'b1' .*: not UTF-8 text: invalid byte 0xe9 at byte offset 14 \(line 3\)"
    ):
        acquire(_one_csv_batch(tmp_path, data))


def test_corrupt_parquet(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    good = _parquet_bytes(small_batches[0])
    for name, data in {"chopped": good[: len(good) // 2], "text": b"a,b\n1,2\n"}.items():
        (tmp_path / f"{name}.parquet").write_bytes(data)
        path = write_manifest(tmp_path, [file_entry(name, f"{name}.parquet", data)])
        with pytest.raises(
            DataError, match=rf"batch '{name}' .*{name}.parquet\): corrupt or unreadable Parquet file: \S"
        ):
            acquire(path)


def test_parquet_with_no_rows(tmp_path: Path, small_batches: list[pd.DataFrame]) -> None:
    data = _parquet_bytes(small_batches[0].head(0))
    (tmp_path / "empty.parquet").write_bytes(data)
    with pytest.raises(DataError, match=r"batch 'empty' .*: Parquet file has 0 rows"):
        acquire(write_manifest(tmp_path, [file_entry("empty", "empty.parquet", data)]))


def test_unreachable_sql_hides_the_password(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        [
            {
                "name": "pg",
                "format": "sql",
                "sql": {"url": "postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:1/churn", "table": "churn"},
            }
        ],
    )
    with pytest.raises(DataError) as info:
        acquire(path)
    message = str(info.value)
    assert (
        "batch 'pg'" in message and "cannot reach postgresql+psycopg://alice:***@127.0.0.1:1/churn" in message
    )
    assert "s3cr3t" not in message


def test_sqlite_file_missing_table_missing_and_bad_query(tmp_path: Path) -> None:
    missing = write_manifest(
        tmp_path, [{"name": "db", "format": "sql", "sql": {"url": "sqlite:///absent.db", "table": "t"}}]
    )
    with pytest.raises(
        DataError, match=rf"batch 'db' .*cannot reach .*SQLite file {tmp_path}/absent.db not found"
    ):
        acquire(missing)
    assert not (tmp_path / "absent.db").exists()  # SQLite was not allowed to create it
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    no_table = write_manifest(
        tmp_path, [{"name": "db", "format": "sql", "sql": {"url": "sqlite:///x.db", "table": "u"}}]
    )
    with pytest.raises(DataError, match=r"batch 'db' .*: table 'u' not found in sqlite:///"):
        acquire(no_table)
    bad_query = write_manifest(
        tmp_path,
        [{"name": "db", "format": "sql", "sql": {"url": "sqlite:///x.db", "query": "SELEC nonsense"}}],
    )
    with pytest.raises(
        DataError, match=r"batch 'db' .*: reading query from sqlite:///.* failed: .*syntax error"
    ):
        acquire(bad_query)
    empty = write_manifest(
        tmp_path, [{"name": "db", "format": "sql", "sql": {"url": "sqlite:///x.db", "table": "t"}}]
    )
    with pytest.raises(DataError, match=r"batch 'db' .*: SQL source returned 0 rows"):
        acquire(empty)


def test_invalid_sql_url_and_missing_driver(tmp_path: Path) -> None:
    bad = write_manifest(
        tmp_path, [{"name": "db", "format": "sql", "sql": {"url": "not a url:pw", "table": "t"}}]
    )
    with pytest.raises(DataError, match=r"batch 'db' .*: sql.url is not a valid SQLAlchemy URL") as info:
        acquire(bad)
    assert ":pw" not in str(info.value).split("sql.url")[1]
    driver = write_manifest(
        tmp_path,
        [{"name": "db", "format": "sql", "sql": {"url": "nosuchdb://u:topsecret@h/d", "table": "t"}}],
    )
    with pytest.raises(DataError, match=r"batch 'db' .*cannot use nosuchdb://u:\*\*\*@h/d") as info:
        acquire(driver)
    assert "topsecret" not in str(info.value)


def test_unknown_format(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, [file_entry("b1", "b1.xlsx", b"x", format="xlsx")])
    with pytest.raises(
        DataError, match=r"manifest.yaml: batches\[0\] \(b1\)\.format: Input should be 'csv', 'parquet'"
    ):
        acquire(path)


def test_batches_with_different_columns(tmp_path: Path) -> None:
    one, two, three = b"id,a,b\n1,2,3\n", b"id,b,a\n4,5,6\n", b"id,a,c,d\n7,8,9,0\n"
    path = write_manifest(
        tmp_path,
        [
            file_entry(n, write_csv(tmp_path, n, d), d)
            for n, d in (("one", one), ("two", two), ("three", three))
        ],
    )
    with pytest.raises(
        DataError,
        match=r"different columns \(compared with batch 'one'\): "
        r"batch 'three' lacks \['b'\] and has extra \['c', 'd'\]$",
    ):
        acquire(path)
    same_set = write_manifest(
        tmp_path, [file_entry(n, f"{n}.csv", d) for n, d in (("one", one), ("two", two))]
    )
    frame = acquire(same_set).frame  # same columns, other order: aligned by name
    assert frame.columns.tolist() == ["id", "a", "b"] and frame["a"].tolist() == [2, 6]


def test_row_count_and_time_range_must_match_the_manifest(tmp_path: Path) -> None:
    data = b"id,snapshot_date\n1,2026-01-01\n2,2026-02-01\n"
    with pytest.raises(DataError, match=r"batch 'b1' .*: manifest says 3 rows, the source has 2"):
        acquire(_one_csv_batch(tmp_path, data, rows=3))
    path = _one_csv_batch(tmp_path, data, time_range={"start": "2026-01-01", "end": "2026-01-31"})
    acquire(path)  # the range is only checked when the time column is named
    with pytest.raises(
        DataError,
        match=r"'snapshot_date' spans 2026-01-01..2026-02-01, outside the manifest's "
        r"time_range 2026-01-01..2026-01-31",
    ):
        acquire(path, time_column="snapshot_date")
    with pytest.raises(DataError, match=r"batch 'b1' .*: time column 'when' not found"):
        acquire(path, time_column="when")


def test_manifest_without_batches(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the manifest lists no batches"):
        acquire(write_manifest(tmp_path, []))
