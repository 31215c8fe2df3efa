from __future__ import annotations

import re
from dataclasses import replace

from gitops_ml.monitoring.drift import DriftResult
from gitops_ml.monitoring.policy import decide, make_record
from gitops_ml.monitoring.report import render_monitor_report, write_monitor_plots
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT
from tests.monitoring.conftest import THRESHOLDS, feature


def _history(make_window, cfg, n=5):
    history = []
    for i in range(n):
        w = make_window(i, decayed=i >= n - 1, metric=0.80 - 0.01 * i)
        history.append(
            make_record(
                w, decide(history, w, cfg, now=w.window_end, last_retrain_pr_at=None), created_at=w.window_end
            )
        )
    return history


def test_retrain_report_verdict_first_tables_and_charts(make_window, cfg):
    history = _history(make_window, cfg)
    current = make_window(5, drifted=3, decayed=True)
    decision = decide(history, current, cfg, now=current.window_end, last_retrain_pr_at=None)
    text = render_monitor_report(current, decision, history, model_version="v1")
    assert text.splitlines()[0] == "## Model monitor: RETRAIN"
    assert "- 3 drifted features > max_drifted_features 2: f0, f1, f2" in text
    # drifted features listed first, marked
    rows = [line for line in text.splitlines() if re.match(r"\| (f\d|plan) ", line)]
    assert [r.split("|")[1].strip() for r in rows[:3]] == ["f0", "f1", "f2"]
    assert all("**yes**" in r for r in rows[:3]) and "| no |" in rows[3]
    assert "| roc_auc | 0.7000 | [0.6800, 0.7200] | 0.8000 |" in text
    assert "50.0%" in text  # label coverage
    charts = re.findall(r"```mermaid\nxychart-beta\n(.*?)```", text, flags=re.DOTALL)
    assert len(charts) == 2
    assert charts[0].count('"2026-') == 6 and "line [" in charts[0]
    assert (
        "0.8, 0.79" in charts[1]
    )  # metric history in window order (numbers as the one chart builder writes them)


def test_verdicts(make_window, cfg):
    now = make_window(0).window_end
    ok = make_window(0)
    assert render_monitor_report(
        ok, decide([], ok, cfg, now=now, last_retrain_pr_at=None), [], model_version="v1"
    ).startswith("## Model monitor: OK\n")
    small = make_window(0, rows=10)
    text = render_monitor_report(
        small, decide([], small, cfg, now=now, last_retrain_pr_at=None), [], model_version="v1"
    )
    assert text.startswith("## Model monitor: INSUFFICIENT DATA\n") and "mermaid" not in text
    bad = make_window(0, decayed=True)
    assert (
        "BAD WINDOW"
        in render_monitor_report(
            bad, decide([], bad, cfg, now=now, last_retrain_pr_at=None), [], model_version="v1"
        ).splitlines()[0]
    )


def test_report_fits_the_comment_limit_and_escapes_pipes(make_window, cfg):
    base = make_window(0)
    feats = [feature(f"col|{i:04d}" + "x" * 60, 0.5 if i % 2 else 0.01) for i in range(3_000)]
    big = replace(
        base,
        drift=DriftResult(window_rows=2000, features=feats, prediction=None, thresholds=dict(THRESHOLDS)),
    )
    text = render_monitor_report(
        big,
        decide([], big, cfg, now=big.window_end, last_retrain_pr_at=None),
        _history(make_window, cfg, n=40),
        model_version="v1",
    )
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "col\\|0001" in text and "2940 more features not shown (1440 of them drifted)" in text
    assert "and 1490 more" in text and "truncated" not in text


def test_plots_are_pngs(make_window, cfg, tmp_path):
    history = _history(make_window, cfg)
    paths = write_monitor_plots(make_window(5, drifted=2), history, tmp_path / "plots")
    assert set(paths) == {"psi", "metric"}
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["drift_psi.png", "metric_history.png"]


def test_naive_window_times_are_taken_as_utc(make_window, cfg, tmp_path):
    history = _history(make_window, cfg)
    current = make_window(5)
    naive = replace(
        current,
        window_start=current.window_start.replace(tzinfo=None),
        window_end=current.window_end.replace(tzinfo=None),
    )
    decision = decide(history, naive, cfg, now=naive.window_end, last_retrain_pr_at=None)
    assert render_monitor_report(naive, decision, history, model_version="v1") == render_monitor_report(
        current,
        decide(history, current, cfg, now=current.window_end, last_retrain_pr_at=None),
        history,
        model_version="v1",
    )
    assert set(write_monitor_plots(naive, history, tmp_path)) == {"psi", "metric"}
