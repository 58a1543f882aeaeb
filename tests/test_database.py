"""DATABASE_URL: parsed without a dependency, and used by the server when set."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from bench.support.server import Server
from ttsproject.database import SQLITE_OPTIONS, parse


def test_postgres_url() -> None:
    assert parse("postgres://speech:p%40ss@db.internal:6432/speech_prod?sslmode=require") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "speech_prod",
        "USER": "speech",
        "PASSWORD": "p@ss",
        "HOST": "db.internal",
        "PORT": "6432",
        "OPTIONS": {"sslmode": "require"},
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def test_sqlite_url_and_unknown_scheme() -> None:
    assert parse("sqlite:////var/lib/speech/db.sqlite3") == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "/var/lib/speech/db.sqlite3",
        "OPTIONS": SQLITE_OPTIONS,
    }
    with pytest.raises(ValueError, match="mysql"):
        parse("mysql://localhost/speech")


def test_the_server_uses_database_url(make_server: Callable[..., Server], tmp_path: Path) -> None:
    database = tmp_path / "from-url.sqlite3"
    server = make_server(DATABASE_URL=f"sqlite:///{database}")
    body = {"model": "piper", "voice": "alloy", "input": "Where is this written down?"}
    assert requests.post(f"{server.url}/v1/audio/speech", json=body, timeout=60).ok
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(database) as db:
            count = db.execute("SELECT count(*) FROM speech_usage").fetchone()[0]
        if count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert count == 1


def test_a_reader_does_not_hold_up_the_sites_writes(make_server: Callable[..., Server], tmp_path: Path) -> None:
    """Issue 31's flood: the site's SQLite wrote a session and a usage record per request from many threads
    at once, and in its default journal any open read held every commit up: writes waited out the busy
    timeout and failed "database is locked" (hundreds of usage records lost, 500s on the page). In WAL a
    reader holds nobody up."""
    server = make_server()
    reader = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM django_session").fetchall()  # a read transaction, left open
        page = requests.get(f"{server.url}/", timeout=60)  # a new visitor: its session is written
        assert page.status_code == 200, server.log_text()[-2000:]
    finally:
        reader.close()
    assert "database is locked" not in server.log_text()
