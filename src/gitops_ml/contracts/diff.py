"""Compare two versions of a data contract: which changes break producers or consumers.

Breaking = data valid under the old contract may be rejected by the new one, or a consumer loses
something it relied on: removed column, added required column, changed type, narrowed range,
removed allowed value, new pattern, became required/unique, stricter quality threshold, extra columns
forbidden. Everything that only accepts more data, or only touches metadata, is non-breaking.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gitops_ml.contracts.model import Column, Contract, QualityRule

Kind = Literal["breaking", "non-breaking"]
BREAKING: Kind = "breaking"
NON_BREAKING: Kind = "non-breaking"


@dataclass(frozen=True)
class ContractChange:
    kind: Kind
    column: str | None  # None = contract or table level
    field: str  # what changed: column, logicalType, minimum, validValues, required, version, ...
    message: str  # one human sentence

    @property
    def breaking(self) -> bool:
        return self.kind == BREAKING


@dataclass(frozen=True)
class ContractDiff:
    old_version: str
    new_version: str
    changes: list[ContractChange] = field(default_factory=list)

    @property
    def breaking(self) -> list[ContractChange]:
        return [c for c in self.changes if c.breaking]

    @property
    def has_breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "breaking": len(self.breaking),
            "non_breaking": len(self.changes) - len(self.breaking),
            "changes": [asdict(c) for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        head = f"contract {self.old_version} -> {self.new_version}: {self._counts()}"
        lines = [head]
        for c in self._ordered():
            lines.append(f"  [{c.kind}] {c.column or '(contract)'}: {c.message}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        head = f"**Contract diff** {self.old_version} → {self.new_version}: {self._counts()}"
        if not self.changes:
            return head
        out = [head, "", "| | column | change |", "|---|---|---|"]
        for c in self._ordered():
            mark = "❌ breaking" if c.breaking else "✅ non-breaking"
            col = f"`{c.column}`" if c.column else "(contract)"
            out.append(f"| {mark} | {col} | {c.message.replace('|', chr(92) + '|')} |")
        return "\n".join(out)

    def _counts(self) -> str:
        if not self.changes:
            return "no changes"
        nb = len(self.breaking)
        return f"{nb} breaking, {len(self.changes) - nb} non-breaking change(s)"

    def _ordered(self) -> list[ContractChange]:
        return sorted(self.changes, key=lambda c: not c.breaking)  # stable: keeps column order


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    changes: list[ContractChange] = []
    add = changes.append

    for key, label in (("version", "version"), ("status", "status"), ("name", "name")):
        a, b = getattr(old, key), getattr(new, key)
        if a != b:
            add(ContractChange(NON_BREAKING, None, key, f"{label} changed from {a!r} to {b!r}"))
    if old.description != new.description:
        add(ContractChange(NON_BREAKING, None, "description", "description changed"))
    if old.additional_columns != new.additional_columns:
        kind = BREAKING if new.additional_columns == "forbid" else NON_BREAKING
        msg = f"unexpected extra columns are now {'forbidden' if kind == BREAKING else 'allowed'}"
        add(ContractChange(kind, None, "additionalColumns", msg))

    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    for name in old_cols:
        if name not in new_cols:
            add(ContractChange(BREAKING, name, "column", f"column {name!r} was removed"))
    for name, col in new_cols.items():
        if name in old_cols:
            changes.extend(_column_changes(old_cols[name], col))
        elif col.nullable:
            add(
                ContractChange(
                    NON_BREAKING, name, "column", f"nullable column {name!r} ({col.logical_type}) was added"
                )
            )
        else:
            add(
                ContractChange(
                    BREAKING, name, "column", f"required column {name!r} ({col.logical_type}) was added"
                )
            )
    if list(old_cols) != list(new_cols) and set(old_cols) == set(new_cols):
        add(ContractChange(NON_BREAKING, None, "columnOrder", "column order changed"))

    changes.extend(_quality_changes(old.quality, new.quality, column=None))
    return ContractDiff(old_version=old.version, new_version=new.version, changes=changes)


def _column_changes(a: Column, b: Column) -> list[ContractChange]:
    out: list[ContractChange] = []
    n = a.name

    def add(kind: Kind, fld: str, msg: str) -> None:
        out.append(ContractChange(kind, n, fld, msg))

    if a.logical_type != b.logical_type:
        add(BREAKING, "logicalType", f"type changed from {a.logical_type} to {b.logical_type}")
    if a.physical_type != b.physical_type:
        # the logical type is the contract with consumers; the physical type is storage detail
        add(
            NON_BREAKING, "physicalType", f"physical type changed from {a.physical_type} to {b.physical_type}"
        )
    if a.format != b.format:
        add(BREAKING, "format", f"date format changed from {a.format!r} to {b.format!r}")
    if a.nullable != b.nullable:
        if not b.nullable:
            add(BREAKING, "required", "became required (nulls are now rejected)")
        else:
            add(NON_BREAKING, "required", "became nullable")
    if a.must_be_unique != b.must_be_unique:
        if b.must_be_unique:
            add(BREAKING, "unique", "became unique (duplicates are now rejected)")
        else:
            add(NON_BREAKING, "unique", "no longer has to be unique")
    elif a.primary_key != b.primary_key:
        add(
            NON_BREAKING,
            "primaryKey",
            "became the primary key" if b.primary_key else "is no longer the primary key",
        )

    out.extend(_bound_changes(a, b))

    if a.pattern != b.pattern:
        if b.pattern is None:
            add(NON_BREAKING, "pattern", f"pattern {a.pattern!r} was removed")
        elif a.pattern is None:
            add(BREAKING, "pattern", f"pattern {b.pattern!r} was added")
        else:
            add(BREAKING, "pattern", f"pattern changed from {a.pattern!r} to {b.pattern!r}")

    va, vb = a.valid_values, b.valid_values
    if va != vb:
        if vb is None:
            add(NON_BREAKING, "validValues", f"allowed values {list(va or ())} no longer restricted")
        elif va is None:
            add(BREAKING, "validValues", f"values now restricted to {list(vb)}")
        else:
            removed = [v for v in va if v not in vb]
            added = [v for v in vb if v not in va]
            if removed:
                add(BREAKING, "validValues", f"allowed values removed: {removed}")
            if added:
                add(NON_BREAKING, "validValues", f"allowed values added: {added}")
    if a.description != b.description:
        add(NON_BREAKING, "description", "description changed")
    out.extend(_quality_changes(a.quality, b.quality, column=n))
    return out


def _bound_changes(a: Column, b: Column) -> list[ContractChange]:
    out: list[ContractChange] = []
    for fld, lower in (
        ("minimum", True),
        ("exclusiveMinimum", True),
        ("maximum", False),
        ("exclusiveMaximum", False),
    ):
        attr = {
            "minimum": "minimum",
            "maximum": "maximum",
            "exclusiveMinimum": "exclusive_minimum",
            "exclusiveMaximum": "exclusive_maximum",
        }[fld]
        x, y = getattr(a, attr), getattr(b, attr)
        if x == y:
            continue
        if y is None:
            kind, msg = NON_BREAKING, f"{fld} {x} was removed (range widened)"
        elif x is None:
            kind, msg = BREAKING, f"{fld} {y} was added (range narrowed)"
        else:
            try:
                narrowed = y > x if lower else y < x
            except TypeError:  # e.g. a date bound replaced by a number after a type change
                narrowed = True
            kind = BREAKING if narrowed else NON_BREAKING
            msg = f"{fld} changed from {x} to {y} (range {'narrowed' if narrowed else 'widened'})"
        out.append(ContractChange(kind, a.name, fld, msg))
    return out


def _rule_key(r: QualityRule) -> tuple[Any, ...]:
    # allowed values and patterns are compared as column properties; here only the threshold matters
    kind = "validValues" if r.valid_values is not None else "pattern" if r.pattern is not None else ""
    return (r.metric, kind, r.properties)


def _quality_changes(
    old: tuple[QualityRule, ...], new: tuple[QualityRule, ...], *, column: str | None
) -> list[ContractChange]:
    out: list[ContractChange] = []

    def add(kind: Kind, metric: str, msg: str) -> None:
        out.append(ContractChange(kind, column, metric, msg))

    olds = {_rule_key(r): r for r in old}
    news = {_rule_key(r): r for r in new}
    for key, r in olds.items():
        if key not in news and key[1] != "validValues":  # allowed values: reported by the column diff
            add(NON_BREAKING, r.metric, f"quality rule {_rule_name(r)} was removed")
    for key, r in news.items():
        if key not in olds:
            if key[1] != "validValues":
                add(
                    BREAKING if r.severity == "error" else NON_BREAKING,
                    r.metric,
                    f"quality rule {_rule_name(r)} was added",
                )
            continue
        a = olds[key]
        if a.pattern != r.pattern:
            add(BREAKING, r.metric, f"{r.metric} pattern changed from {a.pattern!r} to {r.pattern!r}")
        if (a.operator, a.threshold, a.unit) != (r.operator, r.threshold, r.unit):
            looser = _looser_or_equal(a, r)
            # a warning never blocks, so tightening one breaks nobody
            kind = NON_BREAKING if looser or r.severity != "error" else BREAKING
            verdict = "relaxed" if looser else "tightened"
            add(
                kind,
                r.metric,
                f"{r.metric} threshold {verdict}: {a.describe_threshold()} -> {r.describe_threshold()}",
            )
        if a.severity != r.severity:
            kind = BREAKING if r.severity == "error" else NON_BREAKING
            add(kind, r.metric, f"{r.metric} severity changed from {a.severity} to {r.severity}")
    return out


def _rule_name(r: QualityRule) -> str:
    base = r.metric if not r.properties else f"{r.metric}({', '.join(r.properties)})"
    return f"{base} {r.describe_threshold()}"


_INF = float("inf")


def _interval(r: QualityRule) -> tuple[float, bool, float, bool] | None:
    """Accepted metric values as (low, low_open, high, high_open); None when not an interval."""
    t = r.threshold
    match r.operator:
        case "mustBe":
            return (t, False, t, False)  # type: ignore[return-value]
        case "mustBeGreaterThan":
            return (t, True, _INF, False)  # type: ignore[return-value]
        case "mustBeGreaterOrEqualTo":
            return (t, False, _INF, False)  # type: ignore[return-value]
        case "mustBeLessThan":
            return (-_INF, False, t, True)  # type: ignore[return-value]
        case "mustBeLessOrEqualTo":
            return (-_INF, False, t, False)  # type: ignore[return-value]
        case "mustBeBetween":
            return (t[0], False, t[1], False)  # type: ignore[index]
    return None


def _looser_or_equal(old: QualityRule, new: QualityRule) -> bool:
    """True when every metric value accepted by `old` is accepted by `new`."""
    if old.unit != new.unit:
        return False
    a, b = _interval(old), _interval(new)
    if a is None or b is None:
        return False
    lo_ok = b[0] < a[0] or (b[0] == a[0] and (not b[1] or a[1]))
    hi_ok = b[2] > a[2] or (b[2] == a[2] and (not b[3] or a[3]))
    return lo_ok and hi_ok
