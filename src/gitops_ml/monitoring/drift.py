"""Data and prediction drift: a compact reference profile built at training time, and the tests that
compare a monitoring window against it.

The monitor never needs the training data: `build_reference` keeps, per numeric feature, quantile bin
edges with counts (for PSI) and up to `sample_size` evenly spaced order statistics (for KS); per
categorical feature, level counts (for PSI and chi-squared); and the same numeric profile for the
model's scores (prediction drift). Nulls are their own bucket everywhere (for numeric columns ±inf
counts as null too), so a rising null rate shows up as drift instead of being silently dropped.

Drift rule (one per feature, explainable in config terms):

    drifted = PSI > thresholds.psi
              OR (test p-value < thresholds.ks_pvalue / chi2_pvalue AND effect >= min_effect)

PSI is the primary criterion: it does not grow with the sample size. The KS / chi-squared p-value
alone would flag negligible shifts once a window has many rows, so a significant test only counts
when its effect size is material: the KS statistic D for numeric features, the total variation
distance (the categorical analogue of D: the largest difference in probability of any set of levels)
for categorical ones. Prediction drift uses PSI on the score bins only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from gitops_ml.config import DriftThresholds
from gitops_ml.errors import DataError
from gitops_ml.io_utils import atomic_write_text
from gitops_ml.jsonable import to_jsonable
from gitops_ml.monitoring.estimation import CalibrationSample

PROFILE_VERSION = 1
NULL_BUCKET = "__null__"
OTHER_BUCKET = "__other__"
DEFAULT_MIN_EFFECT = 0.1  # KS D / total variation distance; ~0.25 sd mean shift of a normal feature
_SMOOTHING = 0.5  # pseudo-count per bucket, so an empty bucket gives a finite PSI (Jeffreys prior)

Kind = Literal["numeric", "categorical", "prediction"]


# --------------------------------------------------------------------------------------------------
# reference profile


@dataclass(frozen=True)
class NumericProfile:
    """Quantile bins and an ECDF sketch of one numeric column (non-null values only, nulls counted)."""

    edges: list[float]  # inner cut points, strictly increasing; bin i = [edges[i-1], edges[i])
    counts: list[int]  # len(edges) + 1 counts of non-null reference values per bin
    null_count: int
    sample: list[float]  # sorted order statistics (all values when there are few)
    n: int  # rows, nulls included

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        profile = cls(
            edges=[float(x) for x in data["edges"]],
            counts=[int(x) for x in data["counts"]],
            null_count=int(data["null_count"]),
            sample=[float(x) for x in data["sample"]],
            n=int(data["n"]),
        )
        if len(profile.counts) != len(profile.edges) + 1:
            raise ValueError(f"{len(profile.counts)} counts for {len(profile.edges)} edges")
        return profile


@dataclass(frozen=True)
class CategoricalProfile:
    """Level counts of one categorical column; levels beyond `max_categories` are in OTHER_BUCKET."""

    counts: dict[str, int]
    null_count: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        return cls(
            counts={str(k): int(v) for k, v in data["counts"].items()},
            null_count=int(data["null_count"]),
            n=int(data["n"]),
        )


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything the monitor needs from training time; `to_dict()` is plain JSON."""

    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | None
    bins: int
    rows: int
    version: int = PROFILE_VERSION
    # the holdout sample the early warning checks calibration on (absent in older profiles)
    calibration: CalibrationSample | None = None

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "bins": self.bins,
            "rows": self.rows,
            "numeric": {k: v.to_dict() for k, v in self.numeric.items()},
            "categorical": {k: v.to_dict() for k, v in self.categorical.items()},
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        version = data.get("version")
        if version != PROFILE_VERSION:
            raise ValueError(
                f"reference profile version {version!r} is not supported (expected {PROFILE_VERSION})"
            )
        prediction = data.get("prediction")
        calibration = data.get("calibration")
        return cls(
            numeric={k: NumericProfile.from_dict(v) for k, v in data["numeric"].items()},
            categorical={k: CategoricalProfile.from_dict(v) for k, v in data["categorical"].items()},
            prediction=NumericProfile.from_dict(prediction) if prediction is not None else None,
            bins=int(data["bins"]),
            rows=int(data["rows"]),
            version=int(version),
            calibration=CalibrationSample.from_dict(calibration) if calibration is not None else None,
        )


