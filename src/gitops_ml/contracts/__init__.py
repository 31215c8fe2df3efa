"""Data contracts (ODCS v3.1 subset): load, validate frames, build request models, diff versions.

Names are re-exported lazily so `import gitops_ml.contracts` does not pull in pandas or pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Column": "model",
    "Contract": "model",
    "QualityRule": "model",
    "load_contract": "model",
    "parse_contract_text": "model",
    "RuleResult": "validate",
    "ValidationReport": "validate",
    "validate_frame": "validate",
    "coerce_frame": "validate",
    "ensure_valid": "validate",
    "invalid_row_mask": "validate",
    "request_model": "requests",
    "ContractChange": "diff",
    "ContractDiff": "diff",
    "diff_contracts": "diff",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
