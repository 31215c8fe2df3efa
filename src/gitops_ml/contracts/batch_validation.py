"""A batch of prediction records checked column by column, compiled once from the contract.

The request model (`requests.request_model`) validates a record into a pydantic instance: for a
1000-record batch that is 1000 instances, and more time than the model takes to score them. Here
each field's values are checked at once, mostly by C-level builtins over the column (`set(map(type,
...))`, `min`, `max`, a set of the allowed values), and the batch comes out as columns
(`RecordColumns`), the shape the model's preprocessing reads.

A column passes only where pydantic would accept its values unchanged, or changed the way it
changes them (an integer in a number field becomes a float). A column the quick checks do not
settle (a date, a pattern, a number in a string field, a boolean, a bound crossed) is validated
by pydantic itself, through a `TypeAdapter` of the field's own annotation over the whole column:
its values are then pydantic's. If that fails too, or a record is not an object, lacks a required
field or has an unknown one, `validate` returns None and the caller validates the batch with the
request model, so an error is worded exactly as it always was. The request model and this check
are built from the same `request_fields`.
"""

from __future__ import annotations

import math
from collections.abc import KeysView, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from gitops_ml.contracts.model import Column, Contract
from gitops_ml.contracts.requests import (
    REQUEST_ID_FIELD,
    REQUEST_ID_MAX_LENGTH,
    column_bounds,
    request_fields,
)
from gitops_ml.record_columns import RecordColumns

_NONE = type(None)
_NUMBER_TYPES = frozenset({float, int})
Kind = Literal["number", "integer", "string", "request_id", "pydantic"]


@dataclass(frozen=True)
class _ColumnCheck:
    name: str
    kind: Kind
    required: bool  # the key must be present in every record
    nullable: bool
    bounds: tuple[tuple[str, Any], ...]  # ("ge" | "gt" | "le" | "lt", bound)
    allowed: frozenset[str] | None  # a string field's allowed values
    adapter: TypeAdapter[list[Any]]  # the field's own annotation, over a column
    json_mode: bool  # values pydantic turns into objects (dates): dumped back to their JSON form

    def values(self, column: list[Any]) -> list[Any] | None:
        """The column as validated (pydantic's values), or None when a value is invalid."""
        quick = self._quick(column)
        if quick is not None:
            return quick
        try:
            validated = self.adapter.validate_python(column)
        except ValidationError:
            return None
        return self.adapter.dump_python(validated, mode="json") if self.json_mode else validated

    def _quick(self, column: list[Any]) -> list[Any] | None:
        types = set(map(type, column))
        has_none = _NONE in types
        if has_none:
            if not self.nullable:
                return None
            if len(types) == 1:  # only nulls (or the field omitted): valid in any nullable field
                return column
            types.discard(_NONE)
        if self.kind == "pydantic":
            return None
        present = [v for v in column if v is not None] if has_none else column
        if self.kind == "number":
            if not types <= _NUMBER_TYPES:
                return None
            if float in types and not math.isfinite(sum(present)):  # NaN, inf (or a sum that overflows)
                return None
            if int in types:  # pydantic's float field gives float(v) for an integer
                column = [float(v) if type(v) is int else v for v in column]
                present = [v for v in column if v is not None] if has_none else column
            return column if self._within(present) else None
        if self.kind == "integer":
            return column if types <= {int} and self._within(present) else None
        if not types <= {str}:
            return None
        if self.kind == "request_id":
            return column if not present or max(map(len, present)) <= REQUEST_ID_MAX_LENGTH else None
        if self.allowed is not None and not set(present) <= self.allowed:
            return None
        return column

    def _within(self, present: list[Any]) -> bool:
        if not self.bounds or not present:
            return True
        low, high = min(present), max(present)
        for op, bound in self.bounds:
            if (
                (op == "ge" and not low >= bound)
                or (op == "gt" and not low > bound)
                or (op == "le" and not high <= bound)
                or (op == "lt" and not high < bound)
            ):
                return False
        return True


@dataclass(frozen=True)
class ValidatedBatch:
    request_ids: list[str | None]  # as given (None: not given)
    records: RecordColumns  # every field but request_id, in the request model's order