def _column(df: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in df.columns:
        available = ", ".join(map(str, list(df.columns)[:20]))
        raise DataError(f"{what}: column '{name}' is missing (columns: {available})")
    return df[name]


def _numeric_values(series: pd.Series, name: str, what: str) -> np.ndarray:
    """float64 array with NaN for nulls; non-numeric values are an error, not silently nulls."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna() & series.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in series[bad].unique()[:5])
        raise DataError(
            f"{what}: column '{name}' is numeric but has {int(bad.sum())} non-numeric values (e.g. {examples})"
        )
    return coerced.to_numpy(dtype="float64", na_value=np.nan)


def _as_scores(values: Sequence[float] | np.ndarray | pd.Series, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype="float64")
    if arr.ndim == 2 and arr.shape[1] == 2:  # predict_proba of a binary classifier: keep the positive class
        arr = arr[:, 1]
    if arr.ndim != 1:
        raise DataError(f"{what}: prediction scores must be one value per row, got shape {arr.shape}")
    return arr


def _sorted_quantiles(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) on an already sorted array, without partitioning it again."""
    pos = q * (ordered.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _numeric_profile(values: np.ndarray, bins: int, sample_size: int) -> NumericProfile:
    finite = values[np.isfinite(values)]
    ordered = np.sort(finite)
    n_valid = ordered.size
    if n_valid == 0:
        return NumericProfile(
            edges=[], counts=[0], null_count=int(values.size), sample=[], n=int(values.size)
        )
    # quantile cuts on the sorted array; duplicate cuts (ties, discrete features) collapse into one bin
    edges = np.unique(_sorted_quantiles(ordered, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    counts = np.diff(np.concatenate(([0], np.searchsorted(ordered, edges, side="left"), [n_valid])))
    if n_valid > sample_size:
        # evenly spaced order statistics: a deterministic ECDF sketch with no sampling noise
        idx = ((np.arange(sample_size) + 0.5) * n_valid / sample_size).astype(np.int64)
        sample = ordered[idx]
    else:
        sample = ordered
    return NumericProfile(
        edges=edges.tolist(),
        counts=counts.astype(np.int64).tolist(),
        null_count=int(values.size - n_valid),
        sample=sample.tolist(),
        n=int(values.size),
    )


def _level_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    # one hash pass with nulls included (a separate isna() costs as much again on object columns)
    counts = series.value_counts(dropna=False, sort=False)
    out: dict[str, int] = {}
    nulls = 0
    for level, count in counts.items():
        if pd.isna(level):
            nulls += int(count)
            continue
        # 1, 1.0 (an int column with nulls turns float) and "1" are one level once stringified
        key = str(int(level)) if isinstance(level, float) and level.is_integer() else str(level)
        out[key] = out.get(key, 0) + int(count)
    return out, nulls


def build_reference(
    train_df: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    bins: int = 10,
    prediction_scores: Sequence[float] | np.ndarray | pd.Series | None = None,
    sample_size: int = 10_000,
    max_categories: int = 100,
    calibration: CalibrationSample | None = None,
) -> ReferenceProfile:
    """Profile the training data for later drift checks (store `profile.to_dict()` next to the model).

    `prediction_scores` enable prediction drift: the model's scores on data it was not fitted on (its
    holdout) are the fairest reference, so they need not be the rows of `train_df`. Levels beyond the `max_categories` most frequent are kept as one OTHER bucket, so
    an id-like column cannot blow up the profile.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if sample_size < 10:
        raise ValueError(f"sample_size must be >= 10, got {sample_size}")
    overlap = sorted(set(numeric) & set(categorical))
    if overlap:
        raise ValueError(f"columns listed as both numeric and categorical: {overlap}")
    what = "reference data"
    num = {
        name: _numeric_profile(_numeric_values(_column(train_df, name, what), name, what), bins, sample_size)
        for name in numeric
    }
    cat: dict[str, CategoricalProfile] = {}
    for name in categorical:
        counts, nulls = _level_counts(_column(train_df, name, what))
        if len(counts) > max_categories:
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            counts = dict(ranked[:max_categories])
            counts[OTHER_BUCKET] = sum(c for _, c in ranked[max_categories:])
        cat[name] = CategoricalProfile(counts=dict(sorted(counts.items())), null_count=nulls, n=len(train_df))
    prediction = None
    if prediction_scores is not None:
        prediction = _numeric_profile(
            _as_scores(prediction_scores, "reference prediction scores"), bins, sample_size
        )
    return ReferenceProfile(
        numeric=num,
        categorical=cat,
        prediction=prediction,
        bins=bins,
        rows=len(train_df),
        calibration=calibration,
    )


# --------------------------------------------------------------------------------------------------
# statistics


def psi(reference_counts: np.ndarray, window_counts: np.ndarray) -> float:
    """Population stability index between two count vectors over the same buckets.

    Buckets empty on both sides are dropped; the rest get a 0.5 pseudo-count so a bucket that is
    empty on one side (a new null rate, an unseen level) gives a large but finite value.
    """
    ref = np.asarray(reference_counts, dtype="float64")
    win = np.asarray(window_counts, dtype="float64")
    keep = (ref + win) > 0
    ref, win = ref[keep], win[keep]
    if ref.sum() == 0 or win.sum() == 0:
        return math.nan
    p = (ref + _SMOOTHING) / (ref.sum() + _SMOOTHING * ref.size)
    q = (win + _SMOOTHING) / (win.sum() + _SMOOTHING * win.size)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_from_sorted(reference_sorted: np.ndarray, window_sorted: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value from two sorted arrays (same as
    `scipy.stats.ks_2samp(..., method="asymp")`), without re-sorting the window.

    Both ECDFs are step functions, so the supremum of |F_ref - F_win| is reached at a reference
    point or just before one; evaluating both right and left limits there covers every gap.
    """
    n1, n2 = reference_sorted.size, window_sorted.size
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    f1_right = np.searchsorted(reference_sorted, reference_sorted, side="right") / n1
    f1_left = np.searchsorted(reference_sorted, reference_sorted, side="left") / n1
    f2_right = np.searchsorted(window_sorted, reference_sorted, side="right") / n2
    f2_left = np.searchsorted(window_sorted, reference_sorted, side="left") / n2
    d = float(max(np.max(np.abs(f1_right - f2_right)), np.max(np.abs(f1_left - f2_left))))
    en = n1 * n2 / (n1 + n2)
    pvalue = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return d, pvalue


def chi2_two_sample(reference_counts: np.ndarray, window_counts: np.ndarray) -> tuple[float, float]:
    """Pearson chi-squared test of homogeneity on the 2 x buckets contingency table.

    Both rows are samples (the reference counts are not treated as the exact distribution, which is
    the goodness-of-fit mistake that flags undrifted columns). Buckets empty on both sides are dropped.
    """
    table = np.vstack([reference_counts, window_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if (table.sum(axis=1) == 0).any():
        return math.nan, math.nan
    if table.shape[1] < 2:  # one bucket on both sides: identical distributions
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof))


def total_variation(reference_counts: np.ndarray, window_counts: np.ndarray) -> float:
    ref = np.asarray(reference_counts, dtype="float64")
    win = np.asarray(window_counts, dtype="float64")
    if ref.sum() == 0 or win.sum() == 0:
        return math.nan
    return float(0.5 * np.abs(ref / ref.sum() - win / win.sum()).sum())


# --------------------------------------------------------------------------------------------------
# drift result


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column (or of the prediction scores) in one window."""

    feature: str
    kind: Kind
    test: Literal["ks", "chi2"]
    psi: float
    statistic: float  # KS D, or chi-squared
    pvalue: float
    effect: float  # KS D, or total variation distance
    null_rate_reference: float
    null_rate_window: float
    drifted: bool
    reason: str
    unseen_rate: float = 0.0  # categorical: share of window rows in levels the reference never saw

    def to_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = to_jsonable(asdict(self))
        return cleaned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        fields: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in data.items()}
        return cls(**fields)


@dataclass(frozen=True)
class DriftResult:
    window_rows: int
    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    thresholds: dict[str, float] = field(default_factory=dict)  # the rule that was applied, for the report

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def prediction_drifted(self) -> bool:
        return bool(self.prediction is not None and self.prediction.drifted)

    @property
    def max_psi(self) -> float:
        values = [f.psi for f in self.features if not math.isnan(f.psi)]
        return max(values) if values else math.nan

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_rows": self.window_rows,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "thresholds": dict(self.thresholds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        prediction = data.get("prediction")
        return cls(
            window_rows=int(data["window_rows"]),
            features=[FeatureDrift.from_dict(f) for f in data["features"]],
            prediction=FeatureDrift.from_dict(prediction) if prediction is not None else None,
            thresholds=dict(data.get("thresholds", {})),
        )


def _fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")


def _rule(
    psi_value: float,
    pvalue: float,
    effect: float,
    psi_max: float,
    p_max: float,
    min_effect: float,
    test: str,
    effect_name: str,
) -> tuple[bool, str]:
    if math.isnan(psi_value):
        return False, "no data in window"
    if psi_value > psi_max:
        return True, f"PSI {psi_value:.3f} > {psi_max:g}"
    significant = not math.isnan(pvalue) and pvalue < p_max
    if significant and effect >= min_effect:
        return True, f"{test} p={_fmt_p(pvalue)} < {p_max:g} and {effect_name}={effect:.3f} >= {min_effect:g}"
    if significant:
        return False, (
            f"PSI {psi_value:.3f} <= {psi_max:g}; {test} p={_fmt_p(pvalue)} significant but "
            f"{effect_name}={effect:.3f} < effect floor {min_effect:g}"
        )
    return False, f"PSI {psi_value:.3f} <= {psi_max:g}; {test} p={_fmt_p(pvalue)}"


def _numeric_drift(
    name: str,
    kind: Kind,
    ref: NumericProfile,
    values: np.ndarray,
    psi_max: float,
    p_max: float,
    min_effect: float,
    use_test: bool,
) -> FeatureDrift:
    valid = np.sort(values[np.isfinite(values)])
    edges = np.asarray(ref.edges, dtype="float64")
    window_counts = np.diff(np.concatenate(([0], np.searchsorted(valid, edges, side="left"), [valid.size])))
    # the null bucket is one more PSI bucket, so a rising null rate is drift too
    psi_value = psi(np.append(ref.counts, ref.null_count), np.append(window_counts, values.size - valid.size))
    d, pvalue = ks_from_sorted(np.asarray(ref.sample, dtype="float64"), valid)
    if use_test:
        drifted, reason = _rule(psi_value, pvalue, d, psi_max, p_max, min_effect, "KS", "D")
    else:
        drifted, reason = _rule(psi_value, math.nan, d, psi_max, p_max, min_effect, "KS", "D")
        if not drifted and not math.isnan(psi_value):
            reason = f"PSI {psi_value:.3f} <= {psi_max:g} (KS p={_fmt_p(pvalue)}, D={d:.3f}, informational)"
    return FeatureDrift(
        feature=name,
        kind=kind,
        test="ks",
        psi=psi_value,
        statistic=d,
        pvalue=pvalue,
        effect=d,
        null_rate_reference=ref.null_count / ref.n if ref.n else math.nan,
        null_rate_window=(values.size - valid.size) / values.size if values.size else math.nan,
        drifted=drifted,
        reason=reason,
    )


def _categorical_drift(
    name: str, ref: CategoricalProfile, series: pd.Series, psi_max: float, p_max: float, min_effect: float
) -> FeatureDrift:
    window_levels, window_nulls = _level_counts(series)
    levels = [level for level in ref.counts if level != OTHER_BUCKET]
    known = set(levels)
    unseen = sum(c for level, c in window_levels.items() if level not in known)
    # buckets: reference levels, OTHER (rare reference levels + unseen window levels), NULL
    ref_counts = np.array(
        [ref.counts[level] for level in levels] + [ref.counts.get(OTHER_BUCKET, 0), ref.null_count],
        dtype="float64",
    )
    win_counts = np.array(
        [window_levels.get(level, 0) for level in levels] + [unseen, window_nulls], dtype="float64"
    )
    psi_value = psi(ref_counts, win_counts)
    statistic, pvalue = chi2_two_sample(ref_counts, win_counts)
    effect = total_variation(ref_counts, win_counts)
    drifted, reason = _rule(psi_value, pvalue, effect, psi_max, p_max, min_effect, "chi2", "TVD")
    n_window = len(series)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test="chi2",
        psi=psi_value,
        statistic=statistic,
        pvalue=pvalue,
        effect=effect,
        null_rate_reference=ref.null_count / ref.n if ref.n else math.nan,
        null_rate_window=window_nulls / n_window if n_window else math.nan,
        drifted=drifted,
        reason=reason,
        unseen_rate=unseen / n_window if n_window else 0.0,
    )


def _threshold(thresholds: DriftThresholds | Mapping[str, float], name: str, default: float) -> float:
    if isinstance(thresholds, Mapping):
        return float(thresholds.get(name, default))
    return float(getattr(thresholds, name, default))


def compute_drift(
    reference: ReferenceProfile,
    window_df: pd.DataFrame,
    thresholds: DriftThresholds | Mapping[str, float],
    prediction_scores: Sequence[float] | np.ndarray | pd.Series | None = None,
    *,
    min_effect: float | None = None,
) -> DriftResult:
    """Compare one window against the reference profile, feature by feature (see the module docstring
    for the rule). `thresholds` is a `config.DriftThresholds` (or a mapping with the same keys);
    `min_effect` defaults to `thresholds.min_effect` when that field exists, else 0.1.
    """
    psi_max = _threshold(thresholds, "psi", 0.2)
    ks_p = _threshold(thresholds, "ks_pvalue", 0.01)
    chi2_p = _threshold(thresholds, "chi2_pvalue", 0.01)
    pred_psi = _threshold(thresholds, "prediction_psi", 0.2)
    floor = (
        float(min_effect)
        if min_effect is not None
        else _threshold(thresholds, "min_effect", DEFAULT_MIN_EFFECT)
    )
    what = "monitoring window"
    if len(window_df) == 0:
        # an empty window (no traffic) may come without columns at all: report "no data", not an error
        window_df = pd.DataFrame({name: pd.Series([], dtype="float64") for name in reference.features})
    results: list[FeatureDrift] = []
    for name, profile in reference.numeric.items():
        values = _numeric_values(_column(window_df, name, what), name, what)
        results.append(_numeric_drift(name, "numeric", profile, values, psi_max, ks_p, floor, use_test=True))
    for name, cat_profile in reference.categorical.items():
        results.append(
            _categorical_drift(name, cat_profile, _column(window_df, name, what), psi_max, chi2_p, floor)
        )
    prediction = None
    if prediction_scores is not None and reference.prediction is not None:
        scores = _as_scores(prediction_scores, "window prediction scores")
        if scores.size != len(window_df):
            raise DataError(f"window prediction scores: {scores.size} scores for {len(window_df)} rows")
        prediction = _numeric_drift(
            "prediction", "prediction", reference.prediction, scores, pred_psi, ks_p, floor, use_test=False
        )
    return DriftResult(
        window_rows=len(window_df),
        features=results,
        prediction=prediction,
        thresholds={
            "psi": psi_max,
            "ks_pvalue": ks_p,
            "chi2_pvalue": chi2_p,
            "prediction_psi": pred_psi,
            "min_effect": floor,
        },
    )


# --------------------------------------------------------------------------------------------------
# I/O: the profile file stored next to the model


def write_reference(profile: ReferenceProfile, path: Path | str) -> Path:
    """Write the profile as JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(profile.to_dict(), separators=(",", ":"), allow_nan=False))
    return path


def read_reference(path: Path | str) -> ReferenceProfile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: reference profile not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: reference profile is not valid JSON: {exc}") from exc
    try:
        return ReferenceProfile.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a reference profile: {type(exc).__name__}: {exc}") from exc
