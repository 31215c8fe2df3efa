"""Exceptions that carry a user-facing message and an exit code.

Exit codes are part of the CLI contract used by the GitHub workflows:
0 = ok, 1 = gates failed (a verdict, not a crash), 2 = bad input (config, data, contract).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATES_FAILED = 1
EXIT_BAD_INPUT = 2


class GitopsMLError(Exception):
    """Base class: message is shown to the user as is; exit_code goes to the shell."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(GitopsMLError):
    """A config file is missing, not YAML, or does not match the schema."""


class DataError(GitopsMLError):
    """A batch cannot be acquired: missing file, bad bytes, sha256 mismatch, unreachable source."""


class ContractError(GitopsMLError):
    """The data contract itself is unreadable or not valid ODCS (the subset we support)."""


class ValidationFailed(GitopsMLError):
    """Data was read but broke hard contract rules. `result` holds the structured findings."""

    def __init__(self, message: str, result: object | None = None):
        super().__init__(message)
        self.result = result


class ArtifactError(GitopsMLError):
    """A model artifact failed its sha256 check or needs types outside the allow-list."""


class GatesFailed(GitopsMLError):
    """The candidate did not pass the promotion gates."""

    exit_code = EXIT_GATES_FAILED
