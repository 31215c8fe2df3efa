"""`gitops-ml init`: one CSV or Parquet file becomes a working setup (contract, batches, config).

Everything is checked before anything is written: bad input (a missing or empty file, a target
that does not exist or cannot be learned, an unparseable time column, a duplicated id) is a
DataError naming the file, the column and the problem, and config/, data/ and data_contracts/
stay untouched. Without `force`, a setup other than the bundled example is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gitops_ml.config import Task
from gitops_ml.contracts.draft import ColumnProfile, draft_contract, is_integral, parse_times, profile_column
from gitops_ml.errors import DataError, GitopsMLError
from gitops_ml.io_utils import atomic_write_bytes, atomic_write_text
from gitops_ml.quality.support import check_support

# The bundled example's contract and manifest, by content (parsed YAML, so comments do not count):
# init replaces exactly this setup without --force. tests/project checks it still matches.
EXAMPLE_FINGERPRINTS = {
    "data_contracts/churn.odcs.yaml": "ab70b9d634d0d86c38f215d7ceeea519dc9e33a406b44009c66302d0b2f00cf8",
    "data/manifest.yaml": "f7588209bb6bd34e4b0614c71f56653e12383900655b46e544516fb4c768bae8",
}

MAX_BATCHES = 6
HOLDOUT_SHARE = 0.2
PRIMARY_METRIC: dict[str, str] = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}
ESTIMATOR: dict[str, str] = {
    "binary": "sklearn.ensemble.HistGradientBoostingClassifier",
    "multiclass": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
# Candidate deepchecks checks per suite; those that do not apply to the task (or break with our
# versions) are dropped through the same support table `config check` uses.
CANDIDATE_CHECKS: dict[str, tuple[str, ...]] = {
    "data_integrity": (
        "MixedNulls",
        "StringMismatch",
        "DataDuplicates",
        "ConflictingLabels",
        "FeatureLabelCorrelation",
    ),
    "train_test_validation": (
        "DatasetsSizeComparison",
        "NewCategoryTrainTest",
        "NewLabelTrainTest",
        "FeatureDrift",
        "LabelDrift",
        "TrainTestSamplesMix",
    ),
    "model_evaluation": (
        "TrainTestPerformance",
        "RocReport",
        "ConfusionMatrixReport",
        "CalibrationScore",
        "SimpleModelComparison",
        "RegressionErrorDistribution",
        "RegressionSystematicError",
        "PredictionDrift",
    ),
}
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class InitRequest:
    data: Path
    target: str
    task: Task
    time_column: str | None = None
    id_column: str | None = None
    positive_label: str | None = None
    name: str | None = None
    force: bool = False
    root: Path = Path(".")


@dataclass(frozen=True)
class InitResult:
    name: str
    rows: int
    written: tuple[Path, ...]
    removed: tuple[Path, ...]
    notes: tuple[str, ...]
    next_command: str = "gitops-ml config check && gitops-ml validate && gitops-ml pr-check"


@dataclass
class _Plan:
    files: dict[Path, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fail(req: InitRequest, column: str | None, problem: str) -> DataError:
    where = f"{req.data}: column '{column}'" if column else str(req.data)
    return DataError(f"init: {where}: {problem}; nothing written")


def _read(req: InitRequest) -> pd.DataFrame:
    from gitops_ml.data.acquire import read_file_batch
    from gitops_ml.data.manifest import FORMAT_BY_SUFFIX

    suffix = req.data.suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise _fail(
            req, None, f"cannot tell the format from '{suffix or 'no suffix'}' (use .csv or .parquet)"
        )
    if not req.data.exists():
        raise _fail(req, None, "file not found")
    try:
        frame, _ = read_file_batch(str(req.data), FORMAT_BY_SUFFIX[suffix], label=str(req.data))
    except DataError as exc:
        raise DataError(f"init: {exc}; nothing written") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _values(s: pd.Series, n: int = 5) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in s.drop_duplicates().head(n)]


def _check_columns(req: InitRequest, frame: pd.DataFrame) -> None:
    for role, column in (("target", req.target), ("time", req.time_column), ("id", req.id_column)):
        if column is not None and column not in frame.columns:
            raise _fail(
                req, column, f"{role} column not found (columns: {', '.join(list(frame.columns)[:30])})"
            )
    roles = [c for c in (req.target, req.time_column, req.id_column) if c]
    if len(set(roles)) != len(roles):
        raise _fail(req, None, f"--target, --time-column and --id-column must be different columns ({roles})")


def _prepare_target(req: InitRequest, frame: pd.DataFrame, plan: _Plan) -> tuple[pd.DataFrame, Any]:
    """Rows with a target, the target in a learnable form, and the binary positive label."""
    y = frame[req.target]
    missing = int(y.isna().sum())
    if missing == len(frame):
        raise _fail(req, req.target, "the target has no values")
    if missing:
        frame = frame[y.notna()].reset_index(drop=True)
        y = frame[req.target]
        plan.notes.append(f"dropped {missing} rows without a value in target '{req.target}'")
    if req.task == "regression":
        numbers = pd.to_numeric(y, errors="coerce")
        bad = y[numbers.isna()]
        if len(bad) or y.dtype == bool:
            raise _fail(
                req, req.target, f"a regression target must be numeric; found {_values(bad.astype(str))}"
            )
        return frame, None
    if is_integral(y) and not pd.api.types.is_integer_dtype(y.dtype):
        frame = frame.assign(**{req.target: y.astype("int64")})
        y = frame[req.target]
    counts = y.value_counts()
    if len(counts) < 2:
        raise _fail(req, req.target, f"a {req.task} target needs at least 2 classes; found one: {_values(y)}")
    if req.task == "binary" and len(counts) != 2:
        raise _fail(
            req,
            req.target,
            f"a binary target needs exactly 2 classes; found {len(counts)}: "
            f"{_values(pd.Series(counts.index), 10)} (use --task multiclass)",
        )
    rare = counts[counts < 2]
    if len(rare):
        raise _fail(
            req,
            req.target,
            f"classes with a single row cannot be split for evaluation: {_values(pd.Series(rare.index))}",
        )
    if req.task != "binary":
        return frame, None
    classes = list(counts.index)
    if req.positive_label is not None:
        matches = [c for c in classes if str(c) == req.positive_label]
        if not matches:
            raise _fail(
                req,
                req.target,
                f"--positive-label {req.positive_label!r} is not a class "
                f"(classes: {', '.join(map(str, classes))})",
            )
        return frame, _plain(matches[0])
    if sorted(map(str, classes)) == ["0", "1"]:
        return frame, _plain(next(c for c in classes if str(c) == "1"))
    minority = counts.sort_values(kind="stable").index[0]
    plan.notes.append(
        f"binary target '{req.target}' has labels {', '.join(map(repr, map(_plain, classes)))}: picked the "
        f"minority class {_plain(minority)!r} ({int(counts[minority])} of {len(y)} rows) as the positive "
        "class; pass --positive-label to choose another"
    )
    return frame, _plain(minority)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _check_id(req: InitRequest, frame: pd.DataFrame) -> None:
    if req.id_column is None:
        return
    ids = frame[req.id_column]
    if ids.isna().any():
        raise _fail(req, req.id_column, f"the id column has {int(ids.isna().sum())} missing values")
    dupes = ids[ids.duplicated(keep=False)]
    if len(dupes):
        raise _fail(
            req,
            req.id_column,
            f"the id column has {int(ids.duplicated().sum())} duplicate values, e.g. {_values(dupes)}",
        )


def _time_periods(req: InitRequest, frame: pd.DataFrame) -> tuple[pd.Series, str | None]:
    """Per row, its period (sortable), and the split period alias (None for integer periods)."""
    assert req.time_column is not None
    raw = frame[req.time_column]
    if raw.isna().any():
        raise _fail(req, req.time_column, f"the time column has {int(raw.isna().sum())} missing values")
    if is_integral(raw):
        periods = raw.astype("int64")
        if periods.nunique() < 2:
            raise _fail(
                req, req.time_column, f"a time split needs at least 2 periods; found {_values(periods)}"
            )
        return periods, None
    times = parse_times(raw)
    if times is None:
        bad = raw[pd.to_datetime(raw, errors="coerce", format="mixed").isna()]
        raise _fail(
            req,
            req.time_column,
            f"cannot be read as dates or times (nor integer periods), e.g. {_values(bad.astype(str))}",
        )
    for alias in ("Y", "Q", "M", "W", "D"):
        periods = times.dt.to_period(alias)
        if periods.nunique() >= 3:
            return periods, alias
    if times.dt.to_period("D").nunique() < 2:
        raise _fail(req, req.time_column, "a time split needs at least 2 distinct days")
    return times.dt.to_period("D"), "D"


def _batches(name: str, frame: pd.DataFrame, periods: pd.Series | None) -> dict[str, pd.DataFrame]:
    """At most MAX_BATCHES batches of whole consecutive periods, oldest first (one batch without time)."""
    if periods is None:
        return {name: frame}
    distinct = sorted(periods.unique())
    size = -(-len(distinct) // MAX_BATCHES)
    out: dict[str, pd.DataFrame] = {}
    for start in range(0, len(distinct), size):
        chunk = distinct[start : start + size]
        rows = frame[periods.isin(chunk).to_numpy()]
        out[f"{name}-{_period_label(chunk[0])}"] = rows.reset_index(drop=True)
    return out


def _period_label(period: Any) -> str:
    if isinstance(period, pd.Period) and period.freqstr[0] in "WD":
        return period.start_time.strftime("%Y-%m-%d")
    return str(period)


def _features(req: InitRequest, profiles: list[ColumnProfile], plan: _Plan) -> tuple[list[str], list[str]]:
    roles = {req.target, req.time_column, req.id_column}
    numeric, categorical, skipped = [], [], []
    for p in profiles:
        if p.name in roles:
            continue
        if p.numeric:
            numeric.append(p.name)
        elif p.kind in ("category", "boolean"):
            categorical.append(p.name)
        else:
            skipped.append(f"{p.name} ({p.kind}, {p.distinct} distinct values)")
    if skipped:
        plan.notes.append(
            f"not used as features (free text or too many distinct values): {', '.join(skipped)}"
        )
    if not numeric and not categorical:
        raise _fail(req, None, "no usable feature columns besides the target, time and id columns")
    return numeric, categorical


def _deepchecks(task: str) -> dict[str, Any]:
    suites: dict[str, Any] = {"sample_size": 10000, "random_state": 0}
    for suite, checks in CANDIDATE_CHECKS.items():
        suites[suite] = {"checks": [{"check": c} for c in checks if check_support(c, task) is None]}
    return suites


def _gates(task: str, y: pd.Series) -> dict[str, Any]:
    """Floors a working model clears (better than chance) and a small allowed regression."""
    if task == "binary":
        return {"minimums": {"roc_auc": 0.55}, "max_regression": {"roc_auc": 0.02}}
    if task == "multiclass":
        chance = 1.0 / max(2, y.nunique())
        return {"minimums": {"accuracy": round(chance + 0.05, 2)}, "max_regression": {"f1_macro": 0.03}}
    spread = float(pd.to_numeric(y).std()) or 1.0
    return {"minimums": {"r2": 0.0}, "max_regression": {"rmse": float(f"{0.05 * spread:.3g}")}}


def _config(
    req: InitRequest,
    name: str,
    positive: Any,
    numeric: list[str],
    categorical: list[str],
    y: pd.Series,
    split_period: str | None,
    n_periods: int,
) -> dict[str, dict[str, Any]]:
    task = req.task
    if req.time_column is not None:
        holdout = max(1, round(HOLDOUT_SHARE * n_periods))
        split: dict[str, Any] = {"strategy": "time", "holdout_periods": holdout}
        if split_period is not None:
            split["period"] = split_period
    else:
        split = {"strategy": "stratified" if task != "regression" else "random", "test_size": 0.25}
    split["seed"] = 42
    primary = PRIMARY_METRIC[task]
    return {
        "dataset": {
            "name": name,
            "contract": f"data_contracts/{name}.odcs.yaml",
            "manifest": "data/manifest.yaml",
            "target": req.target,
            "id_column": req.id_column,
            "time_column": req.time_column,
            "task": task,
            "positive_label": positive,
        },
        "features": {
            "numeric": numeric,
            "categorical": categorical,
            "categorical_encoding": "onehot",
            "numeric_imputation": "median",
            "scale_numeric": True,
        },
        "split": split,
        "estimator": {
            "class_path": ESTIMATOR[task],
            "params": {
                "max_iter": 200,
                "learning_rate": 0.05,
                "max_leaf_nodes": 15,
                "l2_regularization": 1.0,
                "random_state": 42,
            },
        },
        "evaluation": {
            "primary_metric": primary,
            "segments": [],
            "min_segment_size": 50,
            "bootstrap": {"n_resamples": 1000, "confidence": 0.95, "seed": 0},
            "deepchecks": _deepchecks(task),
        },
        "gates": {**_gates(task, y), "fail_on_contract_violation": True, "fail_on_blocking_deepchecks": True},
        "monitoring": {"window": "7D", "performance_metric": primary},
        "registry": {
            "pointer": "deploy/production.yaml",
            "history": "deploy/history.yaml",
            "store_url": ".model-store",
        },
        "serving": {"prediction_store_url": "sqlite:///predictions.db"},
    }


def _yaml(data: Any, header: str | None = None) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return ((f"# {header}\n" if header else "") + text).encode("utf-8")


def _replaced_files(root: Path) -> list[Path]:
    """Files of the current dataset that init removes: its contract, its batches, its production pointer.

    Config files are overwritten section by section; one init does not write (forge.yaml) is kept.
    """
    found: list[Path] = []
    base = root.resolve()

    def inside(path: Path) -> bool:
        return path.is_file() and path.resolve().is_relative_to(base)

    try:
        dataset = yaml.safe_load((root / "config" / "dataset.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        dataset = {}
    contract = dataset.get("contract") if isinstance(dataset, dict) else None
    if isinstance(contract, str) and inside(root / contract):
        found.append(root / contract)
    manifest = root / "data" / "manifest.yaml"
    try:
        listed = yaml.safe_load(manifest.read_text(encoding="utf-8")) if manifest.exists() else {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        listed = {}
    batches = listed.get("batches") if isinstance(listed, dict) else None
    for batch in batches if isinstance(batches, list) else []:
        uri = batch.get("uri") if isinstance(batch, dict) else None
        if isinstance(uri, str) and "://" not in uri and inside(manifest.parent / uri):
            found.append(manifest.parent / uri)
    for name in ("production.yaml", "history.yaml"):  # a model of the previous dataset
        if inside(root / "deploy" / name):
            found.append(root / "deploy" / name)
    return found


def yaml_fingerprint(path: Path) -> str | None:
    """sha256 of a YAML file's parsed content (None when unreadable): comments and layout do not count."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def is_bundled_example(root: Path) -> bool:
    """The repository still holds the bundled example's contract and data manifest, unchanged."""
    return all(yaml_fingerprint(root / rel) == digest for rel, digest in EXAMPLE_FINGERPRINTS.items())


