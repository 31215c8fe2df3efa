"""Train/holdout split chosen by config: time-based, stratified or random.

The holdout is what candidate and production are both scored on, so the split must be
deterministic (seeded) and must refuse splits that make the comparison meaningless
(empty sides, a binary holdout with one class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.model_selection import train_test_split

from gitops_ml.config import Settings
from gitops_ml.contracts.draft import is_integral
from gitops_ml.errors import ConfigError, DataError

_CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class SplitResult:
    train: pd.DataFrame
    holdout: pd.DataFrame
    description: str


def split_frame(df: pd.DataFrame, settings: Settings) -> SplitResult:
    """Split `df` into train and holdout following `settings.split`.

    Rows keep their original order within each side and get a fresh 0..n-1 index.
    Raises ConfigError for a strategy that does not fit the task, DataError for data
    that cannot be split meaningfully.
    """
    cfg = settings.split
    target = settings.dataset.target
    task = settings.dataset.task
    if target not in df.columns:
        raise DataError(f"split: target column '{target}' not in the data (columns: {list(df.columns)[:20]})")
    if len(df) == 0:
        raise DataError("split: the data has no rows")

    if cfg.strategy == "time":
        train, holdout, description = _time_split(df, settings)
    elif cfg.strategy == "stratified":
        if task not in _CLASSIFICATION:
            raise ConfigError(
                f"split.strategy: 'stratified' needs a classification task, dataset.task is '{task}' "
                "(use 'random' or 'time')"
            )
        labels = df[target]
        if labels.isna().any():
            raise DataError(f"split: target '{target}' has {int(labels.isna().sum())} missing values")
        counts = labels.value_counts()
        rare = counts[counts < 2]
        if len(rare):
            raise DataError(
                f"split: stratified split needs >= 2 rows per class of '{target}'; "
                f"classes with fewer: {rare.to_dict()}"
            )
        train, holdout = _seeded_split(df, cfg.test_size, cfg.seed, stratify=labels)
        description = f"stratified split on '{target}', test_size={cfg.test_size}, seed={cfg.seed}"
    else:
        train, holdout = _seeded_split(df, cfg.test_size, cfg.seed, stratify=None)
        description = f"random split, test_size={cfg.test_size}, seed={cfg.seed}"

    _check_sides(train, holdout, target, task)
    train = train.reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    description += f": train {len(train):,} rows, holdout {len(holdout):,} rows"
    return SplitResult(train=train, holdout=holdout, description=description)


def _time_split(df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    cfg = settings.split
    column = settings.dataset.time_column
    if not column:
        raise ConfigError("split.strategy: 'time' needs dataset.time_column")
    if column not in df.columns:
        raise DataError(f"split: time column '{column}' not in the data")
    raw = df[column]
    if is_integral(raw):
        # an integer time column is a period number (day index, week, year): each value is a
        # period, and it is never read as a timestamp
        if raw.isna().any():
            raise DataError(f"split: time column '{column}' has {int(raw.isna().sum())} missing values")
        periods = raw.astype("int64")
        unit = "integer period"
    else:
        if ptypes.is_numeric_dtype(raw.dtype) and not ptypes.is_bool_dtype(raw.dtype):
            raise DataError(
                f"split: time column '{column}' holds fractional numbers, neither dates nor integer periods"
            )
        times = pd.to_datetime(raw, errors="coerce", format="mixed")
        bad = raw[times.isna()]
        if len(bad):
            examples = list(bad.astype(str).unique()[:5])
            raise DataError(
                f"split: time column '{column}' has {len(bad)} missing or unparseable values, e.g. {examples}"
            )
        periods = times.dt.to_period(cfg.period)
        unit = f"period {cfg.period}"
    distinct = sorted(periods.unique())
    if len(distinct) < 2:
        raise DataError(
            f"split: time split needs at least 2 distinct periods ({unit}) of '{column}', "
            f"found {[str(p) for p in distinct]}"
        )
    if cfg.holdout_periods >= len(distinct):
        raise ConfigError(
            f"split.holdout_periods: {cfg.holdout_periods} leaves no training data; "
            f"'{column}' has only {len(distinct)} periods ({distinct[0]}..{distinct[-1]})"
        )
    held = distinct[-cfg.holdout_periods :]
    in_holdout = periods.isin(held).to_numpy()
    kept = distinct[: -cfg.holdout_periods]
    if cfg.train_periods is not None:
        kept = kept[-cfg.train_periods :]
    in_train = periods.isin(kept).to_numpy()
    description = f"time split on '{column}' by {unit}: train {_span(kept)}, holdout {_span(held)}"
    return df[in_train], df[in_holdout], description


def _span(periods: list[Any]) -> str:
    return str(periods[0]) if len(periods) == 1 else f"{periods[0]}..{periods[-1]}"


def _seeded_split(
    df: pd.DataFrame, test_size: float, seed: int, stratify: pd.Series | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    positions = np.arange(len(df))
    try:
        train_pos, holdout_pos = train_test_split(
            positions, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:  # e.g. test_size rounds to 0 rows, or fewer rows than classes
        raise DataError(f"split: cannot split {len(df)} rows with test_size={test_size}: {exc}") from exc
    # train_test_split shuffles; keep the source order so downstream output is easy to read
    return df.iloc[np.sort(train_pos)], df.iloc[np.sort(holdout_pos)]


def _check_sides(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str) -> None:
    if len(train) == 0 or len(holdout) == 0:
        raise DataError(f"split: empty side (train {len(train)} rows, holdout {len(holdout)} rows)")
    if task in _CLASSIFICATION:
        for name, side in (("train", train), ("holdout", holdout)):
            classes = side[target].dropna().unique()
            if len(classes) < 2:
                raise DataError(
                    f"split: the {name} set has a single class of '{target}' ({list(classes)}); "
                    "metrics such as roc_auc are undefined"
                )
