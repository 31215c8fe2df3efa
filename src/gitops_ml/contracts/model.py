"""The data contract as frozen dataclasses: the ODCS v3.1 subset this project reads.

`load_contract(path)` reads one YAML file and checks it against the subset (header keys, one schema
object, its properties with logicalType / required / unique / primaryKey / logicalTypeOptions, and
library quality rules). Anything outside the subset that would change the meaning of a rule is an
error naming the file and the key path, so a typo never silently disables a check. Keys we do not use
(tags, servers, team, ...) are ignored: they are valid ODCS and `datacontract lint` checks their shape.

The full ODCS JSON schema is checked by `datacontract lint` (a dev tool, see tests/contracts); the
`open-data-contract-standard` pydantic models are not imported here because that package ships only
with datacontract-cli, which is a dev dependency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from gitops_ml.errors import ContractError
from gitops_ml.parsing import load_yaml

SUPPORTED_API_VERSIONS = ("v3.1.0", "v3.0.2", "v3.0.1", "v3.0.0")
LOGICAL_TYPES = ("string", "date", "timestamp", "time", "number", "integer", "boolean")
# object/array exist in ODCS but a flat table column cannot hold them; reject rather than ignore.
UNSUPPORTED_LOGICAL_TYPES = ("object", "array")
METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
SEVERITIES = ("error", "warning", "info")

LogicalType = Literal["string", "date", "timestamp", "time", "number", "integer", "boolean"]
Severity = Literal["error", "warning", "info"]
AdditionalColumns = Literal["forbid", "allow"]

# logicalTypeOptions keys by logical type (from the ODCS v3.1 JSON schema).
_TYPE_OPTIONS: dict[str, set[str]] = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "date": {"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "timestamp": {
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "timezone",
        "defaultTimezone",
    },
    "time": {"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "integer": {"multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format"},
    "number": {"multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format"},
    "boolean": set(),
}


@dataclass(frozen=True)
class QualityRule:
    """One ODCS library quality rule: a metric compared with one operator."""

    metric: str
    operator: str
    threshold: float | tuple[float, float]
    unit: Literal["rows", "percent"] = "rows"
    arguments: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    severity: Severity = "error"
    name: str | None = None
    description: str | None = None
    column: str | None = None  # None = schema-level rule

    @property
    def valid_values(self) -> tuple[Any, ...] | None:
        values = self.arguments.get("validValues")
        return tuple(values) if values is not None else None

    @property
    def pattern(self) -> str | None:
        return self.arguments.get("pattern")

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(self.arguments.get("properties") or ())

    def holds(self, value: float) -> bool:
        """Whether a measured metric value satisfies the operator."""
        t = self.threshold
        match self.operator:
            case "mustBe":
                return math.isclose(value, t)  # type: ignore[arg-type]
            case "mustNotBe":
                return not math.isclose(value, t)  # type: ignore[arg-type]
            case "mustBeGreaterThan":
                return value > t  # type: ignore[operator]
            case "mustBeGreaterOrEqualTo":
                return value >= t  # type: ignore[operator]
            case "mustBeLessThan":
                return value < t  # type: ignore[operator]
            case "mustBeLessOrEqualTo":
                return value <= t  # type: ignore[operator]
            case "mustBeBetween":
                lo, hi = t  # type: ignore[misc]
                return lo <= value <= hi
            case "mustNotBeBetween":
                lo, hi = t  # type: ignore[misc]
                return not lo <= value <= hi
        raise AssertionError(self.operator)  # operators are checked at load time

    def describe_threshold(self) -> str:
        suffix = "%" if self.unit == "percent" else " rows"
        t = self.threshold
        if isinstance(t, tuple):
            return f"{self.operator} [{_num(t[0])}, {_num(t[1])}]{suffix}"
        return f"{self.operator} {_num(t)}{suffix}"


@dataclass(frozen=True)
class Column:
    name: str
    logical_type: LogicalType
    physical_type: str | None = None
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    minimum: float | date | None = None
    maximum: float | date | None = None
    exclusive_minimum: float | date | None = None
    exclusive_maximum: float | date | None = None
    pattern: str | None = None
    format: str | None = None  # date/timestamp format (JDK DateTimeFormatter style, e.g. yyyy-MM-dd)
    description: str | None = None
    quality: tuple[QualityRule, ...] = ()

    @property
    def nullable(self) -> bool:
        return not (self.required or self.primary_key)

    @property
    def must_be_unique(self) -> bool:
        return self.unique or self.primary_key

    @property
    def valid_values(self) -> tuple[Any, ...] | None:
        """Allowed values from the column's `invalidValues` rules (intersection if several)."""
        allowed: tuple[Any, ...] | None = None
        for rule in self.quality:
            if rule.metric == "invalidValues" and rule.valid_values is not None:
                vals = rule.valid_values
                allowed = vals if allowed is None else tuple(v for v in allowed if v in vals)
        return allowed


