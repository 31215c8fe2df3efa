"""Find the GitHub token: environment first, then an optional Prefect Secret block.

The token is never logged; warnings name only where we looked.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

ENV_VARS = ("GITHUB_TOKEN", "GH_TOKEN")


def resolve_token(secret_block: str | None = None) -> str | None:
    """`GITHUB_TOKEN`, then `GH_TOKEN`, then the Prefect Secret block `secret_block`; None if none.

    A block that cannot be loaded (no Prefect server, missing block, wrong type) gives None and a
    warning rather than an error: without a token the retraining step falls back to local-only.
    """
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if not secret_block:
        return None
    try:
        # imported lazily: Prefect is slow to import and not needed when the env var is set
        from prefect.blocks.system import Secret

        block: Any = Secret.load(secret_block)  # a Secret here (load is sync outside an event loop)
        value = block.get()
    except Exception as exc:  # noqa: BLE001 - any failure means "no token", reported without secrets
        logger.warning(
            "could not read the GitHub token from Prefect Secret block %r (%s); continuing without it",
            secret_block,
            type(exc).__name__,
        )
        return None
    if not isinstance(value, str) or not value.strip():
        logger.warning("Prefect Secret block %r holds no usable string token", secret_block)
        return None
    return value.strip()
