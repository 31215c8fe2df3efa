"""Values to and from the prediction store: timestamps (naive UTC stored, tz-aware UTC returned),
JSON values (numpy, NaN -> null), labels coerced to one type per task, and the row encoding of the
SQLite fast insert."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Self, overload

import numpy as np
import pandas as pd

from gitops_ml.clock import utc_now
from gitops_ml.jsonable import to_jsonable
from gitops_ml.prediction_store.schema import (
    PREDICTION_FIELDS_SET,
    PRODUCTION,
    ROLES,
    SHADOW_FIELDS_SET,
)
from gitops_ml.record_columns import ModelAnswers


def to_db_time(value: datetime | str | pd.Timestamp | None) -> datetime | None:
    """Naive UTC for storage; naive inputs are taken to be UTC already."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    assert isinstance(value, datetime)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def from_db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def coerce_label(value: Any, task: str = "binary") -> int | float | str:
    """One label type per task, whether it came from JSON or a CSV cell ("1" -> 1).

    Raises ValueError with a short reason for a value that cannot be a label.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError("label is empty or not a finite number")
    if not isinstance(value, int | float | str):
        raise ValueError(f"label must be a number or a string, got {type(value).__name__}")
    if task == "regression":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"regression label must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"regression label must be finite, got {value!r}")
        return number
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"class label must be an integer or a string, got {value!r}")
    text = str(value).strip()
    if not text:
        raise ValueError("label is empty")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer():
        return int(number)
    raise ValueError(f"class label must be an integer or a string, got {value!r}")


def _json_dumps() -> Any:
    """A str-returning JSON encoder for stored values: orjson when installed (5-10x faster than
    json.dumps, and it encodes numpy values, datetimes and NaN -> null natively), else the standard
    library after `to_jsonable`. JSON encoding is most of the cost of logging a prediction."""
    try:
        import orjson
    except ImportError:
        import json

        return lambda value: json.dumps(to_jsonable(value))
    dumps, options = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return lambda value: dumps(value, default=_orjson_default, option=options).decode()


def _orjson_default(value: Any) -> Any:
    converted = to_jsonable(value)
    if converted is value:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    return converted


json_dumps = _json_dumps()
# SQLAlchemy's SQLite DATETIME text format; the fast insert path must write exactly this.
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _check_record(
    record: Mapping[str, Any], required: tuple[str, ...], allowed: frozenset[str], what: str
) -> str:
    """The record's role; ValueError naming a missing or unknown key or a role not in ROLES."""
    for key in required:
        if record.get(key) is None:
            raise ValueError(f"{what} is missing '{key}'")
    if not allowed.issuperset(record):
        raise ValueError(f"{what} has unknown keys {sorted(set(record) - allowed)}")
    role = record.get("role") or PRODUCTION
    if role not in ROLES:
        raise ValueError(f"{what} has role {role!r}; expected one of {list(ROLES)}")
    return str(role)


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def regression_answers(values: Iterable[float]) -> ModelAnswers:
    """Regression answers as served and logged: the value is the prediction AND the score, because
    the monitor's prediction drift reads `score` for every task (None would leave it no scores)."""
    floats = [float(v) for v in values]
    return ModelAnswers(floats, list(floats))


def normalize_prediction_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and convert to storable types; raise ValueError naming a missing key."""
    role = _check_record(
        record, ("request_id", "model_version", "inputs"), PREDICTION_FIELDS_SET, "prediction record"
    )
    score = record.get("score")
    latency = record.get("latency_ms")
    return {
        "role": role,
        "request_id": str(record["request_id"]),
        "created_at": to_db_time(record.get("created_at") or utc_now()),
        "model_version": str(record["model_version"]),
        "inputs": to_jsonable(record["inputs"]),
        "output": to_jsonable(record.get("output") or {}),
        "score": _finite(score),
        "prediction": to_jsonable(record.get("prediction")),
        "latency_ms": None if latency is None else float(latency),
    }


def sqlite_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """One predictions row as SQLite values, in PREDICTION_FIELDS order."""
    role = _check_record(
        record, ("request_id", "model_version", "inputs"), PREDICTION_FIELDS_SET, "prediction record"
    )
    created = to_db_time(record.get("created_at") or utc_now())
    score, latency = _finite(record.get("score")), record.get("latency_ms")
    prediction = record.get("prediction")
    return (
        str(record["request_id"]),
        created.strftime(SQLITE_DATETIME_FORMAT),  # type: ignore[union-attr]
        str(record["model_version"]),
        json_dumps(record["inputs"]),
        json_dumps(record.get("output") or {}),
        score,
        None if prediction is None else json_dumps(prediction),
        None if latency is None else float(latency),
        role,
    )


def normalize_shadow_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A shadow score (the model that did not answer the request scored it too) as storable values."""
    role = _check_record(record, ("request_id", "model_version", "role"), SHADOW_FIELDS_SET, "shadow record")
    latency = record.get("latency_ms")
    return {
        "request_id": str(record["request_id"]),
        "role": role,
        "created_at": to_db_time(record.get("created_at") or utc_now()),
        "model_version": str(record["model_version"]),
        "output": to_jsonable(record.get("output") or {}),
        "score": _finite(record.get("score")),
        "prediction": to_jsonable(record.get("prediction")),
        "latency_ms": None if latency is None else float(latency),
    }


