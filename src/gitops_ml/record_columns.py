"""Records held by column: one list per field instead of one dict per record.

A validated batch of prediction requests travels as this from the request body to the model and
to the prediction log: the model's preprocessing reads whole columns, pickling a frame for the log
worker costs a list per field instead of a dict per record, and a record's dict is built only
where one is asked for (by index or iteration), which for the log happens in the worker process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, overload

# records as the serving path hands them on: a list of dicts, or a batch's RecordColumns
Records = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class RecordColumns(Sequence[dict[str, Any]]):
    """`len(columns[k]) == len(self)` for every k; record i is `{names[k]: columns[k][i]}`."""

    names: tuple[str, ...]
    columns: tuple[list[Any], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.columns):
            raise ValueError(f"{len(self.names)} names for {len(self.columns)} columns")
        if len({len(c) for c in self.columns}) > 1:
            raise ValueError("columns of different lengths")

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> list[Any]:
        """The values of one field (a KeyError for a name this batch does not hold)."""
        try:
            return self.columns[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> RecordColumns: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return RecordColumns(self.names, tuple(c[index] for c in self.columns))
        return {name: column[index] for name, column in zip(self.names, self.columns, strict=True)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # all in C: lengths were checked once, at construction (the log worker reads every row)
        return map(dict, map(zip, repeat(self.names), zip(*self.columns, strict=False)))


@dataclass(frozen=True, slots=True)
class ModelAnswers(Sequence[dict[str, Any]]):
    """A model's answers by column; answer i is `{"prediction", "score", "probabilities"}`.

    `probabilities` is None for regression (the value is the prediction and the score), else one
    row per answer over `class_keys` (the classes as JSON keys)."""

    predictions: list[Any]
    scores: list[float | None]
    class_keys: tuple[str, ...] | None = None
    probabilities: list[list[float]] | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> ModelAnswers: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            rows = None if self.probabilities is None else self.probabilities[index]
            return ModelAnswers(self.predictions[index], self.scores[index], self.class_keys, rows)
        return {
            "prediction": self.predictions[index],
            "score": self.scores[index],
            "probabilities": self._probabilities(index),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.with_ids(None))

    def with_ids(self, request_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """Every answer as a dict, `request_id` first when ids are given (a batch's response rows)."""
        keys = self.class_keys
        rows = self.probabilities
        probabilities: list[Any] = [None] * len(self) if rows is None or keys is None else _dicts(keys, rows)
        if request_ids is None:
            return [
                {"prediction": p, "score": s, "probabilities": q}
                for p, s, q in zip(self.predictions, self.scores, probabilities, strict=True)
            ]
        return [
            {"request_id": rid, "prediction": p, "score": s, "probabilities": q}
            for rid, p, s, q in zip(request_ids, self.predictions, self.scores, probabilities, strict=True)
        ]

    def _probabilities(self, index: int) -> dict[str, float] | None:
        if self.probabilities is None or self.class_keys is None:
            return None
        return _dicts(self.class_keys, [self.probabilities[index]])[0]


def _dicts(keys: tuple[str, ...], rows: list[list[float]]) -> list[dict[str, float]]:
    """`dict(zip(keys, row))` for every row; a dict display for two or three classes, four times
    faster than the dict constructor over a zip (measured), and this runs once per answer."""
    if len(keys) == 2:
        k0, k1 = keys
        return [{k0: a, k1: b} for a, b in rows]
    if len(keys) == 3:
        k0, k1, k2 = keys
        return [{k0: a, k1: b, k2: c} for a, b, c in rows]
    return [dict(zip(keys, row, strict=True)) for row in rows]
