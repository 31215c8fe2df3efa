from __future__ import annotations

import logging
import sys
import types

import pytest

from gitops_ml.forge.tokens import resolve_token


def _fake_prefect(monkeypatch: pytest.MonkeyPatch, load) -> None:
    """Stand-in for prefect.blocks.system so the test neither imports nor starts Prefect."""
    system = types.ModuleType("prefect.blocks.system")
    system.Secret = types.SimpleNamespace(load=load)  # type: ignore[attr-defined]
    blocks = types.ModuleType("prefect.blocks")
    blocks.system = system  # type: ignore[attr-defined]
    prefect = types.ModuleType("prefect")
    prefect.blocks = blocks  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "prefect", prefect)
    monkeypatch.setitem(sys.modules, "prefect.blocks", blocks)
    monkeypatch.setitem(sys.modules, "prefect.blocks.system", system)


def test_env_order_github_token_then_gh_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_token(None) is None
    monkeypatch.setenv("GH_TOKEN", "from-gh")
    assert resolve_token(None) == "from-gh"
    monkeypatch.setenv("GITHUB_TOKEN", "from-github")
    assert resolve_token("some-block") == "from-github"
    monkeypatch.setenv("GITHUB_TOKEN", "  ")  # blank counts as unset
    assert resolve_token(None) == "from-gh"


def test_secret_block_used_when_env_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = []

    def load(name: str):
        loaded.append(name)
        return types.SimpleNamespace(get=lambda: "from-block")

    _fake_prefect(monkeypatch, load)
    assert resolve_token("github-token") == "from-block"
    assert loaded == ["github-token"]


def test_failing_secret_block_gives_none_and_a_warning_without_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def load(name: str):
        raise ValueError("server said: token=SUPERSECRET is not valid")

    _fake_prefect(monkeypatch, load)
    with caplog.at_level(logging.WARNING):
        assert resolve_token("github-token") is None
    assert "github-token" in caplog.text and "ValueError" in caplog.text
    assert "SUPERSECRET" not in caplog.text


def test_secret_block_holding_no_string(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_prefect(monkeypatch, lambda name: types.SimpleNamespace(get=lambda: {"a": 1}))
    assert resolve_token("blk") is None
    assert "no usable string" in caplog.text
