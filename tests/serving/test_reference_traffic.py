"""Traffic for any dataset, resampled from its reference data (not only the churn generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitops_ml.serving.simulator import _payloads, reference_records


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "wine_id": [f"w{i}" for i in range(n)],
            "tasted": pd.date_range("2025-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "alcohol": rng.uniform(11, 15, n),
            "colour": rng.choice(["red", "white", None], n),
            "grape": rng.choice(["barolo", "grignolino", "barbera"], n),
        }
    )


def draw(reference: pd.DataFrame, scenario: str, **kw) -> pd.DataFrame:
    return reference_records(
        reference,
        2000,
        scenario,
        target="grape",
        seed=3,
        numeric=["alcohol"],
        id_column="wine_id",
        time_column="tasted",
        **kw,
    )


def test_stable_traffic_resembles_the_reference_with_fresh_ids_and_live_dates(reference: pd.DataFrame):
    rows = draw(reference, "stable", start_time="2026-07-01", end_time="2026-07-03")
    assert list(rows.columns) == list(reference.columns) and len(rows) == 2000
    assert abs(rows["alcohol"].mean() - reference["alcohol"].mean()) < 0.15
    assert rows["wine_id"].is_unique and not set(rows["wine_id"]) & set(reference["wine_id"])
    assert set(rows["tasted"]) <= {"2026-07-01", "2026-07-02"}
    assert set(rows["grape"]) == {"barolo", "grignolino", "barbera"}
    payload = _payloads(rows.head(2), "grape", ["a", "b"])
    assert payload[0]["request_id"] == "a" and "grape" not in payload[0]


def test_covariate_drift_moves_the_inputs(reference: pd.DataFrame):
    assert draw(reference, "covariate-drift")["alcohol"].mean() > reference["alcohol"].mean() + 0.5


def test_concept_drift_breaks_the_label_relation_but_keeps_the_inputs(reference: pd.DataFrame):
    stable, drifted = draw(reference, "stable"), draw(reference, "concept-drift")
    assert (stable["alcohol"] == drifted["alcohol"]).all()  # same rows drawn
    assert sorted(stable["grape"]) == sorted(drifted["grape"])  # same labels, shuffled
    assert (stable["grape"] != drifted["grape"]).mean() > 0.5


def test_unknown_scenario_is_refused(reference: pd.DataFrame):
    with pytest.raises(ValueError, match="unknown scenario"):
        draw(reference, "chaos")
