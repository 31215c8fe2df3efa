"""Champion/challenger scenarios, window after window, for the configured project.

`gitops-ml simulate --scenario challenger-better | challenger-equal` and the scenario tests run this
one loop: for each window, requests logged as serving logs them in shadow mode (production answers,
the challenger's score in `shadow_predictions`, both with the versions in deploy/), the labels
arriving, then the monitor's challenger decision on the newest windows (`judge_challenger`) and,
when asked, its ONE promote/retire pull request (`open_decision_pr`).

The scores are drawn, not computed by the two models: "truly better" must be true by construction
for the loop to be tested, and no pair of real models guarantees that. Each request has a latent
signal; the label follows it; production sees it blurred, the challenger sees it sharply
(challenger-better) or blurred as much but independently (challenger-equal). Everything after the
store (pairing, the paired bootstrap, the gates, the policy's windows, the PR) is the real code.
Binary, multiclass (each model logs its probabilities per class, so probability metrics compare
too) and regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError

if TYPE_CHECKING:
    from gitops_ml.forge.retrain_pr import RetrainPrOutcome
    from gitops_ml.monitoring.challenger import ChallengerDecision
    from gitops_ml.prediction_store import PredictionStore

# the blur (noise scale on the latent signal) of each model's score: production, challenger
SCENARIOS: Final = {"challenger-better": (1.6, 0.3), "challenger-equal": (1.6, 1.6)}
EQUAL_WINDOWS: Final = 20  # "no PR in 20 windows"
EXTRA_WINDOWS: Final = 2  # challenger-better: the policy's windows plus these (the PR gets updated)
ROWS_PER_WINDOW: Final = 400


class ScenarioError(GitopsMLError):
    """A scenario that cannot run on this project (unknown name, no challenger, too few classes)."""


@dataclass(frozen=True)
class ScenarioWindow:
    index: int  # 1-based
    start: datetime
    end: datetime
    rows: int
    decision: ChallengerDecision
    pr: RetrainPrOutcome | None = None


@dataclass(frozen=True)
class ChallengerScenarioRun:
    scenario: str
    challenger_version: str
    production_version: str
    required_windows: int
    windows: list[ScenarioWindow] = field(default_factory=list)

    @property
    def first_decided(self) -> ScenarioWindow | None:
        """The first window whose decision needs a PR (promote or retire)."""
        return next((w for w in self.windows if w.decision.action != "keep collecting"), None)

    def summary(self) -> str:
        first = self.first_decided
        head = (
            f"{self.scenario}: challenger {self.challenger_version} vs production {self.production_version}"
        )
        if first is None:
            return f"{head}: no PR in {len(self.windows)} windows (every window: keep collecting)"
        return (
            f"{head}: {first.decision.action} PR within {first.index} windows "
            f"(decided at window {first.index} of {len(self.windows)}; the policy needs "
            f"{self.required_windows} in a row)"
        )


def scenario_windows(scenario: str, required_windows: int) -> int:
    return EQUAL_WINDOWS if scenario == "challenger-equal" else required_windows + EXTRA_WINDOWS


def _scores(
    scenario: str, index: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(signal, P(label) or the true value's mean, production's score, the challenger's) of one window."""
    blur = SCENARIOS[scenario]
    rng = np.random.default_rng(seed * 100_003 + 1000 + index)
    signal = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-2.5 * signal))
    draws = rng.random(n)

    def score(noise: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(2.5 * signal + rng.normal(scale=noise, size=n))))

    return truth, draws, score(blur[0]), score(blur[1])


