"""SQLAlchemy URLs as config and manifests write them: credentials from the environment, never shown.

A URL in a committed file names credentials as `${ENV_VAR}` (e.g.
`postgresql+psycopg://monitor:${DB_PASSWORD}@db.example.com/predictions?sslmode=require`), expanded
only when a connection is made, from the environment of the machine that runs the job. Anything a
URL can carry as a secret (the password, and every query parameter: `?password=`, `sslpassword`,
tokens of cloud drivers) is replaced by `***` wherever a URL is shown: errors, logs, reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from gitops_ml.errors import ConfigError

REDACTED = "***"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,100})\}")


def expand_env(url: str, where: str, env: Mapping[str, str] | None = None) -> str:
    """`${NAME}` -> the variable's value (URL-quoted inside a URL; as is when it is the whole URL).

    ConfigError naming `where` and the variable (never a value) when one is unset.
    """
    env = os.environ if env is None else env
    names = _VARIABLE.findall(url)
    missing = sorted({name for name in names if name not in env})
    if missing:
        raise ConfigError(
            f"{where}: environment variable(s) {', '.join(missing)} not set (the URL names "
            "them as ${...}; set them on the machine that runs the job)"
        )
    if _VARIABLE.fullmatch(url.strip()):
        return env[names[0]]
    return _VARIABLE.sub(lambda m: quote(env[m.group(1)], safe=""), url)


def redact_url(url: Any) -> str:
    """The URL (a string or a SQLAlchemy URL) with its password and every query-parameter value
    replaced by ***; never raises."""
    from sqlalchemy.engine import make_url

    if isinstance(url, str) and _VARIABLE.fullmatch(url.strip()):
        return url.strip()  # `${DATABASE_URL}`: a name, not a secret
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparseable URL may still hold a secret: show nothing of it
        return "<invalid URL>"
    if parsed.query:
        parsed = parsed.set(query=dict.fromkeys(parsed.query, REDACTED))
    # render_as_string percent-encodes the query's `***`
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", REDACTED)


def url_secrets(url: str) -> list[str]:
    """The values `redact_url` hides (password, query-parameter values), for scrubbing driver messages."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return [url]
    found: list[str] = []
    if isinstance(parsed.password, str) and parsed.password:
        found.append(parsed.password)
    for value in parsed.query.values():
        found.extend(v for v in ((value,) if isinstance(value, str) else value) if v)
    # longest first, so a secret containing another is replaced whole
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 3:  # replacing "1" or "on" everywhere would only garble the message
            text = text.replace(secret, REDACTED)
    return text
