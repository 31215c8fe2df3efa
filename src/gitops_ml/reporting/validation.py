"""The validation summary (`reports/validation/summary.json`) and its console table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.io_utils import atomic_write_json


@dataclass(frozen=True)
class ValidationOutcome:
    acquired: Any  # gitops_ml.data.acquire.AcquiredData
    contract: Any  # gitops_ml.contracts.validate.ValidationReport
    integrity: Any | None  # gitops_ml.quality.deepchecks_suites.SuiteSummary

    @property
    def passed(self) -> bool:
        """Hard rules only: deepchecks integrity findings are soft unless marked blocking."""
        blocking = self.integrity.blocking_failures if self.integrity is not None else []
        return bool(self.contract.passed) and not blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "passed" if self.passed else "failed",
            "rows": len(self.acquired.frame),
            "manifest_hash": self.acquired.manifest_hash,
            "batches": [b.to_dict() for b in self.acquired.batches],
            "contract": self.contract.to_dict(),
            "data_integrity": self.integrity.to_dict() if self.integrity is not None else None,
        }


def write_validation_outputs(outcome: ValidationOutcome, out_dir: Path) -> Path:
    path = Path(out_dir) / "summary.json"
    atomic_write_json(path, outcome.to_dict())
    return path


def write_validation_error(out_dir: Path, error: BaseException) -> Path:
    """Bad input stops the flow before any result exists; the summary still says what broke."""
    path = Path(out_dir) / "summary.json"
    atomic_write_json(path, {"status": "error", "error_type": type(error).__name__, "error": str(error)})
    return path


def failures_text(outcome: ValidationOutcome) -> str:
    """Plain-text table of failed hard rules and blocking checks, for the terminal and CI logs."""
    lines = []
    if not outcome.contract.passed:
        lines.append(outcome.contract.summary_table())
    if outcome.integrity is not None and outcome.integrity.blocking_failures:
        lines.append(
            "blocking deepchecks failures: " + ", ".join(map(str, outcome.integrity.blocking_failures))
        )
    return "\n".join(lines)
