from __future__ import annotations

import pandas as pd

from gitops_ml.evaluation.metrics import predict
from gitops_ml.evaluation.plots import permutation_importance_series, write_plots
from tests.evaluation.synthetic import binary_pair, multiclass_preds, regression_preds

PNG = b"\x89PNG\r\n\x1a\n"


def _assert_pngs(paths, names, out_dir):
    assert set(paths) == set(names)
    for path in paths.values():
        assert path.parent == out_dir and path.read_bytes()[:8] == PNG
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_binary_plots_with_production_and_importance(tmp_path):
    cand, prod = binary_pair(n=300)
    importance = pd.Series({"tenure": 0.05, "charges": 0.02, "plan": -0.001})
    paths = write_plots(cand, prod, tmp_path / "plots", feature_importance=importance)
    _assert_pngs(
        paths, {"roc", "pr", "confusion_matrix", "calibration", "feature_importance"}, tmp_path / "plots"
    )


def test_multiclass_and_regression_plots(tmp_path):
    mc = write_plots(multiclass_preds(n=200), None, tmp_path / "mc")
    _assert_pngs(mc, {"confusion_matrix"}, tmp_path / "mc")
    reg = write_plots(regression_preds(n=200), regression_preds(n=200, noise=2.0), tmp_path / "reg")
    _assert_pngs(reg, {"residuals", "predicted_vs_actual"}, tmp_path / "reg")


def test_permutation_importance_ranks_raw_columns(fitted_pipeline, churn_frame, tmp_path):
    frame, y = churn_frame
    importance = permutation_importance_series(
        fitted_pipeline, frame, y, scoring="roc_auc", seed=0, max_rows=300
    )
    assert list(importance.index) != [] and set(importance.index) == {"tenure", "charges", "plan"}
    assert importance.is_monotonic_decreasing
    again = permutation_importance_series(fitted_pipeline, frame, y, scoring="roc_auc", seed=0, max_rows=300)
    pd.testing.assert_series_equal(importance, again)
    preds = predict(fitted_pipeline, frame, y, "binary", positive_label="yes")
    paths = write_plots(preds, None, tmp_path, feature_importance=importance)
    assert paths["feature_importance"].stat().st_size > 1000


def test_plots_survive_a_single_row(tmp_path):
    cand, _ = binary_pair(n=1)
    assert set(write_plots(cand, None, tmp_path)) == {"roc", "pr", "confusion_matrix", "calibration"}
