"""Values to and from the prediction store: timestamps (naive UTC stored, tz-aware UTC returned),
JSON values (numpy, NaN -> null), labels coerced to one type per task, and the row encoding of the
SQLite fast insert."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import methodcaller
from typing import Any, Self, overload

import numpy as np
import orjson
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


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _orjson_default(value: Any) -> Any:
    converted = to_jsonable(value)
    if converted is value:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    return converted


def _json_bytes(value: Any) -> bytes:
    """The JSON of a stored value, as UTF-8: orjson (5-10x faster than json.dumps, and it encodes
    numpy values, datetimes and NaN -> null natively; the rest through `to_jsonable`). JSON encoding
    is most of the cost of logging a prediction."""
    return orjson.dumps(value, default=_orjson_default, option=_ORJSON_OPTIONS)


def json_dumps(value: Any) -> str:
    """The JSON text of a stored value (every JSON column, both backends)."""
    return _json_bytes(value).decode()


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

    def text(value: Any) -> str:
        return _json_bytes(value).decode()

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


# -- the log worker's frames: JSON encoded once per column on the server ------------------------


def encode_rows(rows: PredictionRows) -> EncodedRows | PredictionRows:
    """A request's rows as the log worker's feeder sends them. Inputs or outputs that are a list of
    dicts go as one JSON array each (one orjson call per column, in C: pickling the same dicts costs
    the server's GIL more, and the worker would rebuild every dict only to encode it). Held by
    column (a batch's `RecordColumns`, a model's `ModelAnswers`) they stay so: a list per field
    pickles cheaper than any JSON of them, and the worker encodes them. `rows` itself when a value
    does not encode, so the worker takes the per-row path, which stores or drops each row on its own."""
    inputs: bytes | Sequence[Mapping[str, Any]] = rows.inputs
    outputs: bytes | Sequence[Mapping[str, Any]] = rows.outputs
    scores = predictions = None
    try:
        if type(inputs) is list:
            inputs = _json_array(inputs)
        if type(outputs) is list:
            scores, predictions = list(map(_GET_SCORE, outputs)), list(map(_GET_PREDICTION, outputs))
            outputs = _json_array(outputs)
    except TypeError:
        return rows
    return EncodedRows(
        rows.request_ids,
        rows.created_at,
        rows.model_versions,
        rows.roles,
        rows.latency_ms,
        inputs,
        outputs,
        scores,
        predictions,
    )


def _json_array(values: Sequence[Any]) -> bytes:
    """`_json_bytes(values)`, a third faster when every key is a str (measured on the served rows):
    orjson then needs no OPT_NON_STR_KEYS, which only changes how other keys are written."""
    try:
        return orjson.dumps(values, default=_orjson_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return _json_bytes(values)


_GET_SCORE, _GET_PREDICTION = methodcaller("get", "score"), methodcaller("get", "prediction")


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """`PredictionRows` in a log worker frame (`encode_rows`): `inputs` and `outputs` each a JSON
    array of the rows' objects, or the columns they were held by; with JSON outputs, their scores
    and predictions (the values themselves: JSON does not give a numpy float32 back exactly)."""

    request_ids: list[str]
    created_at: list[datetime]
    model_versions: list[str]
    roles: list[str]
    latency_ms: list[float | None]
    inputs: bytes | Sequence[Mapping[str, Any]]
    outputs: bytes | Sequence[Mapping[str, Any]]
    scores: list[Any] | None
    predictions: list[Any] | None

    def __len__(self) -> int:
        return len(self.request_ids)

    def decode(self) -> JsonRows | PredictionRows:
        """The rows with each one's JSON text, as `sqlite_row` would have encoded it (in the worker:
        one orjson call per column for what came by column); as `PredictionRows` again if a value
        held by column does not encode, to be stored or dropped row by row."""
        n = len(self.request_ids)
        inputs, outputs = self.inputs, self.outputs
        try:
            inputs_json = inputs if isinstance(inputs, bytes) else _json_array(list(inputs))
            outputs_json = outputs if isinstance(outputs, bytes) else _json_array(list(outputs))
        except TypeError:
            return self._rows()
        scores, predictions = self.scores, self.predictions
        if isinstance(outputs, ModelAnswers):
            scores, predictions = outputs.scores, outputs.predictions
        elif not isinstance(outputs, bytes):
            scores, predictions = list(map(_GET_SCORE, outputs)), list(map(_GET_PREDICTION, outputs))
        assert scores is not None and predictions is not None  # with JSON outputs, they were sent
        return JsonRows(
            self.request_ids,
            self.created_at,
            self.model_versions,
            self.roles,
            _split_objects(inputs_json, n),
            _split_objects(outputs_json, n),
            _scores(scores),
            _predictions(predictions),
            self.latency_ms,
        )

    def _rows(self) -> PredictionRows:
        inputs, outputs = self.inputs, self.outputs
        if isinstance(outputs, bytes):
            # parsed back, the outputs hold the values they were encoded from, but for a score
            # JSON does not give back exactly (a numpy float32): the sender's own
            parsed = orjson.loads(outputs)
            for output, score in zip(parsed, self.scores or (), strict=True):
                if "score" in output:
                    output["score"] = score
            outputs = parsed
        return PredictionRows(
            self.request_ids,
            self.created_at,
            self.model_versions,
            self.roles,
            orjson.loads(inputs) if isinstance(inputs, bytes) else inputs,
            outputs,
            self.latency_ms,
        )


def _split_objects(array: bytes, n: int) -> list[str]:
    """The text of each element of a JSON array of `n` objects, exactly as it stands in `array`.

    Between two objects orjson writes `},{`; when the text holds exactly n - 1 of them, none is
    inside a value, so splitting there is exact and runs in C. orjson writes no raw newline (it
    escapes them in strings), so a newline marks the cuts. Otherwise (a value holds `},{`, or a
    list of objects) each element is located by the standard library's scanner."""
    text = array.decode()
    if n and text.count("},{") == n - 1 and "\n" not in text and text[:2] == "[{" and text[-2:] == "}]":
        return text[1:-1].replace("},{", "}\n{").split("\n")
    return _element_texts(text)