@dataclass(frozen=True)
class Contract:
    path: str
    id: str
    name: str
    version: str
    status: str
    api_version: str
    table: str
    columns: tuple[Column, ...]
    quality: tuple[QualityRule, ...] = ()  # schema-level rules (rowCount, multi-column duplicateValues)
    additional_columns: AdditionalColumns = "forbid"
    description: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


def load_contract(path: str | Path) -> Contract:
    """Read and check one ODCS contract file. Raises ContractError naming the file and key path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{p}: cannot read data contract: {exc}") from exc
    return parse_contract_text(text, source=str(p))


def parse_contract_text(text: str, *, source: str) -> Contract:
    """Parse contract YAML text; `source` names it in errors (a path, or `REF:path`)."""
    return parse_contract(load_yaml(text, source, ContractError), source=source)


def parse_contract(data: Any, *, source: str) -> Contract:
    return _Parser(source).contract(data)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str) -> ContractError:
        return ContractError(f"{self.source}: {where}: {msg}" if where else f"{self.source}: {msg}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def string(self, obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}" if where else key, "is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(f"{where}.{key}" if where else key, f"expected a string, got {value!r}")
        return str(value)

    def boolean(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = obj.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, got {value!r}")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {value!r}")
        return value

    def contract(self, data: Any) -> Contract:
        if data is None:
            raise self.fail("", "data contract is empty")
        top = self.mapping(data, "(top level)")
        api = self.string(top, "apiVersion", "")
        if api not in SUPPORTED_API_VERSIONS:
            raise self.fail("apiVersion", f"{api!r} is not a supported ODCS version {SUPPORTED_API_VERSIONS}")
        kind = self.string(top, "kind", "")
        if kind != "DataContract":
            raise self.fail("kind", f"expected 'DataContract', got {kind!r}")
        cid = self.string(top, "id", "")
        version = self.string(top, "version", "")
        status = self.string(top, "status", "")
        name = self.string(top, "name", "", required=False) or cid
        description = top.get("description") or {}
        if not isinstance(description, dict):
            raise self.fail("description", "expected a mapping (purpose, usage, limitations)")

        schema = top.get("schema")
        if not isinstance(schema, list) or not schema:
            raise self.fail("schema", "is required: a list with one schema object (the table)")
        if len(schema) != 1:
            raise self.fail("schema", f"expected exactly one schema object (one table), got {len(schema)}")
        obj = self.mapping(schema[0], "schema[0]")
        table = self.string(obj, "name", "schema[0]")
        where = f"schema[{table}]"
        props = obj.get("properties")
        if not isinstance(props, list) or not props:
            raise self.fail(f"{where}.properties", "is required: a non-empty list of columns")
        columns = tuple(self.column(p, f"{where}.properties[{i}]") for i, p in enumerate(props))
        seen: set[str] = set()
        for c in columns:
            if c.name in seen:
                raise self.fail(f"{where}.properties", f"column {c.name!r} is declared twice")
            seen.add(c.name)
        quality = self.quality(obj.get("quality"), f"{where}.quality", column=None)
        for rule in quality:
            unknown = [p for p in rule.properties if p not in seen]
            if unknown:
                raise self.fail(f"{where}.quality", f"{rule.metric} names unknown properties {unknown}")
        return Contract(
            path=self.source,
            id=cid or "",
            name=name or "",
            version=version or "",
            status=status or "",
            api_version=api or "",
            table=table or "",
            columns=columns,
            quality=quality,
            additional_columns=self.additional_columns(
                obj.get("customProperties"), f"{where}.customProperties"
            ),
            description=description,
        )

    def additional_columns(self, value: Any, where: str) -> AdditionalColumns:
        if value is None:
            return "forbid"
        if not isinstance(value, list):
            raise self.fail(where, "expected a list of {property, value}")
        policy: AdditionalColumns = "forbid"
        for i, item in enumerate(value):
            item = self.mapping(item, f"{where}[{i}]")
            if item.get("property") == "additionalColumns":
                if item.get("value") not in ("forbid", "allow"):
                    raise self.fail(
                        f"{where}[{i}].value", f"expected forbid or allow, got {item.get('value')!r}"
                    )
                policy = item["value"]
        return policy

    def column(self, raw: Any, where: str) -> Column:
        prop = self.mapping(raw, where)
        name = self.string(prop, "name", where)
        where = f"{where.rsplit('[', 1)[0]}[{name}]"
        ltype = self.string(prop, "logicalType", where)
        if ltype in UNSUPPORTED_LOGICAL_TYPES:
            raise self.fail(
                f"{where}.logicalType", f"{ltype!r} is valid ODCS but not supported for table columns"
            )
        if ltype not in LOGICAL_TYPES:
            raise self.fail(
                f"{where}.logicalType", f"unknown logicalType {ltype!r}; expected one of {LOGICAL_TYPES}"
            )
        options = prop.get("logicalTypeOptions") or {}
        options = self.mapping(options, f"{where}.logicalTypeOptions")
        unknown = sorted(set(options) - _TYPE_OPTIONS[ltype])
        if unknown:
            raise self.fail(
                f"{where}.logicalTypeOptions",
                f"{unknown} not allowed for logicalType {ltype!r} (allowed: {sorted(_TYPE_OPTIONS[ltype])}); "
                "write allowed values as a quality rule invalidValues with arguments.validValues",
            )
        bounds = {
            k: self.bound(options.get(k), ltype, f"{where}.logicalTypeOptions.{k}")
            for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        }
        lo, hi = bounds["minimum"], bounds["maximum"]
        if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
            raise self.fail(f"{where}.logicalTypeOptions", f"minimum {lo} is greater than maximum {hi}")
        pattern = options.get("pattern") if ltype == "string" else None
        if pattern is not None:
            self.regex(pattern, f"{where}.logicalTypeOptions.pattern")
        fmt = options.get("format") if ltype in ("date", "timestamp", "time") else None
        if fmt is not None:
            java_to_strftime(fmt, where=f"{where}.logicalTypeOptions.format", fail=self.fail)
        return Column(
            name=name or "",
            logical_type=ltype,  # type: ignore[arg-type]
            physical_type=self.string(prop, "physicalType", where, required=False),
            required=self.boolean(prop, "required", where),
            unique=self.boolean(prop, "unique", where),
            primary_key=self.boolean(prop, "primaryKey", where),
            minimum=lo,
            maximum=hi,
            exclusive_minimum=bounds["exclusiveMinimum"],
            exclusive_maximum=bounds["exclusiveMaximum"],
            pattern=pattern,
            format=fmt,
            description=self.string(prop, "description", where, required=False),
            quality=self.quality(prop.get("quality"), f"{where}.quality", column=name, ltype=ltype),
        )

    def bound(self, value: Any, ltype: str, where: str) -> float | date | None:
        if value is None:
            return None
        if ltype in ("integer", "number"):
            return self.number(value, where)
        if ltype == "date":
            if isinstance(value, date):  # YAML parses an unquoted 2026-01-01 as a date
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError as exc:
                raise self.fail(where, f"expected an ISO date (YYYY-MM-DD), got {value!r}") from exc
        raise self.fail(where, f"bounds on logicalType {ltype!r} are not supported")

    def regex(self, pattern: Any, where: str) -> None:
        if not isinstance(pattern, str):
            raise self.fail(where, f"expected a regular expression string, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise self.fail(where, f"invalid regular expression {pattern!r}: {exc}") from exc

    def quality(
        self, raw: Any, where: str, *, column: str | None, ltype: str | None = None
    ) -> tuple[QualityRule, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(where, "expected a list of quality rules")
        rules = []
        for i, item in enumerate(raw):
            rule = self.rule(self.mapping(item, f"{where}[{i}]"), f"{where}[{i}]", column=column, ltype=ltype)
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(
        self, item: dict[str, Any], where: str, *, column: str | None, ltype: str | None
    ) -> QualityRule | None:
        rtype = item.get("type", "library")
        if rtype == "text":
            return None  # human-readable only
        if rtype in ("sql", "custom"):
            raise self.fail(f"{where}.type", f"quality type {rtype!r} is not supported (use library metrics)")
        if rtype != "library":
            raise self.fail(f"{where}.type", f"unknown quality type {rtype!r}")
        metric = item.get("metric") or item.get("rule")
        if metric not in METRICS:
            raise self.fail(f"{where}.metric", f"unknown metric {metric!r}; expected one of {METRICS}")
        if column is None and metric in ("nullValues", "missingValues", "invalidValues"):
            raise self.fail(f"{where}.metric", f"{metric} is a property-level metric (put it under a column)")
        if column is not None and metric == "rowCount":
            raise self.fail(
                f"{where}.metric", "rowCount is a schema-level metric (put it on the schema object)"
            )
        ops = [k for k in OPERATORS if k in item]
        if len(ops) != 1:
            raise self.fail(
                where, f"a library rule needs exactly one operator of {OPERATORS}, got {ops or 'none'}"
            )
        op = ops[0]
        if op in ("mustBeBetween", "mustNotBeBetween"):
            pair = item[op]
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(f"{where}.{op}", f"expected [low, high], got {pair!r}")
            threshold: float | tuple[float, float] = (
                self.number(pair[0], f"{where}.{op}[0]"),
                self.number(pair[1], f"{where}.{op}[1]"),
            )
        else:
            threshold = self.number(item[op], f"{where}.{op}")
        unit = item.get("unit", "rows")
        if unit not in ("rows", "percent"):
            raise self.fail(f"{where}.unit", f"expected rows or percent, got {unit!r}")
        severity = item.get("severity", "error")
        if severity not in SEVERITIES:
            raise self.fail(f"{where}.severity", f"expected one of {SEVERITIES}, got {severity!r}")
        args = item.get("arguments") or {}
        args = self.mapping(args, f"{where}.arguments")
        if metric == "invalidValues":
            if "validValues" not in args and "pattern" not in args:
                raise self.fail(f"{where}.arguments", "invalidValues needs validValues or pattern")
            if "validValues" in args and (
                not isinstance(args["validValues"], list) or not args["validValues"]
            ):
                raise self.fail(f"{where}.arguments.validValues", "expected a non-empty list")
            if "pattern" in args:
                self.regex(args["pattern"], f"{where}.arguments.pattern")
        if metric == "missingValues" and not isinstance(args.get("missingValues"), list):
            raise self.fail(
                f"{where}.arguments.missingValues", "expected a list of values counted as missing"
            )
        if metric == "duplicateValues" and column is None:
            props = args.get("properties")
            if not isinstance(props, list) or not props or not all(isinstance(p, str) for p in props):
                raise self.fail(
                    f"{where}.arguments.properties", "schema-level duplicateValues needs a list of columns"
                )
        return QualityRule(
            metric=metric,
            operator=op,
            threshold=threshold,
            unit=unit,
            arguments=dict(args),
            severity=severity,
            name=item.get("name") or item.get("id"),
            description=item.get("description"),
            column=column,
        )


_JAVA_TOKENS = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]


def java_to_strftime(fmt: str, *, where: str = "format", fail: Any = None) -> str:
    """Translate the JDK-style date format ODCS uses (yyyy-MM-dd HH:mm:ss) to strftime."""
    out, i = [], 0
    while i < len(fmt):
        for token, repl in _JAVA_TOKENS:
            if fmt.startswith(token, i):
                out.append(repl)
                i += len(token)
                break
        else:
            ch = fmt[i]
            if ch.isalpha():
                msg = f"unsupported date format letter {ch!r} in {fmt!r} (supported: yyyy MM dd HH mm ss)"
                raise fail(where, msg) if fail else ContractError(msg)
            out.append("%%" if ch == "%" else ch)
            i += 1
    return "".join(out)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
