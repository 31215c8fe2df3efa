"""GitHub's size limit for a PR body or comment, and the one way a report is cut to fit it."""

from __future__ import annotations

GITHUB_COMMENT_LIMIT = 65_536  # characters GitHub accepts in a PR body or comment


def truncate_markdown(text: str, limit: int, note: str) -> str:
    """`text` itself when it fits `limit`; else its start (the verdict comes first) ending in `note`."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(note))] + note
