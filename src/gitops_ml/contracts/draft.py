"""A first-draft ODCS contract profiled from one table: the starting point `gitops-ml init` writes.

Pure logic: a DataFrame in, a contract mapping (ready for YAML) and per-column profiles out.
Numeric ranges are widened to sensible limits instead of the exact observed min/max, which the
next real request would break; allowed values are listed only for low-cardinality text columns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# A text column with at most this many distinct values (and fewer than half the rows) is a
# category: its values become the contract's allowed values and it is a categorical feature.
MAX_CATEGORIES = 30
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Kind = Literal["integer", "number", "boolean", "string", "category", "date", "timestamp"]


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: Kind
    nulls: int
    distinct: int
    categories: tuple[Any, ...] | None = None  # allowed values (category kind, and class labels)
    minimum: float | None = None
    maximum: float | None = None
    unique: bool = False
    date_format: str | None = None

    @property
    def logical_type(self) -> str:
        return "string" if self.kind == "category" else self.kind

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def is_integral(s: pd.Series) -> bool:
    """Integer dtype, or floats (nulls read as NaN) that are all whole numbers."""
    if ptypes.is_bool_dtype(s.dtype):
        return False
    if ptypes.is_integer_dtype(s.dtype):
        return True
    if ptypes.is_float_dtype(s.dtype):
        values = s.dropna().to_numpy()
        return bool(len(values)) and bool(np.all(np.mod(values, 1) == 0))
    return False


def parse_times(s: pd.Series) -> pd.Series | None:
    """Dates/timestamps parsed from text, or None when any non-null value is not one."""
    if not (
        ptypes.is_object_dtype(s.dtype)
        or ptypes.is_string_dtype(s.dtype)
        or ptypes.is_datetime64_any_dtype(s.dtype)
    ):
        return None
    parsed = pd.to_datetime(s, errors="coerce", format="mixed")
    if (parsed.isna() & s.notna()).any():
        return None
    return parsed


def profile_column(s: pd.Series, *, time_column: bool = False, label: bool = False) -> ColumnProfile:
    """Type, nulls, distinct values and range of one column (`label`: the target of a classifier)."""
    name = str(s.name)
    nulls = int(s.isna().sum())
    present = s.dropna()
    distinct = int(present.nunique())
    unique = distinct == len(s) and nulls == 0
    if time_column and not is_integral(s):
        parsed = parse_times(s)
        if parsed is None:
            raise ValueError("values that are not dates or times")
        text = present.astype(str)
        midnight = bool((parsed.dropna() == parsed.dropna().dt.normalize()).all())
        kind: Kind = "date" if midnight else "timestamp"
        fmt = "yyyy-MM-dd" if kind == "date" and bool(text.str.fullmatch(_ISO_DATE).all()) else None
        return ColumnProfile(name, kind, nulls, distinct, unique=unique, date_format=fmt)
    if ptypes.is_bool_dtype(s.dtype):
        return ColumnProfile(name, "boolean", nulls, distinct)
    if ptypes.is_numeric_dtype(s.dtype):
        kind = "integer" if is_integral(s) else "number"
        categories = None
        if label:
            values = present.astype("int64") if kind == "integer" else present
            categories = tuple(sorted(_py(v) for v in values.unique()))
        low = float(present.min()) if len(present) else None
        high = float(present.max()) if len(present) else None
        return ColumnProfile(name, kind, nulls, distinct, categories, low, high, unique)
    text = present.astype(str)
    if label or (distinct <= MAX_CATEGORIES and distinct < max(2, len(s) // 2)):
        return ColumnProfile(name, "category", nulls, distinct, tuple(sorted(text.unique())), unique=unique)
    return ColumnProfile(name, "string", nulls, distinct, unique=unique)


def widen(low: float, high: float, *, integer: bool) -> tuple[float, float]:
    """Limits around an observed range: one span beyond each side, 0 for non-negative data, rounded out."""
    span = high - low or abs(high) or 1.0
    lo = 0.0 if low >= 0 else low - span
    hi = high + span
    step = 10.0 ** math.floor(math.log10(span))
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if integer:
        return float(math.floor(lo)), float(math.ceil(hi))
    return float(f"{lo:.6g}"), float(f"{hi:.6g}")


def _number(value: float, integer: bool) -> int | float:
    return int(value) if integer or float(value).is_integer() else value


def _property(p: ColumnProfile, *, id_column: bool, time_column: bool, target: bool) -> dict[str, Any]:
    prop: dict[str, Any] = {"name": p.name, "logicalType": p.logical_type}
    role = "identifier" if id_column else "time column" if time_column else "target" if target else None
    if role:
        prop["description"] = f"The {role}."
    prop["required"] = p.nulls == 0
    if id_column:
        prop["unique"] = True
        prop["primaryKey"] = True
        prop["primaryKeyPosition"] = 1
    options: dict[str, Any] = {}
    if p.numeric and p.minimum is not None and p.maximum is not None and not (id_column or time_column):
        lo, hi = widen(p.minimum, p.maximum, integer=p.kind == "integer")
        options = {"minimum": _number(lo, p.kind == "integer"), "maximum": _number(hi, p.kind == "integer")}
    if p.date_format:
        options["format"] = p.date_format
    if options:
        prop["logicalTypeOptions"] = options
    if p.categories is not None and not id_column:
        prop["quality"] = [
            {"metric": "invalidValues", "arguments": {"validValues": list(p.categories)}, "mustBe": 0}
        ]
    return prop


def draft_contract(
    profiles: list[ColumnProfile],
    *,
    name: str,
    target: str,
    id_column: str | None,
    time_column: str | None,
    source: str,
) -> dict[str, Any]:
    """An ODCS v3.1 contract (the subset gitops-ml validates) as a plain mapping."""
    properties = [
        _property(
            p, id_column=p.name == id_column, time_column=p.name == time_column, target=p.name == target
        )
        for p in profiles
    ]
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"urn:datacontract:gitops-ml:{name}",
        "name": name,
        "version": "0.1.0",
        "status": "draft",
        "description": {
            "purpose": f"First draft profiled by `gitops-ml init` from {source}; review every rule.",
        },
        "schema": [
            {
                "name": name,
                "physicalName": name,
                "physicalType": "table",
                "customProperties": [{"property": "additionalColumns", "value": "forbid"}],
                "quality": [
                    {"metric": "rowCount", "mustBeGreaterThan": 0, "description": "A batch is never empty."}
                ],
                "properties": properties,
            }
        ],
    }
