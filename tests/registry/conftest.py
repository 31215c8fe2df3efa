"""The registry of a project in tmp_path, shared by the promotion and challenger tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml.config import MODEL_STORE_URL_ENV, RegistryConfig


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RegistryConfig:
    """deploy/production.yaml and history.yaml under tmp_path, the model store in tmp_path/store."""
    # a store outside the repository comes from the machine, never from config
    monkeypatch.setenv(MODEL_STORE_URL_ENV, str(tmp_path / "store"))
    return RegistryConfig(
        pointer=tmp_path / "deploy" / "production.yaml",
        history=tmp_path / "deploy" / "history.yaml",
        lock_timeout_s=2,
    )
