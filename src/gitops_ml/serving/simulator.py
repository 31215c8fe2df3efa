"""Traffic simulator: records to `/predict`, then their labels to `/feedback` later.

The bundled churn example gets generated records; any other dataset is resampled from its
reference data.

It is a client of the real HTTP API (nothing shortcuts into the store), so the monitor sees
exactly what production would log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

# Far above the bundled batches' ids, so simulated customers never collide with training rows.
DEFAULT_ID_OFFSET = 5_000_000


@dataclass(frozen=True)
class SimulationResult:
    scenario: str
    sent: int
    predicted: int
    labelled: int
    errors: int
    seconds: float


def simulated_records(
    n: int,
    scenario_name: str,
    *,
    seed: int,
    id_offset: int,
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
) -> pd.DataFrame:
    """`n` records whose business dates spread over [start_time, end_time) (default: the last day),
    with the scenario's drift fully in effect."""
    from gitops_ml.data.generator import generate_records, scenario_by_name

    scenario = scenario_by_name(scenario_name).with_onset(None)
    end = pd.Timestamp(end_time) if end_time is not None else pd.Timestamp(datetime.now(UTC))
    start = pd.Timestamp(start_time) if start_time is not None else end - timedelta(days=1)
    return generate_records(
        n, seed=seed, scenario=scenario, start_time=start, end_time=end, id_offset=id_offset
    )


def reference_records(
    reference: pd.DataFrame,
    n: int,
    scenario_name: str,
    *,
    target: str,
    seed: int,
    numeric: list[str],
    id_column: str | None = None,
    time_column: str | None = None,
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
) -> pd.DataFrame:
    """`n` records of any dataset, resampled from its reference (training) data.

    stable: rows drawn at random; covariate-drift (and covariate-decay, which only the generated
    churn data can make costly by construction; here whether it lowers performance depends on the
    dataset): rows drawn mostly from the top of the first numeric feature's range (the inputs move); concept-drift: drawn at random, but the labels are
    shuffled among them (inputs unchanged, the relation to the label broken). Ids are fresh, and a
    datetime time column spreads over [start_time, end_time) like live traffic.
    """
    from gitops_ml.data.generator import scenario_by_name

    scenario = scenario_by_name(scenario_name).name
    rng = np.random.default_rng(seed)
    weights = None
    if scenario in ("covariate-drift", "covariate-decay") and numeric:
        ranks = reference[numeric[0]].rank(pct=True, na_option="keep").fillna(0.5).to_numpy()
        weights = np.exp(4.0 * ranks)
        weights /= weights.sum()
    rows = reference.iloc[rng.choice(len(reference), size=n, replace=True, p=weights)].reset_index(drop=True)
    if scenario == "concept-drift":
        rows[target] = rng.permutation(rows[target].to_numpy())
    if id_column:
        rows[id_column] = [f"sim-{seed}-{i}" for i in range(n)]
    if time_column and not pd.api.types.is_numeric_dtype(rows[time_column]):
        end = pd.Timestamp(end_time) if end_time is not None else pd.Timestamp(datetime.now(UTC))
        start = pd.Timestamp(start_time) if start_time is not None else end - timedelta(days=1)
        end, start = (
            end.tz_localize(None) if end.tzinfo else end,
            start.tz_localize(None) if start.tzinfo else start,
        )
        offsets = np.sort(rng.uniform(0, (end - start).total_seconds(), n))
        stamps = start + pd.to_timedelta(offsets, unit="s")
        rows[time_column] = stamps.strftime(
            "%Y-%m-%d" if _is_date_only(reference[time_column]) else "%Y-%m-%dT%H:%M:%S"
        )
    return rows


def _is_date_only(values: pd.Series) -> bool:
    text = values.dropna().astype(str)
    return bool(len(text)) and bool(text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all())


def _payloads(frame: pd.DataFrame, target: str, request_ids: list[str] | None = None) -> list[dict]:
    rows = json.loads(frame.drop(columns=[target]).to_json(orient="records"))
    ids = request_ids if request_ids is not None else [f"sim-{rid}" for rid in frame["customer_id"]]
    for row, rid in zip(rows, ids, strict=True):
        row["request_id"] = rid
    return rows


def run_simulation(
    base_url: str,
    frame: pd.DataFrame,
    *,
    target: str = "churned",
    batch_size: int = 50,
    label_delay_s: float = 0.0,
    label_fraction: float = 1.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    timeout_s: float = 30.0,
    request_ids: list[str] | None = None,
) -> SimulationResult:
    """Send `frame` (minus the label) in batches; after `label_delay_s`, send a fraction of labels.

    `request_ids`: one per row (default: from the churn example's customer_id).
    """
    import httpx

    started = time.perf_counter()
    payloads = _payloads(frame, target, request_ids)
    labels = dict(zip((p["request_id"] for p in payloads), frame[target].tolist(), strict=True))
    predicted: list[str] = []
    errors = 0
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for i in range(0, len(payloads), batch_size):
            chunk = payloads[i : i + batch_size]
            response = client.post("/predict", json={"records": chunk})
            if response.status_code == 200:
                predicted += [p["request_id"] for p in response.json()["predictions"]]
            else:
                errors += len(chunk)
            if progress:
                progress(len(chunk))
        time.sleep(label_delay_s)
        rng = np.random.default_rng(seed)
        chosen = [rid for rid in predicted if rng.random() < label_fraction]
        labelled = 0
        for rid in chosen:
            response = client.post("/feedback", json={"request_id": rid, "label": labels[rid]})
            if response.status_code == 200:
                labelled += 1
            else:
                errors += 1
    return SimulationResult(
        scenario="",
        sent=len(payloads),
        predicted=len(predicted),
        labelled=labelled,
        errors=errors,
        seconds=time.perf_counter() - started,
    )
