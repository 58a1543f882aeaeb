"""``DATABASE_URL`` -> a ``DATABASES["default"]`` dict, for the few schemes the site supports."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse(url: str) -> dict[str, Any]:
    """``postgres://user:pass@host:5432/name?sslmode=require`` or ``sqlite:////absolute/path.db``."""
    parts = urlsplit(url)
    if parts.scheme not in ENGINES:
        raise ValueError(f"DATABASE_URL scheme '{parts.scheme}' is not supported; use one of {', '.join(ENGINES)}.")
    if parts.scheme == "sqlite":
        return {"ENGINE": ENGINES["sqlite"], "NAME": unquote(parts.path[1:]) or ":memory:"}
    return {
        "ENGINE": ENGINES[parts.scheme],
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
