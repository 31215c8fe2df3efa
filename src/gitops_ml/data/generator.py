"""Synthetic, seeded churn data: the bundled example dataset and the traffic of the demo.

One row is one customer snapshot (the table in `data_contracts/churn.odcs.yaml`). Every
customer is drawn independently; ids are sequential (`CUST-0000001`, ...) from `id_offset`,
so batches generated with disjoint offsets never share a primary key.

How rows are made (all vectorised numpy, one `numpy.random.Generator` per call, seeded by
`SeedSequence(seed, spawn_key=(stream, month))`, so a month is reproducible on its own):

- tenure: 35% recent customers (geometric, mean ~5 months), the rest established
  (exponential, mean ~40 months), capped at 120. `signup_date` = snapshot - tenure months -
  0..27 days.
- contract: month-to-month is likeliest for new customers; long contracts grow with tenure.
- plan: basic / standard / premium; `monthly_charges` = plan list price x lognormal noise +
  optional add-ons; `total_charges` ~ tenure x monthly charges, null when tenure is 0.
- payment method (2% null, as if not captured at signup), region, usage (lognormal around
  the plan's typical minutes, 3% null as telemetry gaps), support calls (Poisson, raised by an
  unobserved dissatisfaction factor), late payments (Poisson, higher for check payers).
- churn: Bernoulli(sigmoid(logit)) where the logit adds: contract (month-to-month +1.4,
  one-year -0.6, two-year -2.4), newness (+2.2 x exp(-tenure/8)), support calls (+0.55 each),
  late payments (+0.6 each), charges above the plan's list price (+3.5 x (ratio - 1)), low
  usage relative to the plan (-1.1 x log ratio), electronic check (+0.6) and the unobserved
  factor. Nulls are applied after the label, so they hide signal as real gaps do. Then 5% of
  labels are flipped. Churn rate is ~22%; a HistGradientBoostingClassifier with default
  parameters trained on five months of 5,000 rows reaches a ROC AUC of ~0.81 on the sixth:
  learnable, not trivial.

Drift (`Scenario`) starts at `onset_month` (a month or a day) and ramps over `ramp_months`:

- covariate shift (P(x) moves, P(y|x) does not): prices rise by `price_increase`, the plan mix
  moves toward basic by `plan_mix_shift`, usage drops by `usage_drop`, and new customers replace
  established ones by `new_customer_shift` (0 in `covariate-drift`, 1 in `covariate-decay`).
- concept shift (P(y|x) moves): support calls stop mattering, the tenure effect reverses
  (long-standing customers leave), and region south churns much more.

Both are scaled by their intensity (`covariate_shift`, `concept_shift`; 1.0 = the preset).
Random draws do not depend on the scenario, so the same seed under two scenarios gives
paired data that differs only by the drift.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = (
    "customer_id",
    "signup_date",
    "snapshot_date",
    "tenure_months",
    "plan",
    "contract_type",
    "payment_method",
    "region",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "usage_minutes",
    "late_payments",
    "churned",
)
TARGET = "churned"
# the columns a churn model is trained on (the rest are the id, dates and the target)
NUMERIC_FEATURES = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "usage_minutes",
    "late_payments",
)
CATEGORICAL_FEATURES = ("plan", "contract_type", "payment_method", "region")
FEATURES = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
TIME_COLUMN = "snapshot_date"
ID_COLUMN = "customer_id"

PLANS = ("basic", "standard", "premium")
PLAN_PROBS = np.array([0.45, 0.35, 0.20])
PLAN_PROBS_DRIFTED = np.array([0.75, 0.20, 0.05])  # where the plan mix moves under covariate shift
_RECENT_SHARE = 0.35  # customers in their first months; the rest are established
PLAN_LIST_PRICE = np.array([35.0, 65.0, 105.0])
PLAN_TYPICAL_USAGE = np.array([250.0, 600.0, 1400.0])
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("credit-card", "bank-transfer", "electronic-check", "mailed-check")
PAYMENT_PROBS = np.array([0.27, 0.25, 0.30, 0.18])
REGIONS = ("north", "south", "east", "west")
REGION_PROBS = np.array([0.28, 0.22, 0.27, 0.23])

MAX_ID = 9_999_999  # `^CUST-[0-9]{7}$`
LABEL_NOISE = 0.05
PAYMENT_NULL_RATE = 0.02
USAGE_NULL_RATE = 0.03
_INTERCEPT = -4.9
_DAYS_PER_MONTH = 30.436875

_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DAY_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-\d{2}$")


@dataclass(frozen=True)
class Scenario:
    """Knobs of the data-generating process over time. Intensities are 0 (off) .. 1 (preset) or more.

    `onset_month` is "YYYY-MM" (or "YYYY-MM-DD" for streams of records); None means drift applies
    from the beginning. With `ramp_months` 0 the drift is a step; otherwise it grows linearly and
    reaches full intensity `ramp_months` months after onset.
    """

    name: str = "stable"
    covariate_shift: float = 0.0
    concept_shift: float = 0.0
    onset_month: str | None = None
    ramp_months: float = 0.0
    price_increase: float = 0.2
    plan_mix_shift: float = 0.5
    usage_drop: float = 0.3
    new_customer_shift: float = 0.0
    south_churn_boost: float = 1.8

    def __post_init__(self) -> None:
        for knob in (
            "covariate_shift",
            "concept_shift",
            "ramp_months",
            "price_increase",
            "plan_mix_shift",
            "usage_drop",
            "new_customer_shift",
            "south_churn_boost",
        ):
            if getattr(self, knob) < 0:
                raise ValueError(f"Scenario.{knob} must be >= 0, got {getattr(self, knob)}")
        if self.plan_mix_shift > 1 or self.usage_drop >= 1 or self.new_customer_shift > 1:
            raise ValueError("Scenario.plan_mix_shift and new_customer_shift must be <= 1, usage_drop < 1")
        if self.onset_month is not None:
            _parse_onset(self.onset_month)

    def ramp(self, dates: np.ndarray) -> np.ndarray:
        """Fraction 0..1 of full drift at each date (datetime64[D] array)."""
        dates = np.asarray(dates, dtype="datetime64[D]")
        if self.onset_month is None:
            return np.ones(dates.shape)
        onset = _parse_onset(self.onset_month)
        months_since = (dates - onset).astype(np.float64) / _DAYS_PER_MONTH
        if self.ramp_months <= 0:
            fraction = np.ones(dates.shape)
        else:
            # the onset month itself already carries 1/ramp of the drift, so onset is visible at once
            fraction = np.clip((months_since + 1.0) / max(self.ramp_months, 1.0), 0.0, 1.0)
        return np.where(months_since >= 0, fraction, 0.0)

    def with_onset(self, onset_month: str | None, ramp_months: float | None = None) -> Scenario:
        changes: dict[str, Any] = {"onset_month": onset_month}
        if ramp_months is not None:
            changes["ramp_months"] = ramp_months
        return dataclasses.replace(self, **changes)


STABLE = Scenario(name="stable")
COVARIATE_DRIFT = Scenario(name="covariate-drift", covariate_shift=1.0)
CONCEPT_DRIFT = Scenario(name="concept-drift", concept_shift=1.0)
# A covariate shift that costs accuracy: new customers (mostly month-to-month, the uncertain part
# of the population) replace established ones; P(y|x) is unchanged, so a calibrated model's own
# probabilities see the drop before any label arrives (the early warning's scenario). Paired with
# `stable` row by row except the support-call and late-payment counts: contracts follow tenure, and
# the Poisson draws consume the random stream by their rates.
COVARIATE_DECAY = Scenario(
    name="covariate-decay",
    covariate_shift=1.0,
    price_increase=0.0,
    plan_mix_shift=0.0,
    usage_drop=0.0,
    new_customer_shift=1.0,
)
SCENARIOS = {s.name: s for s in (STABLE, COVARIATE_DRIFT, CONCEPT_DRIFT, COVARIATE_DECAY)}


def scenario_by_name(name: str) -> Scenario:
    """Preset by name; underscores are accepted for dashes (`concept_drift`)."""
    key = name.strip().lower().replace("_", "-")
    try:
        return SCENARIOS[key]
    except KeyError:
        raise ValueError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})") from None


def _parse_onset(value: str) -> np.datetime64:
    if _MONTH_RE.match(value):
        return np.datetime64(value, "M").astype("datetime64[D]")
    if _DAY_RE.match(value):
        try:
            return np.datetime64(value, "D")
        except ValueError:
            pass
    raise ValueError(f"onset_month must be 'YYYY-MM' or 'YYYY-MM-DD', got '{value}'")


def _parse_month(month: str) -> np.datetime64:
    if not isinstance(month, str) or not _MONTH_RE.match(month):
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    return np.datetime64(month, "M")


def _check_ids(n_rows: int, id_offset: int) -> None:
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if id_offset < 0 or id_offset + n_rows > MAX_ID:
        raise ValueError(f"customer ids {id_offset + 1}..{id_offset + n_rows} do not fit CUST-NNNNNNN")


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def _pick(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse-CDF categorical draw: `probs` is (k,) or per row (n, k); returns indices."""
    cdf = np.cumsum(probs, axis=-1)
    cdf = cdf / cdf[..., -1:]
    if cdf.ndim == 1:
        return np.searchsorted(cdf, u, side="right").clip(max=len(cdf) - 1)
    return (u[:, None] >= cdf[:, :-1]).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _simulate(
    snapshot: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    scenario: Scenario,
    drift_dates: np.ndarray | None = None,
) -> pd.DataFrame:
    """The data-generating process for rows with the given snapshot dates (datetime64[D]) and ids.

    Drift follows `drift_dates` (each row's own day) when given, else the snapshot date.
    """
    n = len(ids)
    # Draws first, in a fixed order and independent of the scenario (keeps scenarios paired).
    u_recent, u_plan, u_contract, u_pay, u_region, u_label, u_flip, u_pay_null, u_usage_null = rng.random(
        (9, n)
    )
    tenure_recent = rng.geometric(1 / 6, n) - 1
    tenure_established = np.floor(rng.exponential(40.0, n)) + 3
    signup_days_back = rng.integers(0, 28, n)
    charge_noise = rng.normal(0.0, 0.12, n)
    addon = np.where(rng.random(n) < 0.3, rng.uniform(5, 25, n), 0.0)
    billing_noise = rng.uniform(0.92, 1.03, n)
    usage_noise = rng.normal(0.0, 0.55, n)
    dissatisfaction = rng.normal(0.0, 1.0, n)
    billing_trouble = rng.normal(0.0, 1.0, n)

    ramp = scenario.ramp(snapshot if drift_dates is None else drift_dates)
    s_cov = scenario.covariate_shift * ramp
    s_con = scenario.concept_shift * ramp

    recent_share = _RECENT_SHARE + (1 - _RECENT_SHARE) * np.clip(scenario.new_customer_shift * s_cov, 0, 1)
    tenure = (
        np.where(u_recent < recent_share, tenure_recent, tenure_established).clip(0, 120).astype(np.int64)
    )
    signup = (snapshot.astype("datetime64[M]") - tenure.astype("timedelta64[M]")).astype("datetime64[D]")
    signup = signup - signup_days_back.astype("timedelta64[D]")

    mix = np.clip(scenario.plan_mix_shift * s_cov, 0, 1)[:, None]
    plan = _pick(u_plan, (1 - mix) * PLAN_PROBS + mix * PLAN_PROBS_DRIFTED)

    contract_logits = np.stack([1.2 - 0.04 * tenure, np.zeros(n), -1.5 + 0.035 * tenure], axis=1)
    contract_p = np.exp(contract_logits - contract_logits.max(axis=1, keepdims=True))
    contract = _pick(u_contract, contract_p)

    payment = _pick(u_pay, PAYMENT_PROBS)
    region = _pick(u_region, REGION_PROBS)

    list_price = PLAN_LIST_PRICE[plan]
    monthly = (list_price * np.exp(charge_noise) + addon) * (1 + scenario.price_increase * s_cov)
    monthly = np.round(monthly.clip(0, 500), 2)
    total = np.round((tenure * monthly * billing_noise).clip(0, 60_000), 2)

    typical_usage = PLAN_TYPICAL_USAGE[plan]
    usage = typical_usage * np.exp(usage_noise - 0.3 * np.maximum(dissatisfaction, 0))
    usage = np.round((usage * (1 - scenario.usage_drop * s_cov)).clip(0, 20_000), 1)

    # Lambdas use nothing the scenario changes, so Poisson draws consume the stream identically.
    support_calls = rng.poisson(0.9 * np.exp(0.45 * dissatisfaction) * np.where(contract == 0, 1.3, 1.0))
    support_calls = support_calls.clip(0, 50)
    check_payer = (payment == 2) | (payment == 3)
    late_payments = rng.poisson(0.25 * np.exp(0.6 * billing_trouble) * np.where(check_payer, 2.2, 1.0))
    late_payments = late_payments.clip(0, 24)

    logit = (
        _INTERCEPT
        + np.array([1.4, -0.6, -2.4])[contract]
        + 2.2 * np.exp(-tenure / 8.0) * (1 - 2 * np.clip(s_con, 0, 1))
        + 0.015 * tenure * np.clip(s_con, 0, 1)  # reversed: long-standing customers start leaving
        + 0.55 * support_calls * (1 - np.clip(s_con, 0, 1))
        + 0.60 * late_payments
        + 3.5 * (monthly / list_price - 1)
        - 1.1 * np.log(np.maximum(usage, 1.0) / typical_usage)
        + 0.6 * (payment == 2)
        + scenario.south_churn_boost * s_con * (region == 1)
        + 0.7 * np.clip(s_con, 0, 1)  # keeps the overall churn rate roughly level
        + 0.2 * dissatisfaction
    )
    churned = (u_label < _sigmoid(logit)).astype(np.int64)
    churned = np.where(u_flip < LABEL_NOISE, 1 - churned, churned)

    frame = pd.DataFrame(
        {
            "customer_id": np.array([f"CUST-{i:07d}" for i in ids.tolist()], dtype=object),
            "signup_date": np.datetime_as_string(signup, unit="D").astype(object),
            "snapshot_date": np.datetime_as_string(snapshot, unit="D").astype(object),
            "tenure_months": tenure,
            "plan": np.asarray(PLANS, dtype=object)[plan],
            "contract_type": np.asarray(CONTRACTS, dtype=object)[contract],
            "payment_method": np.where(
                u_pay_null < PAYMENT_NULL_RATE, np.nan, np.asarray(PAYMENT_METHODS, dtype=object)[payment]
            ),
            "region": np.asarray(REGIONS, dtype=object)[region],
            "monthly_charges": monthly,
            "total_charges": np.where(tenure == 0, np.nan, total),
            "support_calls": support_calls.astype(np.int64),
            "usage_minutes": np.where(u_usage_null < USAGE_NULL_RATE, np.nan, usage),
            "late_payments": late_payments.astype(np.int64),
            "churned": churned,
        },
        columns=list(COLUMNS),
    )
    return frame


