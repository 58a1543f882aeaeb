"""Usage records: written when a stream ends (however it ends), visible in the admin."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.test import Client

from bench.support.server import Server
from speech.models import Usage


def rows(server: Server, count: int) -> list[dict[str, Any]]:
    """The server's usage rows, waiting for ``count`` of them (each is written as its stream ends)."""
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(server.log.parent / "db.sqlite3") as db:
            db.row_factory = sqlite3.Row
            found = [dict(row) for row in db.execute("SELECT * FROM speech_usage ORDER BY id")]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_every_synthesis_is_recorded(make_server: Callable[..., Server]) -> None:
    # From 127.0.0.1, the proxy whose X-Request-ID is kept.
    server = make_server(SPEECH_API_KEYS="key-a", SPEECH_CACHE_AUDIO="1", SPEECH_TRUSTED_PROXIES="127.0.0.1")
    auth = {"Authorization": "Bearer key-a"}
    text = f"Count these characters, {uuid.uuid4().hex[:6]}."
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "opus"}
    first = requests.post(f"{server.url}/v1/audio/speech", json=body, headers=auth, timeout=60)
    again = requests.post(
        f"{server.url}/v1/audio/speech", json=body, headers={**auth, "X-Request-ID": "proxy-1.2"}, timeout=60
    )
    bad = requests.post(f"{server.url}/v1/audio/speech", json={**body, "voice": "nobody"}, headers=auth, timeout=60)
    long = {**body, "input": "A listener who leaves early is recorded too. " * 40}
    with requests.post(f"{server.url}/v1/audio/speech", json=long, headers=auth, stream=True, timeout=60) as cut:
        chunks = cut.iter_content(1024)
        next(chunks)
    assert (first.status_code, again.status_code, bad.status_code) == (200, 200, 400)

    # By request id, not in the order written: a replay's record is written as its stream ends, which
    # may come after its client has read every byte and sent the next request.
    found = {row["request_id"]: row for row in rows(server, 4)}
    ids = [first.headers["x-request-id"], "proxy-1.2", bad.headers["x-request-id"], cut.headers["x-request-id"]]
    made, replayed, refused, gone = (found[request_id] for request_id in ids)

    assert made["model"] == "piper"
    assert made["voice"] == "alloy"
    assert made["engine"] == "piper"
    assert made["response_format"] == "opus"
    assert made["characters"] == len(text)
    assert made["bytes"] == len(first.content)
    assert made["status"] == 200
    assert not made["cached"]
    assert made["request_id"] == first.headers["x-request-id"]
    assert replayed["request_id"] == "proxy-1.2"
    assert refused["request_id"] == bad.headers["x-request-id"]
    assert made["client"].startswith("key:")
    assert "key-a" not in made["client"]
    assert 0 < made["ttfb_ms"] <= made["duration_ms"]
    assert replayed["cached"]
    assert replayed["bytes"] == len(first.content)
    assert replayed["status"] == 200
    assert refused["status"] == 400
    assert refused["engine"] == "piper"
    assert refused["bytes"] == 0
    assert gone["status"] == 499
    assert gone["bytes"] > 0


@pytest.mark.django_db
def test_usage_in_the_admin(admin_client: Client) -> None:
    Usage.objects.create(
        client="ip:127.0.0.1", model="tts-1", voice="coral", engine="openai", response_format="mp3",
        characters=1234, bytes=5678, status=200, ttfb_ms=120.0, duration_ms=900.0,
    )  # fmt: skip
    page = admin_client.get("/admin/speech/usage/")
    assert page.status_code == 200
    assert b"coral" in page.content
    assert b"1234" in page.content
    assert admin_client.get("/admin/speech/usage/add/").status_code == 403  # records are not made by hand