def _multiclass_scores(
    scenario: str, index: int, n: int, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the true class index, production's probabilities, the challenger's) of one window: a latent
    logit per class; the label is drawn from its softmax; each model sees the logits blurred."""
    blur = SCENARIOS[scenario]
    rng = np.random.default_rng(seed * 100_003 + 2000 + index)
    logits = 2.5 * rng.normal(size=(n, k))

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    truth = softmax(logits)
    label = (rng.random((n, 1)) > np.cumsum(truth, axis=1)).sum(axis=1)
    return (
        label,
        softmax(logits + rng.normal(scale=blur[0], size=(n, k))),
        softmax(logits + rng.normal(scale=blur[1], size=(n, k))),
    )


def _checked_classes(scenario: str, classes: Any) -> list[Any]:
    if classes is None or len(classes) < 3:
        raise ScenarioError(
            f"{scenario}: a multiclass scenario needs production's classes (3 or more), got {classes!r}"
        )
    return list(classes)


def log_scenario_window(
    store: PredictionStore,
    settings: Settings,
    scenario: str,
    *,
    index: int,
    start: datetime,
    end: datetime,
    versions: tuple[str, str],
    classes: list[Any] | None,
    rows: int = ROWS_PER_WINDOW,
    seed: int = 0,
    inputs: pd.DataFrame | None = None,
) -> int:
    """One window of shadow-mode traffic in [start, end) and its labels; returns the rows logged."""
    from gitops_ml.jsonable import to_jsonable

    truth, draws, prod, chal = _scores(scenario, index, rows, seed)
    prod_answers: Sequence[dict[str, Any]]
    chal_answers: Sequence[dict[str, Any]]
    if settings.dataset.task == "multiclass":
        keys = [to_jsonable(c) for c in _checked_classes(scenario, classes)]
        label_index, prod_p, chal_p = _multiclass_scores(scenario, index, rows, len(keys), seed)
        labels = [keys[i] for i in label_index]

        def answers(matrix: np.ndarray) -> list[dict[str, Any]]:
            # as serving logs a multiclass answer: the served class, its probability, all of them
            return [
                {
                    "score": float(row.max()),
                    "prediction": keys[int(row.argmax())],
                    "probabilities": {str(c): float(p) for c, p in zip(keys, row, strict=True)},
                }
                for row in matrix
            ]

        prod_answers, chal_answers = answers(prod_p), answers(chal_p)
    elif settings.dataset.task == "binary":
        positive = settings.dataset.positive_label
        negative = next(c for c in (classes or [0, 1]) if c != positive)
        labels = [positive if d < t else negative for d, t in zip(draws, truth, strict=True)]

        def answer(p: float) -> dict[str, Any]:
            return {"score": float(p), "prediction": to_jsonable(positive if p > 0.5 else negative)}

        prod_answers, chal_answers = [answer(p) for p in prod], [answer(p) for p in chal]
    else:  # regression: the value is the signal's probability scaled, each model's estimate blurred
        from gitops_ml.prediction_store.codecs import regression_answers

        labels = [float(10 * t + (d - 0.5)) for t, d in zip(truth, draws, strict=True)]
        prod_answers, chal_answers = regression_answers(10 * prod), regression_answers(10 * chal)

    step = (end - start) / (rows + 1)
    when = [start + step * (i + 1) for i in range(rows)]
    ids = [f"{scenario}-s{seed}-w{index}-r{i}" for i in range(rows)]
    if inputs is not None and len(inputs):
        picked = inputs.iloc[[(index * rows + i) % len(inputs) for i in range(rows)]]
        records = [to_jsonable(r) for r in picked.to_dict(orient="records")]
    else:
        records = [{} for _ in range(rows)]
    production_version, challenger_version = versions
    store.log_many(
        {
            "request_id": rid,
            "created_at": t,
            "model_version": production_version,
            "inputs": record,
            "output": a,
            "score": a["score"],
            "prediction": a["prediction"],
        }
        for rid, t, record, a in zip(ids, when, records, prod_answers, strict=True)
    )
    store.log_shadow_many(
        {
            "request_id": rid,
            "role": "challenger",
            "created_at": t,
            "model_version": challenger_version,
            "output": a,
            "score": a["score"],
            "prediction": a["prediction"],
        }
        for rid, t, a in zip(ids, when, chal_answers, strict=True)
    )
    store.add_labels(list(zip(ids, labels, strict=True)))
    return rows


def run_challenger_scenario(
    settings: Settings,
    scenario: str,
    *,
    store_url: str,
    windows: int | None = None,
    rows_per_window: int = ROWS_PER_WINDOW,
    window: str | None = None,
    seed: int = 0,
    inputs: pd.DataFrame | None = None,
    open_pr: bool = False,
    repo_dir: str | Path = ".",
    cache_dir: Path = Path(".gitops-ml/model-cache"),
) -> ChallengerScenarioRun:
    """Log `windows` windows of the scenario's traffic into `store_url` (from the challenger's start on)
    and run the monitor's challenger decision after each; with `open_pr`, its PR too."""
    from gitops_ml.jobs.challenger import judge_challenger, load_deployed, open_decision_pr
    from gitops_ml.monitoring.challenger import render_challenger_section
    from gitops_ml.prediction_store import PredictionStore

    if scenario not in SCENARIOS:
        raise ScenarioError(f"--scenario: {scenario!r} is not a challenger scenario ({', '.join(SCENARIOS)})")
    challenger, production, _ = load_deployed(
        settings,
        Path(cache_dir),
        missing=f"no challenger for {scenario}: propose one first (`gitops-ml challenger propose`)",
    )
    length = pd.Timedelta(window or settings.monitoring.window).to_pytimedelta()
    required = challenger.policy.consecutive_windows
    count = windows if windows is not None else scenario_windows(scenario, required)
    started = pd.Timestamp(challenger.started_at).to_pydatetime()
    # the monitor judges only windows after the challenger started
    start = max(datetime.now(UTC), started).replace(microsecond=0) + timedelta(minutes=1)
    classes = getattr(production.pipeline, "classes_", None)
    if settings.dataset.task == "multiclass":
        _checked_classes(scenario, classes)  # before the store is created: nothing half-written
    run = ChallengerScenarioRun(scenario, challenger.version, production.version, required)
    store = PredictionStore(store_url)
    try:
        for k in range(count):
            w_start, w_end = start + k * length, start + (k + 1) * length
            rows = log_scenario_window(
                store,
                settings,
                scenario,
                index=k,
                start=w_start,
                end=w_end,
                versions=(production.version, challenger.version),
                classes=list(classes) if classes is not None else None,
                rows=rows_per_window,
                seed=seed,
                inputs=inputs,
            )
            decision = judge_challenger(settings, store_url, production, w_end, window=window)
            assert decision is not None  # the challenger exists (read above)
            pr = (
                open_decision_pr(settings, decision, render_challenger_section(decision), repo_dir=repo_dir)
                if open_pr
                else None
            )
            run.windows.append(ScenarioWindow(k + 1, w_start, w_end, rows, decision, pr))
    finally:
        store.dispose()
    return run
