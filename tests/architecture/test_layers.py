"""The four layers of docs/architecture.md, checked on every import (lazy ones inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "gitops_ml"

FOUNDATION = {
    "config",
    "errors",
    "io_utils",
    "clock",
    "jsonable",
    "runinfo",
    "processes",
    "parsing",
    "record_columns",
}
PURE = {"contracts", "training", "evaluation", "monitoring", "reporting", "quality", "config_reference"}
ADAPTERS = {"data", "registry", "store", "prediction_store", "forge", "ci_artifacts"}
USE_CASES = {"jobs"}
ENTRY_POINTS = {"cli", "serving", "demo", "__main__"}
LAYER_OF = {
    **dict.fromkeys(FOUNDATION, 0),
    **dict.fromkeys(PURE, 1),
    **dict.fromkeys(ADAPTERS, 2),
    **dict.fromkeys(USE_CASES, 3),
    **dict.fromkeys(ENTRY_POINTS, 4),
}
# Libraries that talk to the outside world: none of them below the adapters.
OUTSIDE = {"prefect", "github", "httpx", "sqlalchemy", "fsspec", "fastapi", "uvicorn", "psycopg"}


def _top(module: Path) -> str:
    rel = module.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if _top(p) != "__init__")


def test_every_package_has_a_layer():
    assert {_top(p) for p in MODULES} <= set(LAYER_OF), "a new package: give it a layer here and in the doc"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_never_run_up_a_layer(path: Path):
    here = _top(path)
    layer = LAYER_OF[here]
    wrong = []
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] == "flows" and layer < 4:
            wrong.append(f"line {line}: {name} (flows/ is an entry point)")
        elif parts[0] == "gitops_ml" and len(parts) > 1 and parts[1] in LAYER_OF:
            target = parts[1]
            if target != here and LAYER_OF[target] > layer:
                wrong.append(f"line {line}: {name} (layer {LAYER_OF[target]} from layer {layer})")
        elif parts[0] in OUTSIDE and layer < 2:
            wrong.append(f"line {line}: {name} (outside-world library in a pure module)")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(wrong)


def test_use_cases_do_not_reach_for_prefect():
    """jobs/ run the same with or without an orchestrator: flows/ pass in what Prefect knows."""
    offenders = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in (SRC / "jobs").glob("*.py")
        for line, name in _imports(p)
        if name.split(".")[0] in {"prefect", "flows"}
    ]
    assert not offenders