class BatchValidator:
    """`validate(records)`: the batch as columns, or None (the request model must say what is wrong)."""

    def __init__(self, checks: Sequence[_ColumnCheck]):
        self.checks = tuple(checks)
        self.known = frozenset(c.name for c in self.checks)
        self.required = frozenset(c.name for c in self.checks if c.required)
        self.feature_names = tuple(c.name for c in self.checks if c.name != REQUEST_ID_FIELD)

    def validate(
        self, records: Sequence[Any], ignored: frozenset[str] = frozenset()
    ) -> ValidatedBatch | None:
        """`ignored`: fields accepted and dropped (features the served model does not use)."""
        if not records or set(map(type, records)) != {dict}:
            return None
        given = self._given(records, ignored)
        if given is None:
            return None
        n = len(records)
        out: dict[str, list[Any]] = {}
        for check in self.checks:
            name = check.name
            column = given.get(name) if name not in ignored else None
            values = check.values([None] * n if column is None else column)  # None: as pydantic fills it
            if values is None:
                return None
            out[name] = values
        ids = out.pop(REQUEST_ID_FIELD)
        return ValidatedBatch(
            ids, RecordColumns(self.feature_names, tuple(out[n] for n in self.feature_names))
        )

    def _given(
        self, records: Sequence[dict[str, Any]], ignored: frozenset[str]
    ) -> dict[str, list[Any]] | None:
        """The values of every field the records give, or None if one gives a field it may not, or
        lacks a required one."""
        names = tuple(records[0])
        if not self._allowed(records[0].keys(), ignored):
            return None
        if sum(map(len, records)) == len(names) * len(records):
            # as many keys in all as n times the first record's: if every record has the first's
            # keys, each has exactly them (the common case: one C-level pass per batch, no loop)
            try:
                if len(names) == 1:
                    return {names[0]: [r[names[0]] for r in records]}
                return dict(
                    zip(names, map(list, zip(*map(itemgetter(*names), records), strict=True)), strict=True)
                )
            except KeyError:
                pass
        if not all(self._allowed(r.keys(), ignored) for r in records):
            return None
        present = {name for r in records for name in r}
        return {name: [r.get(name) for r in records] for name in present}

    def _allowed(self, keys: KeysView[str], ignored: frozenset[str]) -> bool:
        return self.required <= keys and (keys <= self.known or keys - ignored <= self.known)


def batch_validator(
    contract: Contract, feature_columns: Sequence[str], optional_columns: Sequence[str] = ()
) -> BatchValidator:
    """The column-wise check of the request model `requests.request_model` builds from the same arguments."""
    checks = []
    for name, (annotation, field) in request_fields(contract, feature_columns, optional_columns).items():
        # the field's own constraints too (request_id's max_length is on its Field)
        adapter: TypeAdapter[list[Any]] = TypeAdapter(list[Annotated[annotation, field]])  # type: ignore[valid-type]
        required = isinstance(field, FieldInfo) and field.is_required()
        if name == REQUEST_ID_FIELD:
            checks.append(_ColumnCheck(name, "request_id", False, True, (), None, adapter, False))
            continue
        col = contract.column(name)
        nullable = not required
        kind, allowed = _kind(col, annotation)
        bounds = tuple(column_bounds(col).items())
        json_mode = col.logical_type in ("date", "timestamp", "time")
        checks.append(_ColumnCheck(name, kind, required, nullable, bounds, allowed, adapter, json_mode))
    return BatchValidator(checks)


def _kind(col: Column, annotation: Any) -> tuple[Kind, frozenset[str] | None]:
    allowed = col.valid_values
    if col.logical_type == "string" and col.pattern is None:
        if allowed is None:
            return "string", None
        if all(type(v) is str for v in allowed) and _literal_values(annotation) == set(allowed):
            return "string", frozenset(allowed)
        return "pydantic", None
    if allowed is None and col.logical_type == "number":
        return "number", None
    if allowed is None and col.logical_type == "integer":
        return "integer", None
    return "pydantic", None


def _literal_values(annotation: Any) -> set[Any]:
    """The values of a Literal, also inside `Literal[...] | None`."""
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    found: set[Any] = set()
    for arg in get_args(annotation):
        found |= _literal_values(arg)
    return found