def sqlite_shadow_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """One shadow_predictions row as SQLite values, in SHADOW_FIELDS order (encoded as `sqlite_row`
    does: the logger thread shares the GIL with serving)."""
    role = _check_record(record, ("request_id", "model_version", "role"), SHADOW_FIELDS_SET, "shadow record")
    created = to_db_time(record.get("created_at") or utc_now())
    prediction, latency = record.get("prediction"), record.get("latency_ms")
    return (
        str(record["request_id"]),
        role,
        created.strftime(SQLITE_DATETIME_FORMAT),  # type: ignore[union-attr]
        str(record["model_version"]),
        json_dumps(record.get("output") or {}),
        _finite(record.get("score")),
        None if prediction is None else json_dumps(prediction),
        None if latency is None else float(latency),
    )


class _ByColumn(Sequence[Mapping[str, Any]]):
    """Records held by column (the dataclass fields, in order): one object per request on the
    serving path, read row by row where a record is wanted."""

    __slots__ = ()

    def _columns(self) -> tuple[list[Any], ...]:
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def _record(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Self: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(*(column[index] for column in self._columns()))
        return self._record(index)

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        if len(parts) == 1:
            return parts[0]
        width = len(fields(cls))  # type: ignore[arg-type]
        return cls(*([v for part in parts for v in part._columns()[k]] for k in range(width)))


@dataclass(frozen=True, slots=True)
class PredictionRows(_ByColumn):
    """Prediction records by column: what the serving path logs, one object per request.

    The request path builds this in O(1) (its own lists, no per-row dict), and the SQLite writer
    encodes it straight into tuples (`sqlite_rows`). It is also a sequence of ordinary records
    (`log_many`'s shape), for PostgreSQL and for the row-by-row fallback of the logger. The serving
    path is the only producer, so its values are known to be well formed (roles, finite or None
    scores); ordinary records keep their per-record checks.
    """

    request_ids: list[str]
    created_at: list[datetime]
    model_versions: list[str]
    roles: list[str]
    inputs: Sequence[Mapping[str, Any]]  # a list of dicts, or a batch's RecordColumns
    outputs: Sequence[Mapping[str, Any]]  # a list of dicts, or a model's ModelAnswers
    latency_ms: list[float | None]

    def __len__(self) -> int:
        return len(self.request_ids)

    def _record(self, index: int) -> dict[str, Any]:
        out = self.outputs[index]
        return {
            "request_id": self.request_ids[index],
            "created_at": self.created_at[index],
            "model_version": self.model_versions[index],
            "role": self.roles[index],
            "inputs": self.inputs[index],
            "output": out,
            "score": out.get("score"),
            "prediction": out.get("prediction"),
            "latency_ms": self.latency_ms[index],
        }


@dataclass(frozen=True, slots=True)
class ShadowRows(_ByColumn):
    """Shadow scores by column (`PredictionRows`' counterpart for `shadow_predictions`)."""

    request_ids: list[str]
    roles: list[str]
    created_at: list[datetime]
    model_versions: list[str]
    outputs: list[dict[str, Any]]
    latency_ms: list[float | None]

    def __len__(self) -> int:
        return len(self.request_ids)

    def _record(self, index: int) -> dict[str, Any]:
        out = self.outputs[index]
        return {
            "request_id": self.request_ids[index],
            "role": self.roles[index],
            "created_at": self.created_at[index],
            "model_version": self.model_versions[index],
            "output": out,
            "score": out.get("score"),
            "prediction": out.get("prediction"),
            "latency_ms": self.latency_ms[index],
        }


def _encoders() -> tuple[Any, Any]:
    """(JSON text of a value, SQLite text of a datetime that repeats): the per-row work of the
    SQLite writer, kept to one orjson call per JSON column and one strftime per distinct time."""
    import orjson

    dumps, options = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def text(value: Any) -> str:
        return dumps(value, default=_orjson_default, option=options).decode()

    last: list[Any] = [None, None]

    def when(value: datetime) -> str:
        if value is not last[0]:
            last[0], last[1] = value, to_db_time(value).strftime(SQLITE_DATETIME_FORMAT)  # type: ignore[union-attr]
        return str(last[1])

    return text, when


def _score(value: Any) -> float | None:
    return value if value is None or (type(value) is float and math.isfinite(value)) else _finite(value)


def sqlite_rows(rows: PredictionRows) -> list[tuple[Any, ...]]:
    """`PredictionRows` as predictions tuples in PREDICTION_FIELDS order, encoded as `sqlite_row` does."""
    text, when = _encoders()
    return [
        (
            rid,
            when(created),
            version,
            text(row),
            text(out),
            _score(out.get("score")),
            None if (p := out.get("prediction")) is None else text(p),
            latency,
            role,
        )
        for rid, created, version, role, row, out, latency in zip(
            rows.request_ids,
            rows.created_at,
            rows.model_versions,
            rows.roles,
            rows.inputs,
            rows.outputs,
            rows.latency_ms,
            strict=True,
        )
    ]


def sqlite_shadow_rows(rows: ShadowRows) -> list[tuple[Any, ...]]:
    """`ShadowRows` as shadow_predictions tuples in SHADOW_FIELDS order."""
    text, when = _encoders()
    return [
        (
            rid,
            role,
            when(created),
            version,
            text(out),
            _score(out.get("score")),
            None if (p := out.get("prediction")) is None else text(p),
            latency,
        )
        for rid, role, created, version, out, latency in zip(
            rows.request_ids,
            rows.roles,
            rows.created_at,
            rows.model_versions,
            rows.outputs,
            rows.latency_ms,
            strict=True,
        )
    ]
