"""A pydantic request model built from the data contract, for the serving app.

The same contract that validates training batches validates prediction requests: types, bounds,
pattern, allowed values (as Literal) and nullability come from the contract, so a contract change
reaches serving without anyone editing a schema by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from gitops_ml.contracts.model import Column, Contract
from gitops_ml.errors import ContractError

REQUEST_ID_FIELD = "request_id"
REQUEST_ID_MAX_LENGTH = 128

_BASE_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "date": date,
    "timestamp": datetime,
    "time": time,
}


class ContractRequest(BaseModel):
    """Base of generated request models: unknown fields are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def request_model(
    contract: Contract, feature_columns: Sequence[str], optional_columns: Sequence[str] = ()
) -> type[BaseModel]:
    """Build the request model for one row of `feature_columns`, plus an optional `request_id`.

    `optional_columns` (e.g. the id and dates) may be sent and are validated by the same rules,
    but may be omitted: the model does not need them, the retraining export does.

    Required columns are required and not nullable; nullable columns may be null or omitted.
    Allowed values become `Literal[...]`; minimum/maximum become ge/le (gt/lt when exclusive);
    a pattern becomes a string constraint.
    """
    fields = request_fields(contract, feature_columns, optional_columns)
    model_name = "".join(part.capitalize() for part in contract.name.replace("-", "_").split("_")) + "Request"
    return create_model(
        model_name,
        __base__=ContractRequest,
        __doc__=f"One row for prediction, from contract {contract.name} {contract.version}.",
        **fields,  # type: ignore[call-overload]  # (annotation, FieldInfo) pairs, built at run time
    )


def request_fields(
    contract: Contract, feature_columns: Sequence[str], optional_columns: Sequence[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """The request's fields, in order: name -> (annotation, pydantic FieldInfo). The one source of
    `request_model` and of the column-wise batch check (`batch_validation`)."""
    unknown = [c for c in feature_columns if c not in contract.column_names]
    if unknown:
        raise ContractError(f"{contract.path}: feature columns not in the contract: {unknown}")
    if REQUEST_ID_FIELD in feature_columns:
        raise ContractError(f"{contract.path}: a feature column may not be called {REQUEST_ID_FIELD!r}")
    fields: dict[str, tuple[Any, Any]] = {
        REQUEST_ID_FIELD: (
            str | None,
            Field(None, max_length=REQUEST_ID_MAX_LENGTH, description="client id echoed back"),
        ),
    }
    for name in feature_columns:
        fields[name] = _field(contract.column(name))
    for name in optional_columns:
        if name not in fields:
            annotation, _ = _field(contract.column(name))
            fields[name] = (annotation | None, Field(None, description=contract.column(name).description))
    return fields


def _field(col: Column) -> tuple[Any, Any]:
    annotation = _annotation(col)
    if col.nullable:
        return annotation | None, Field(None, description=col.description)
    return annotation, Field(..., description=col.description)


def column_bounds(col: Column) -> dict[str, Any]:
    """The column's bounds as pydantic's constraint names: ge, le, gt, lt (those it sets)."""
    pairs = (
        ("ge", col.minimum),
        ("le", col.maximum),
        ("gt", col.exclusive_minimum),
        ("lt", col.exclusive_maximum),
    )
    return {key: value for key, value in pairs if value is not None}


def _annotation(col: Column) -> Any:
    allowed = col.valid_values
    if allowed:
        if col.logical_type == "number":
            # JSON has one number type: accept 1 as well as 1.0 for an allowed value of 1.0
            allowed = tuple(dict.fromkeys([*allowed, *(int(v) for v in allowed if float(v).is_integer())]))
        return Literal[allowed]
    base = _BASE_TYPES[col.logical_type]
    if col.logical_type == "string":
        if col.pattern is None:
            return str
        return Annotated[str, StringConstraints(pattern=col.pattern)]
    bounds: dict[str, Any] = column_bounds(col)
    if col.logical_type == "number":
        bounds["allow_inf_nan"] = False
    if not bounds:
        return base
    return Annotated[base, Field(**bounds)]
