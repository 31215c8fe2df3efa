"""Synthetic churn frames matching data_contracts/churn.odcs.yaml, built with numpy (no per-row Python).

Shared by benchmarks/validation_bench.py. `as_text=True` gives the frame as `pd.read_csv` returns it
(dates as ISO strings), the slowest case for the validator; otherwise dates are datetime64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = np.array(["basic", "standard", "premium"], dtype=object)
CONTRACTS = np.array(["month-to-month", "one-year", "two-year"], dtype=object)
PAYMENTS = np.array(["credit-card", "bank-transfer", "electronic-check", "mailed-check"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def synthetic_churn(n: int, *, seed: int = 0, as_text: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.char.add("CUST-", np.char.zfill(rng.permutation(n).astype(str), 7)).astype(object)
    months = np.arange(np.datetime64("2026-01"), np.datetime64("2026-07")).astype("datetime64[D]")
    snapshot = months[rng.integers(0, len(months), n)]
    tenure = rng.integers(0, 121, n)
    signup = snapshot - (tenure * 30 + rng.integers(0, 30, n)).astype("timedelta64[D]")
    monthly = np.round(rng.uniform(10, 200, n), 2)
    total = np.where(tenure == 0, np.nan, np.round(monthly * tenure, 2))
    payment = PAYMENTS[rng.integers(0, 4, n)]
    payment[rng.random(n) < 0.02] = None
    usage = np.round(rng.gamma(2.0, 300.0, n), 1)
    usage[rng.random(n) < 0.03] = np.nan
    df = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup,
            "snapshot_date": snapshot,
            "tenure_months": tenure,
            "plan": PLANS[rng.integers(0, 3, n)],
            "contract_type": CONTRACTS[rng.integers(0, 3, n)],
            "payment_method": payment,
            "region": REGIONS[rng.integers(0, 4, n)],
            "monthly_charges": monthly,
            "total_charges": np.minimum(total, 60000),
            "support_calls": rng.integers(0, 51, n),
            "usage_minutes": np.minimum(usage, 20000),
            "late_payments": rng.integers(0, 25, n),
            "churned": (rng.random(n) < 0.2).astype("int64"),
        }
    )
    if as_text:
        for c in ("signup_date", "snapshot_date"):
            codes, uniques = pd.factorize(df[c])
            df[c] = np.asarray(uniques.strftime("%Y-%m-%d"), dtype=object)[codes]
    else:
        for c in ("signup_date", "snapshot_date"):
            df[c] = df[c].astype("datetime64[ns]")
    return df
