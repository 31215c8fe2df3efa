"""Helpers for the data package tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def file_entry(name: str, uri: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """A manifest entry for bytes written at `uri`, with their real sha256."""
    fmt = "parquet" if uri.endswith(".parquet") else "csv"
    return {"name": name, "uri": uri, "format": fmt, "sha256": sha256_bytes(data), **extra}


def write_manifest(folder: Path, batches: list[dict[str, Any]], **top: Any) -> Path:
    path = folder / "manifest.yaml"
    path.write_text(
        yaml.safe_dump({"version": 1, **top, "batches": batches}, sort_keys=False), encoding="utf-8"
    )
    return path


def write_csv(folder: Path, name: str, data: bytes) -> str:
    """Write bytes as `folder/<name>.csv`; return the uri relative to the folder."""
    (folder / f"{name}.csv").write_bytes(data)
    return f"{name}.csv"