def generate_month(
    month: str, n_rows: int, *, seed: int, scenario: Scenario = STABLE, id_offset: int = 0
) -> pd.DataFrame:
    """One monthly batch: `n_rows` snapshots dated the first day of `month` ("2026-01").

    Dates are ISO strings and missing values NaN, exactly what reading the CSV back gives.
    Customer ids run from `id_offset + 1`.
    """
    first = _parse_month(month)
    _check_ids(n_rows, id_offset)
    months_since_epoch = int(first.astype(np.int64))
    rng = _rng(seed, 0, months_since_epoch + 10_000)  # spawn keys must be non-negative
    snapshot = np.full(n_rows, first.astype("datetime64[D]"))
    ids = np.arange(id_offset + 1, id_offset + n_rows + 1, dtype=np.int64)
    return _simulate(snapshot, ids, rng, scenario)


def month_range(start: str, months: int) -> list[str]:
    """["2026-01", "2026-02", ...]: `months` consecutive months from `start`."""
    first = _parse_month(start)
    return [str(first + i) for i in range(months)]


def generate_batches(
    start: str,
    months: int,
    rows_per_month: int,
    seed: int,
    scenario: Scenario = STABLE,
    *,
    id_offset: int = 0,
) -> list[pd.DataFrame]:
    """Consecutive monthly batches from `start`; customer ids are unique across all of them."""
    if months < 1:
        raise ValueError(f"months must be >= 1, got {months}")
    _check_ids(months * rows_per_month, id_offset)
    return [
        generate_month(
            month, rows_per_month, seed=seed, scenario=scenario, id_offset=id_offset + i * rows_per_month
        )
        for i, month in enumerate(month_range(start, months))
    ]


