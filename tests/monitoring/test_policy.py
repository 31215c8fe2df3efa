from __future__ import annotations

import json
from datetime import timedelta

from gitops_ml.monitoring.policy import WindowRecord, WindowResult, decide, make_record


def _run(windows: list[WindowResult], cfg, last_pr=None):
    """Decide window after window as the monitor would, storing each record."""
    history: list[WindowRecord] = []
    decisions = []
    for w in windows:
        decision = decide(history, w, cfg, now=w.window_end, last_retrain_pr_at=last_pr)
        history.append(make_record(w, decision, created_at=w.window_end))
        decisions.append(decision)
    return decisions, history


def test_small_window_is_insufficient_data_not_bad(make_window, cfg):
    d = decide(
        [],
        make_window(0, drifted=6, decayed=True, rows=cfg.min_window_rows - 1),
        cfg,
        now=make_window(0).window_end,
        last_retrain_pr_at=None,
    )
    assert d.status == "insufficient data" and not d.bad_window and d.action == "none"
    assert "499 rows < min_window_rows 500" in d.reasons[0]


def test_ok_window(make_window, cfg):
    d = decide(
        [],
        make_window(0, drifted=cfg.max_drifted_features),
        cfg,
        now=make_window(0).window_end,
        last_retrain_pr_at=None,
    )
    assert d.status == "ok" and not d.bad_window and d.consecutive_bad == 0 and d.action == "none"


def test_each_bad_signal_makes_a_bad_window(make_window, cfg):
    now = make_window(0).window_end
    for window, needle in [
        (make_window(0, drifted=cfg.max_drifted_features + 1), "drifted features > max_drifted_features"),
        (make_window(0, prediction_psi=0.5), "prediction drift"),
        (make_window(0, decayed=True), "performance decayed"),
    ]:
        d = decide([], window, cfg, now=now, last_retrain_pr_at=None)
        assert d.bad_window and d.action == "none" and d.consecutive_bad == 1
        assert any(needle in r for r in d.reasons), d.reasons


def test_retrain_after_consecutive_bad_windows_then_cooldown(make_window, cfg):
    windows = [
        make_window(0),
        make_window(1, decayed=True),
        make_window(2, decayed=True),
        make_window(3, decayed=True),
        make_window(4, decayed=True),
    ]
    decisions, history = _run(windows, cfg.model_copy(update={"cooldown_days": 10}))
    assert [d.action for d in decisions] == ["none", "none", "retrain", "none", "retrain"]
    assert [d.consecutive_bad for d in decisions] == [0, 1, 2, 3, 4]
    # window 3 ends 7 days after the retrain (< 10: cool-down), window 4 ends 14 days after it
    assert decisions[3].in_cooldown and "cool-down" in decisions[3].reasons[-1]
    assert not decisions[4].in_cooldown
    # with the default 7-day cool-down, a window exactly 7 days later is out of it again
    default_decisions, _ = _run(windows, cfg)
    assert [d.action for d in default_decisions] == ["none", "none", "retrain", "retrain", "retrain"]
    assert history[2].action == "retrain" and history[3].action == "none"


def test_cooldown_from_the_forge_timestamp(make_window, cfg):
    w0, w1 = make_window(0, decayed=True), make_window(1, decayed=True)
    history = [
        make_record(
            w0, decide([], w0, cfg, now=w0.window_end, last_retrain_pr_at=None), created_at=w0.window_end
        )
    ]
    d = decide(history, w1, cfg, now=w1.window_end, last_retrain_pr_at=w1.window_end - timedelta(days=1))
    assert d.in_cooldown and d.action == "none" and d.consecutive_bad == 2
    later = decide(history, w1, cfg, now=w1.window_end, last_retrain_pr_at=w1.window_end - timedelta(days=8))
    assert not later.in_cooldown and later.action == "retrain"


def test_streak_rules(make_window, cfg):
    # insufficient-data windows are skipped, an ok window breaks the streak
    decisions, _ = _run(
        [make_window(0, decayed=True), make_window(1, rows=10), make_window(2, decayed=True)], cfg
    )
    assert decisions[2].action == "retrain" and decisions[2].consecutive_bad == 2
    decisions, _ = _run([make_window(0, decayed=True), make_window(1), make_window(2, decayed=True)], cfg)
    assert decisions[2].action == "none" and decisions[2].consecutive_bad == 1
    # a new model version starts a new streak
    decisions, _ = _run([make_window(0, decayed=True), make_window(1, decayed=True, model_version="v2")], cfg)
    assert decisions[1].consecutive_bad == 1 and decisions[1].action == "none"


def test_rerun_of_the_same_window_is_not_counted_twice(make_window, cfg):
    w = make_window(0, decayed=True)
    first = decide([], w, cfg, now=w.window_end, last_retrain_pr_at=None)
    again = decide(
        [make_record(w, first, created_at=w.window_end)], w, cfg, now=w.window_end, last_retrain_pr_at=None
    )
    assert again.consecutive_bad == 1 and again.action == "none"


def test_record_shape_round_trips_as_json(make_window, cfg):
    w = make_window(0, drifted=3, decayed=True)
    d = decide([], w, cfg, now=w.window_end, last_retrain_pr_at=None)
    record = make_record(w, d, created_at=w.window_end)
    data = json.loads(json.dumps(record.to_dict(), allow_nan=False))
    assert set(data) >= {
        "window_start",
        "window_end",
        "rows",
        "labelled",
        "drifted_features",
        "prediction_psi",
        "metric_value",
        "bad",
        "action",
        "created_at",
    }
    assert data["drifted_features"] == ["f0", "f1", "f2"] and data["bad"] is True
    assert data["window_start"].endswith("+00:00")
    assert WindowRecord.from_dict(data) == record
    assert WindowResult.from_dict(json.loads(json.dumps(w.to_dict(), allow_nan=False))) == w


def test_empty_window_end_to_end_is_insufficient_data(cfg):
    import numpy as np
    import pandas as pd

    from gitops_ml.monitoring.drift import build_reference
    from gitops_ml.monitoring.policy import assess_window
    from gitops_ml.monitoring.report import render_monitor_report
    from tests.monitoring.conftest import T0

    ref = pd.DataFrame({"x": np.arange(100.0), "plan": ["a", "b"] * 50})
    result = assess_window(
        build_reference(ref, ["x"], ["plan"]),
        pd.DataFrame(),
        cfg,
        window_start=T0,
        window_end=T0 + timedelta(days=7),
    )
    decision = decide([], result, cfg, now=result.window_end, last_retrain_pr_at=None)
    assert decision.status == "insufficient data" and result.performance is None
    text = render_monitor_report(result, decision, [], model_version="v1")
    assert text.startswith("## Model monitor: INSUFFICIENT DATA") and "No labels were looked up" in text
    assert json.loads(json.dumps(make_record(result, decision, created_at=T0).to_dict(), allow_nan=False))
