"""Reading YAML and saying what failed validation, the same way for every file the project reads.

A message names the file, then the key path (`estimator.search.param_grid.loss[1]`, list items with
their `name` when they have one: `batches[2] (churn-2026-03).format`), then pydantic's rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

TOP_LEVEL = "(top level)"
_INPUT_CHARS = 60


def load_yaml(text: str | bytes, source: str | Path, error: type[Exception]) -> Any:
    """The YAML document in `text` (None when empty); `error` naming `source` when it is not UTF-8 or YAML."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 text: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """`load_yaml` of a file; `error` naming the file when it cannot be read."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    return load_yaml(text, path, error)


def key_path(loc: Sequence[int | str], data: Any = None) -> str:
    """`a.b[2].c` for a pydantic error location; with the validated `data`, list items show their name."""
    path = ""
    node = data
    for item in loc:
        if item == "[key]":  # a refused dict key is reported at the key itself
            continue
        if isinstance(item, int):
            path += f"[{item}]"
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str):
                path += f" ({name})"
        else:
            path += f".{item}" if path else str(item)
            node = node.get(item) if isinstance(node, dict) else None
    return path or TOP_LEVEL


def error_lines(
    exc: ValidationError, data: Any = None, *, limit: int | None = None, with_input: bool = False
) -> list[str]:
    """`key.path: rule` for each error (the first `limit`); `with_input` adds the offending value."""
    lines = []
    for error in exc.errors(include_url=False)[:limit]:
        line = f"{key_path(error['loc'], data)}: {error['msg']}"
        if with_input and error["type"] not in {"missing", "extra_forbidden"}:
            shown = repr(error["input"])
            line += f" (got {shown if len(shown) <= _INPUT_CHARS else shown[:_INPUT_CHARS] + '…'})"
        lines.append(line)
    return lines