def _refuse_overwrite(req: InitRequest) -> None:
    root = req.root
    if req.force or not (root / "config" / "dataset.yaml").exists() or is_bundled_example(root):
        return
    raise GitopsMLError(
        f"init: {root.resolve()} already holds a setup that is not the bundled example "
        f"({root / 'config'}, {root / 'data'}, {root / 'data_contracts'}); pass --force to replace it; "
        "nothing written"
    )


def init_project(req: InitRequest) -> InitResult:
    """Check the input, draft contract, batches and config, then write them (all or nothing)."""
    from gitops_ml.data.manifest import Manifest, csv_batch, dump_manifest

    frame = _read(req)
    _check_columns(req, frame)
    name = req.name or re.sub(r"[^a-z0-9_-]+", "-", req.data.stem.lower()).strip("-_") or "dataset"
    if not _NAME.fullmatch(name):
        raise GitopsMLError(
            f"init: --name {name!r}: use lowercase letters, digits, '-' and '_', starting "
            "with a letter; nothing written"
        )
    plan = _Plan()
    frame, positive = _prepare_target(req, frame, plan)
    _check_id(req, frame)
    periods: pd.Series | None = None
    split_period: str | None = None
    if req.time_column is not None:
        periods, split_period = _time_periods(req, frame)
        order = periods.sort_values(kind="stable").index
        frame, periods = frame.loc[order].reset_index(drop=True), periods.loc[order].reset_index(drop=True)
    profiles = []
    for column in frame.columns:
        try:
            profiles.append(
                profile_column(
                    frame[column],
                    time_column=column == req.time_column,
                    label=column == req.target and req.task != "regression",
                )
            )
        except ValueError as exc:
            raise _fail(req, column, str(exc)) from None
    numeric, categorical = _features(req, profiles, plan)
    _refuse_overwrite(req)

    root = req.root
    contract = draft_contract(
        profiles,
        name=name,
        target=req.target,
        id_column=req.id_column,
        time_column=req.time_column,
        source=req.data.name,
    )
    plan.files[root / "data_contracts" / f"{name}.odcs.yaml"] = _yaml(
        contract, "First draft from `gitops-ml init`: review types, required, ranges and allowed values."
    )
    batches = _batches(name, frame, periods)
    entries = []
    for batch_name, rows in batches.items():
        entry, relative, data = csv_batch(batch_name, rows, req.time_column)
        entries.append(entry)
        plan.files[root / "data" / relative] = data
    manifest = Manifest(
        description=f"{name}: {len(frame)} rows from {req.data.name} (gitops-ml init)", batches=entries
    )
    plan.files[root / "data" / "manifest.yaml"] = dump_manifest(manifest).encode("utf-8")
    n_periods = int(periods.nunique()) if periods is not None else 0
    sections = _config(req, name, positive, numeric, categorical, frame[req.target], split_period, n_periods)
    for section, content in sections.items():
        plan.files[root / "config" / f"{section}.yaml"] = _yaml(
            content, f"{section}: written by gitops-ml init"
        )

    keep = {f.resolve() for f in plan.files}
    removed = [p for p in _replaced_files(root) if p.resolve() not in keep]
    for path in removed:
        path.unlink()
    for path, data in plan.files.items():
        if path.suffix == ".yaml":
            atomic_write_text(path, data.decode("utf-8"))
        else:
            atomic_write_bytes(path, data)
    return InitResult(
        name=name, rows=len(frame), written=tuple(plan.files), removed=tuple(removed), notes=tuple(plan.notes)
    )
