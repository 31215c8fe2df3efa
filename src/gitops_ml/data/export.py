"""Turning a labelled monitoring window into a new data batch for retraining.

Rows that break the contract are counted and left out, never silently: the caller gets the
counts per reason and puts them in the retraining PR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gitops_ml.config import Settings
from gitops_ml.io_utils import atomic_write_bytes


@dataclass(frozen=True)
class ExportedBatch:
    frame: pd.DataFrame
    labelled_rows: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out

    @property
    def rows(self) -> int:
        return len(self.frame)

    def summary(self) -> str:
        parts = [f"{self.rows:,} of {self.labelled_rows:,} labelled rows exported"]
        parts += [f"{n:,} left out: {reason}" for reason, n in self.dropped.items() if n]
        return "; ".join(parts)


def labelled_window_batch(
    window: pd.DataFrame, settings: Settings, existing_ids: set[str] | None = None
) -> ExportedBatch:
    """Contract-shaped rows (inputs + label as the target) of the window's labelled predictions."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.contracts.validate import invalid_row_mask

    contract = load_contract(settings.dataset.contract)
    target = settings.dataset.target
    labelled = window[window["label"].notna()] if "label" in window else window.iloc[0:0]
    columns = [c for c in contract.column_names if c != target]
    dropped: dict[str, int] = {}
    missing = [c for c in columns if c not in labelled.columns]
    if missing:
        dropped[f"logged inputs lack contract columns {missing}"] = len(labelled)
        return ExportedBatch(
            frame=pd.DataFrame(columns=contract.column_names), labelled_rows=len(labelled), dropped=dropped
        )
    frame = labelled[columns].copy()
    frame[target] = labelled["label"].to_numpy()
    if settings.dataset.task != "regression":
        as_int = pd.to_numeric(frame[target], errors="coerce")
        if as_int.notna().all() and (as_int % 1 == 0).all():
            frame[target] = as_int.astype("int64")
    frame = frame[contract.column_names].reset_index(drop=True)
    id_col = settings.dataset.id_column
    if existing_ids and id_col:
        seen = frame[id_col].astype(str).isin(existing_ids)
        dropped["id already in the training data"] = int(seen.sum())
        frame = frame[~seen].reset_index(drop=True)
    invalid = invalid_row_mask(frame, contract)
    dropped["breaks a contract rule"] = int(invalid.sum())
    frame = frame[~invalid.to_numpy()].reset_index(drop=True)
    return ExportedBatch(frame=frame, labelled_rows=len(labelled), dropped=dropped)


def write_batch_csv(batch: ExportedBatch, path: Path) -> Path:
    atomic_write_bytes(Path(path), batch.frame.to_csv(index=False).encode("utf-8"))
    return Path(path)
