"""The token goes only to the repository's own API host: GITHUB_API_URL checked against the remote."""

from __future__ import annotations

import pytest

from gitops_ml.forge.github_api import ForgeError, api_url_for


@pytest.mark.parametrize(
    ("remote", "env", "expected"),
    [
        ("https://github.com/acme/churn.git", "", "https://api.github.com"),
        ("git@github.com:acme/churn.git", "", "https://api.github.com"),
        ("https://github.com/acme/churn", "https://api.github.com", "https://api.github.com"),
        ("https://ghe.example.com/acme/churn.git", "", "https://ghe.example.com/api/v3"),
        (
            "https://ghe.example.com/acme/churn.git",
            "https://ghe.example.com/api/v3/",
            "https://ghe.example.com/api/v3",
        ),
        (None, "", "https://api.github.com"),
        ("/srv/git/churn.git", "http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080/api/v3"),
    ],
)
def test_the_api_of_the_remotes_host(remote, env, expected) -> None:
    assert api_url_for(remote, env) == expected


@pytest.mark.parametrize(
    ("remote", "env", "needle"),
    [
        (
            "https://github.com/acme/churn.git",
            "https://attacker.example/api/v3",
            "not the API of the repository's host",
        ),
        ("https://ghe.example.com/acme/churn.git", "https://api.github.com", "expected ghe.example.com"),
        ("https://github.com/acme/churn.git", "http://api.github.com", "only sent over https"),
        (None, "http://attacker.example/api", "only sent over https"),
    ],
)
def test_any_other_host_is_refused(remote, env, needle) -> None:
    with pytest.raises(ForgeError, match=needle):
        api_url_for(remote, env)


def test_the_environment_is_read_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://attacker.example")
    with pytest.raises(ForgeError):
        api_url_for("https://github.com/acme/churn")
