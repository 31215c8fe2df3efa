"""Late labels from a CSV file (`request_id,label`), checked completely before anything is stored."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from gitops_ml.errors import DataError
from gitops_ml.prediction_store.codecs import coerce_label

LABEL_COLUMNS = ("request_id", "label")
MAX_SHOWN = 5


def read_labels_csv(path: Path | str, task: str = "binary") -> list[tuple[str, Any]]:
    """[(request_id, label)] from a CSV with a header holding `request_id` and `label`.

    Raises DataError naming the file, the row (1 = header) and column of every problem found
    (up to a few): a missing column, an empty id or label, a label that is not valid for the
    task, or one id given two different labels.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: labels file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in LABEL_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: row 1 (header): missing column(s) {missing}; found {header or 'no header'}")
    reader.fieldnames = header
    problems: list[str] = []
    pairs: list[tuple[str, Any]] = []
    first_seen: dict[str, tuple[int, Any]] = {}
    for row_number, row in enumerate(reader, start=2):
        if None in row:  # more cells than header columns
            problems.append(
                f"row {row_number}: {len(header) + len(row[None])} cells for {len(header)} columns"
            )
            continue
        request_id = (row.get("request_id") or "").strip()
        raw_label = row.get("label")
        if not request_id:
            problems.append(f"row {row_number}, column 'request_id': empty")
            continue
        try:
            label = coerce_label(raw_label, task)
        except ValueError as exc:
            problems.append(f"row {row_number}, column 'label': {exc} (value {raw_label!r})")
            continue
        if request_id in first_seen and first_seen[request_id][1] != label:
            earlier_row, earlier = first_seen[request_id]
            problems.append(
                f"row {row_number}, column 'label': request_id {request_id!r} has label {label!r} here "
                f"but {earlier!r} in row {earlier_row}"
            )
            continue
        first_seen.setdefault(request_id, (row_number, label))
        pairs.append((request_id, label))
    if problems:
        shown = "\n  ".join(problems[:MAX_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise DataError(f"{path}: {len(problems)} bad row(s), nothing imported:\n  {shown}{more}")
    if not pairs:
        raise DataError(f"{path}: no label rows after the header")
    return pairs
