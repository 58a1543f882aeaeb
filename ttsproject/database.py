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

# Every stream (and every refusal) writes a usage record, from many threads at once: in WAL a commit
# is cheap and readers never hold it up, and IMMEDIATE takes the write lock up front, so a writer waits
# its turn instead of failing "database is locked" (a flood made hundreds, and 500s on the page).
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
}


def sqlite(path: str) -> dict[str, Any]:
    return {"ENGINE": ENGINES["sqlite"], "NAME": path, "OPTIONS": dict(SQLITE_OPTIONS)}


def parse(url: str) -> dict[str, Any]:
    """``postgres://user:pass@host:5432/name?sslmode=require`` or ``sqlite:////absolute/path.db``."""
    parts = urlsplit(url)
    if parts.scheme not in ENGINES:
        raise ValueError(f"DATABASE_URL scheme '{parts.scheme}' is not supported; use one of {', '.join(ENGINES)}.")
    if parts.scheme == "sqlite":
        return sqlite(unquote(parts.path[1:]) or ":memory:")
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
