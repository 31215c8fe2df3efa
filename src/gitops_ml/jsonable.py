"""Plain JSON values from what numpy, pandas and the standard library hand us: the one NaN -> null.

Strict JSON has no NaN or infinity; every summary, record and metadata file goes through here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

_PLAIN = frozenset({str, int, bool, type(None)})


def finite_or_none(value: float | None) -> float | None:
    """A finite float, or None for None, NaN and infinity."""
    return None if value is None or not math.isfinite(value) else float(value)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays, datetimes, dates and Paths converted; NaN/inf/NaT -> null.

    Exact-type checks first: this runs for every logged prediction, and the common case (already
    plain dicts of str/int/float) must not pay for ABC isinstance checks.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {k if type(k) is str else str(k): to_jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    pandas = sys.modules.get("pandas")  # a NaT exists only once pandas is imported; never import it here
    if pandas is not None and value is pandas.NaT:
        return None
    if isinstance(value, date):  # datetime and pd.Timestamp too
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value
