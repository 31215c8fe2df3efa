"""Markdown/JSON reports built from structured results (pure: no Prefect, no GitHub)."""