def _utc_naive(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def generate_records(
    n: int,
    *,
    seed: int,
    scenario: Scenario = STABLE,
    start_time: Any,
    end_time: Any,
    id_offset: int = 0,
    include_event_time: bool = False,
) -> pd.DataFrame:
    """`n` rows whose times spread uniformly over [start_time, end_time), sorted by time.

    For traffic simulation. Drift ramps row by row with each row's own time (from
    `scenario.onset_month`, which may be a day here), while `snapshot_date` stays the first day of
    that row's month as the contract requires. `include_event_time` adds the exact time as an
    `event_time` column (ISO seconds, UTC) last. Times are UTC; tz-aware inputs are converted.
    """
    start, end = _utc_naive(start_time), _utc_naive(end_time)
    if not end > start:
        raise ValueError(f"end_time ({end}) must be after start_time ({start})")
    _check_ids(n, id_offset)
    rng = _rng(seed, 1, int(start.value // 1_000_000_000) & 0x7FFFFFFF)
    span_s = (end - start).total_seconds()
    offsets = np.sort(rng.random(n)) * span_s
    times = np.datetime64(start.to_datetime64(), "s") + offsets.astype("timedelta64[s]")
    days = times.astype("datetime64[D]")
    snapshot = times.astype("datetime64[M]").astype("datetime64[D]")
    ids = np.arange(id_offset + 1, id_offset + n + 1, dtype=np.int64)
    frame = _simulate(snapshot, ids, rng, scenario, drift_dates=days)
    if include_event_time:
        frame["event_time"] = np.datetime_as_string(times, unit="s").astype(object)
    return frame