def _element_texts(text: str) -> list[str]:
    decoder, pieces, index = json.JSONDecoder(), [], 1
    while text[index] != "]":
        _, end = decoder.raw_decode(text, index)
        pieces.append(text[index:end])
        index = end + 1 if text[end] == "," else end
    return pieces


def _scores(scores: list[Any]) -> list[float | None]:
    """Scores as stored (finite floats or None): the common case, all finite floats, checked in C."""
    if set(map(type, scores)) == {float} and math.isfinite(sum(scores)):
        return scores
    return [_score(s) for s in scores]


def _predictions(predictions: list[Any]) -> list[str | None]:
    """Each prediction's JSON text (None stays NULL): one orjson call when no text holds a comma."""
    n = len(predictions)
    if None not in predictions:
        text = _json_bytes(predictions).decode()
        if text.count(",") == n - 1:
            texts: list[str | None] = list(text[1:-1].split(",")) if n else []
            return texts
    return [None if p is None else json_dumps(p) for p in predictions]


@dataclass(frozen=True, slots=True)
class JsonRows(_ByColumn):
    """Prediction rows whose JSON columns are already text (`EncodedRows.decode`), in the log worker:
    `sqlite_rows` zips them into tuples without a dict or an encoder call per row. As records (for
    PostgreSQL and the row-by-row fallback) the texts are parsed back."""

    request_ids: list[str]
    created_at: list[datetime]
    model_versions: list[str]
    roles: list[str]
    inputs: list[str]
    outputs: list[str]
    scores: list[float | None]
    predictions: list[str | None]
    latency_ms: list[float | None]

    def __len__(self) -> int:
        return len(self.request_ids)

    def _record(self, index: int) -> dict[str, Any]:
        prediction = self.predictions[index]
        return {
            "request_id": self.request_ids[index],
            "created_at": self.created_at[index],
            "model_version": self.model_versions[index],
            "role": self.roles[index],
            "inputs": orjson.loads(self.inputs[index]),
            "output": orjson.loads(self.outputs[index]),
            "score": self.scores[index],
            "prediction": None if prediction is None else orjson.loads(prediction),
            "latency_ms": self.latency_ms[index],
        }

    def sqlite_rows(self) -> Iterator[tuple[Any, ...]]:
        """predictions tuples in PREDICTION_FIELDS order, as `sqlite_rows` encodes `PredictionRows`:
        an iterator (zip, in C), so each tuple is freed once bound and a frame's thousand tuples
        never stand together to start the cyclic garbage collector (measured: a fifth of the worker)."""
        return zip(
            self.request_ids,
            _db_times(self.created_at),
            self.model_versions,
            self.inputs,
            self.outputs,
            self.scores,
            self.predictions,
            self.latency_ms,
            self.roles,
            strict=True,
        )


def _db_times(values: list[datetime]) -> list[str]:
    """The SQLite text of each time: one strftime when every row has the request's one time."""
    if values and values.count(values[0]) == len(values):  # identity first: C speed for one object
        return [to_db_time(values[0]).strftime(SQLITE_DATETIME_FORMAT)] * len(values)  # type: ignore[union-attr]
    _, when = _encoders()
    return [when(v) for v in values]
