"""Who may write labels: labels become retraining data, so their writers can be restricted.

Local mode (the default): `GITOPS_ML_LABELS_TOKEN` is unset and anyone who can reach `/feedback`
or run `labels import` may write labels, as on a laptop. When the variable is set (in the server's
environment, or the shell that runs `labels import`), every label write must present the same
token: `Authorization: Bearer <token>` on `/feedback`, `--token` on `labels import`. Compared in
constant time.
"""

from __future__ import annotations

import hmac
import os

from gitops_ml.errors import GitopsMLError

LABELS_TOKEN_ENV = "GITOPS_ML_LABELS_TOKEN"


class LabelsRefused(GitopsMLError):
    """A label write without the configured token."""


def configured_labels_token() -> str | None:
    """The token label writers must present, or None in local mode (variable unset or empty)."""
    return os.environ.get(LABELS_TOKEN_ENV) or None


def check_labels_token(expected: str | None, given: str | None, *, how: str) -> None:
    """Raise LabelsRefused unless no token is configured or `given` matches it."""
    if expected is None:
        return
    if not given or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        state = "no token was given" if not given else "the token given does not match"
        raise LabelsRefused(f"label writes need the token in {LABELS_TOKEN_ENV} ({how}); {state}")
