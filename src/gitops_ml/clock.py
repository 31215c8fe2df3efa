"""The one clock: aware UTC time, and its ISO text as the pointer and history files record it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_now_text() -> str:
    """ISO 8601 to the second with the UTC offset, e.g. 2026-12-01T19:40:05+00:00."""
    return utc_now().isoformat(timespec="seconds")
