"""Records held by column: one list per field instead of one dict per record.

A validated batch of prediction requests travels as this from the request body to the model and
to the prediction log: the model's preprocessing reads whole columns, pickling a frame for the log
worker costs a list per field instead of a dict per record, and a record's dict is built only
where one is asked for (by index or iteration), which for the log happens in the worker process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload


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
        names = self.names
        return (dict(zip(names, row, strict=True)) for row in zip(*self.columns, strict=True))
