from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gitops_ml.config import DriftThresholds
from gitops_ml.errors import DataError
from gitops_ml.monitoring.drift import (
    OTHER_BUCKET,
    ReferenceProfile,
    build_reference,
    chi2_two_sample,
    compute_drift,
    ks_from_sorted,
    psi,
    read_reference,
    write_reference,
)


def _frame(
    rng: np.random.Generator, n: int, *, shift: float = 0.0, levels_p=(0.5, 0.3, 0.2), null_rate: float = 0.0
) -> pd.DataFrame:
    x = rng.normal(10 + shift, 2, n)
    x[rng.random(n) < null_rate] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "count": rng.poisson(2, n),  # discrete: many ties, duplicate quantile edges
            "plan": rng.choice(["basic", "standard", "premium"], n, p=list(levels_p)),
        }
    )


@pytest.fixture
def reference() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return build_reference(
        _frame(rng, 20_000, null_rate=0.02), ["x", "count"], ["plan"], prediction_scores=rng.beta(2, 5, 5_000)
    )


@pytest.mark.parametrize("round_to", [None, 1])
def test_ks_matches_scipy_including_ties(round_to):
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 3_000), rng.normal(0.05, 1.1, 50_000)
    if round_to is not None:
        a, b = np.round(a, round_to), np.round(b, round_to)
    d, p = ks_from_sorted(np.sort(a), np.sort(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_chi2_is_a_two_sample_test_not_goodness_of_fit():
    # same distribution, small reference: the reference proportions are themselves noisy
    ref, win = np.array([520, 480]), np.array([500_000, 500_000])
    statistic, p = chi2_two_sample(ref, win)
    expected = stats.chi2_contingency(np.vstack([ref, win]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    assert p > 0.05
    # treating the reference as exact (what evidently's chisquare does) calls this drift
    gof = stats.chisquare(win, f_exp=ref / ref.sum() * win.sum())
    assert gof.pvalue < 0.01


def test_psi_zero_for_identical_and_ignores_buckets_empty_on_both_sides():
    counts = np.array([100, 200, 300, 400])
    assert psi(counts, counts) == pytest.approx(0.0, abs=1e-12)
    assert psi(np.append(counts, 0), np.append(counts, 0)) == pytest.approx(0.0, abs=1e-12)
    shifted = psi(counts, counts[::-1])
    assert shifted > 0.5 and math.isfinite(psi(np.array([10, 0]), np.array([0, 10])))


def test_profile_is_compact_json_and_round_trips(reference, tmp_path):
    data = reference.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert len(text) < 600_000  # 20k rows -> bounded by the sample size, not the row count
    assert len(reference.numeric["x"].sample) == 10_000
    assert ReferenceProfile.from_dict(json.loads(text)) == reference
    assert reference.numeric["x"].null_count == pytest.approx(400, rel=0.15)
    assert len(reference.numeric["count"].edges) < 9  # tied quantiles collapsed
    assert sum(reference.numeric["count"].counts) == 20_000
    assert set(reference.categorical["plan"].counts) == {"basic", "standard", "premium"}
    path = write_reference(reference, tmp_path / "model" / "reference.json")
    assert read_reference(path) == reference
    assert [p.name for p in path.parent.iterdir()] == ["reference.json"]  # no temp file left


def test_read_reference_errors_name_the_file(tmp_path):
    bad = tmp_path / "reference.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="reference.json: reference profile is not valid JSON"):
        read_reference(bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(DataError, match="not a reference profile"):
        read_reference(bad)
    with pytest.raises(DataError, match="not found"):
        read_reference(tmp_path / "missing.json")


def test_stable_window_has_no_drift(reference):
    rng = np.random.default_rng(2)
    window = _frame(rng, 3_000, null_rate=0.02)
    result = compute_drift(reference, window, DriftThresholds(), prediction_scores=rng.beta(2, 5, 3_000))
    assert result.drifted_features == []
    assert not result.prediction_drifted
    assert result.max_psi < 0.05
    assert all(f.pvalue > 1e-3 for f in result.features)


def test_shifted_numeric_and_categorical_are_drifted_with_reasons(reference):
    rng = np.random.default_rng(3)
    window = _frame(rng, 3_000, shift=2.0, levels_p=(0.2, 0.3, 0.5), null_rate=0.02)
    result = compute_drift(reference, window, DriftThresholds())
    assert result.drifted_features == ["x", "plan"]
    x = result.feature("x")
    assert x.psi > 0.2 and x.pvalue < 1e-10 and x.reason.startswith("PSI")
    assert result.feature("plan").test == "chi2"
    assert result.prediction is None  # no scores given


def test_tiny_shift_with_huge_window_is_significant_but_not_drift(reference):
    rng = np.random.default_rng(4)
    window = _frame(rng, 400_000, shift=0.12, null_rate=0.02)  # 0.06 sd
    x = compute_drift(reference, window, DriftThresholds()).feature("x")
    assert x.pvalue < 0.01
    assert not x.drifted
    assert "effect floor" in x.reason
    # the same shift counts once the effect floor is lowered below D
    x_low = compute_drift(reference, window, DriftThresholds(), min_effect=0.01).feature("x")
    assert x_low.drifted and "D=" in x_low.reason


def test_unseen_categories_go_to_other_and_nulls_are_a_bucket(reference):
    rng = np.random.default_rng(5)
    window = _frame(rng, 3_000)
    window.loc[:449, "plan"] = "enterprise"  # 15% a level never seen in training
    window.loc[450:1049, "x"] = np.nan  # null rate 2% -> 20%
    result = compute_drift(reference, window, DriftThresholds())
    plan, x = result.feature("plan"), result.feature("x")
    assert plan.drifted and plan.unseen_rate == pytest.approx(0.15)
    assert x.drifted and x.null_rate_window == pytest.approx(0.2)
    assert x.null_rate_reference == pytest.approx(0.02, abs=0.005)


def test_rare_reference_levels_are_capped_into_other():
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"city": rng.integers(0, 500, 5_000).astype(str)})
    profile = build_reference(df, [], ["city"], max_categories=20)
    counts = profile.categorical["city"].counts
    assert len(counts) == 21 and OTHER_BUCKET in counts and sum(counts.values()) == 5_000
    same = pd.DataFrame({"city": rng.integers(0, 500, 5_000).astype(str)})
    assert compute_drift(profile, same, DriftThresholds()).drifted_features == []


def test_prediction_drift_uses_prediction_psi(reference):
    rng = np.random.default_rng(7)
    window = _frame(rng, 2_000, null_rate=0.02)
    result = compute_drift(reference, window, DriftThresholds(), prediction_scores=rng.beta(5, 2, 2_000))
    assert result.prediction_drifted and result.prediction.psi > 0.2
    assert result.drifted_features == []
    relaxed = compute_drift(
        reference, window, {"prediction_psi": 1e6}, prediction_scores=rng.beta(5, 2, 2_000)
    )
    assert not relaxed.prediction_drifted


def test_result_round_trips_as_json(reference):
    rng = np.random.default_rng(8)
    empty_x = _frame(rng, 1_000)
    empty_x["x"] = np.nan  # KS undefined -> NaN must survive JSON as null
    result = compute_drift(reference, empty_x, DriftThresholds(), prediction_scores=rng.random(1_000))
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = type(result).from_dict(json.loads(text))
    assert back.drifted_features == result.drifted_features
    assert math.isnan(back.feature("x").pvalue) and back.feature("x").drifted  # all-null window drifted


def test_bad_window_input_is_a_clear_error(reference):
    rng = np.random.default_rng(9)
    window = _frame(rng, 100).drop(columns=["plan"])
    with pytest.raises(DataError, match="column 'plan' is missing"):
        compute_drift(reference, window, DriftThresholds())
    window = _frame(rng, 100).astype({"x": object})
    window.loc[3, "x"] = "n/a"
    with pytest.raises(DataError, match=r"column 'x' is numeric but has 1 non-numeric values \(e.g. 'n/a'\)"):
        compute_drift(reference, window, DriftThresholds())
    with pytest.raises(DataError, match="3 scores for 100 rows"):
        compute_drift(reference, _frame(rng, 100), DriftThresholds(), prediction_scores=[0.1, 0.2, 0.3])


def test_infinite_values_count_as_nulls_and_the_profile_stays_valid_json(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, np.inf, -np.inf, np.nan, 3.0] * 50})
    profile = build_reference(df, ["x"], [])
    assert profile.numeric["x"].null_count == 150
    assert read_reference(write_reference(profile, tmp_path / "ref.json")) == profile


@pytest.mark.parametrize("n", [1, 2, 7, 1_000])
def test_sorted_quantiles_match_numpy(n):
    from gitops_ml.monitoring.drift import _sorted_quantiles

    a = np.sort(np.round(np.random.default_rng(n).normal(size=n), 1))
    q = np.linspace(0, 1, 11)[1:-1]
    assert np.allclose(_sorted_quantiles(a, q), np.quantile(a, q))


def test_integer_coded_categories_match_when_nulls_turn_them_float():
    ref = pd.DataFrame({"code": [1, 2, 3] * 200})
    window = pd.DataFrame({"code": [1.0, 2.0, 3.0] * 100 + [np.nan] * 3})
    profile = build_reference(ref, [], ["code"])
    assert set(profile.categorical["code"].counts) == {"1", "2", "3"}
    code = compute_drift(profile, window, DriftThresholds()).feature("code")
    assert code.unseen_rate == 0 and code.null_rate_window == pytest.approx(0.01, abs=1e-3)
    assert not code.drifted


def test_empty_window_without_columns_is_no_data_not_an_error(reference):
    result = compute_drift(reference, pd.DataFrame(), DriftThresholds())
    assert result.window_rows == 0 and result.drifted_features == []
    assert {f.reason for f in result.features} == {"no data in window"}
    assert math.isnan(result.max_psi)
