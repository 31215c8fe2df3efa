from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gitops_ml.config import BootstrapConfig
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.metrics import Predictions, compute_metrics
from gitops_ml.evaluation.segments import segment_comparison, segment_metrics
from tests.evaluation.synthetic import binary_pair, equal_models_on_small_segments

BOOT = BootstrapConfig(n_resamples=300, seed=0)


def _frame(n: int) -> pd.DataFrame:
    plan = np.array(["basic"] * (n // 2) + ["pro"] * (n // 2 - 20) + ["trial"] * 20)
    region = np.where(np.arange(n) % 3 == 0, "north", None)  # missing values form their own group
    return pd.DataFrame({"plan": plan, "region": region}, index=np.arange(n) + 1000)  # index ignored


def test_segment_metrics_match_the_metric_on_the_subset_and_skip_small_groups():
    cand, _ = binary_pair(n=600, seed=1)
    frame = _frame(600)
    rows = segment_metrics(cand, frame, ["plan", "region"], min_size=50, metric="roc_auc")
    assert list(rows.columns) == ["column", "value", "n", "metric", "candidate", "note"]
    basic = rows[(rows.column == "plan") & (rows.value == "basic")].iloc[0]
    expected = compute_metrics(cand.subset(frame["plan"].to_numpy() == "basic"), ["roc_auc"])["roc_auc"]
    assert basic.n == 300 and basic.candidate == pytest.approx(expected)
    trial = rows[rows.value == "trial"].iloc[0]
    assert trial.n == 20 and math.isnan(trial.candidate)
    assert trial.note == "skipped: n=20 < min_segment_size=50"
    assert set(rows[rows.column == "region"].value) == {"north", "<missing>"}
    assert rows[rows.column == "region"].n.sum() == 600


def test_segment_comparison_flags_a_group_where_the_candidate_is_worse():
    cand, prod = binary_pair(n=600, seed=2, noise=0.01)
    frame = _frame(600)
    pro = frame["plan"].to_numpy() == "pro"
    # break the candidate on the "pro" segment only: scores shuffled there
    score = cand.y_score.copy()
    score[pro] = np.random.default_rng(0).permutation(score[pro])
    broken = Predictions(cand.y_true, (score >= 0.5).astype(int), score, "binary", positive_label=1)
    rows = segment_comparison(
        broken, prod, frame, ["plan"], min_size=50, metric="roc_auc", bootstrap=BOOT, max_regression=0.05
    )
    by_value = rows.set_index("value")
    assert bool(by_value.loc["pro", "flagged"]) is True
    assert "roc_auc worse by" in by_value.loc["pro", "note"]
    assert bool(by_value.loc["basic", "flagged"]) is False
    assert bool(by_value.loc["trial", "flagged"]) is False and by_value.loc["trial", "note"].startswith(
        "skipped"
    )
    assert by_value.loc["pro", "delta"] == pytest.approx(
        by_value.loc["pro", "candidate"] - by_value.loc["pro", "production"]
    )


def test_lower_is_better_metric_is_flagged_when_it_rises():
    cand, prod = binary_pair(n=600, seed=3, shift=2.0)
    rows = segment_comparison(
        cand, prod, _frame(600), ["plan"], min_size=50, metric="log_loss", bootstrap=BOOT, max_regression=0.01
    )
    assert rows[rows.value == "basic"].flagged.iloc[0]
    assert rows[rows.value == "basic"].delta.iloc[0] > 0.01


def test_segment_errors_name_the_problem():
    cand, prod = binary_pair(n=100, seed=1)
    with pytest.raises(ConfigError, match=r"evaluation\.segments.*'plan_x'"):
        segment_metrics(cand, _frame(100), ["plan_x"], min_size=5, metric="roc_auc")
    with pytest.raises(ValueError, match="99 rows"):
        segment_metrics(cand, _frame(100).iloc[:99], ["plan"], min_size=5, metric="roc_auc")
    with pytest.raises(ConfigError, match="rmse"):
        segment_comparison(cand, prod, _frame(100), ["plan"], min_size=5, metric="rmse", bootstrap=BOOT)


def test_a_segment_worse_only_by_noise_is_reported_but_not_flagged():
    candidate, production, frame = equal_models_on_small_segments()
    rows = segment_comparison(
        candidate,
        production,
        frame,
        ["plan"],
        min_size=50,
        metric="roc_auc",
        bootstrap=BOOT,
        max_regression=0.01,
    )
    noisy = rows[rows["delta"] < -0.01]
    assert len(noisy), "the construction must give a segment worse than allowed by the point estimate"
    for row in noisy.itertuples():
        assert row.ci_low < 0 < row.ci_high
        assert not row.flagged and "not significantly" in row.note
    assert (rows["ci_low"] <= rows["delta"]).all() and (rows["delta"] <= rows["ci_high"]).all()
