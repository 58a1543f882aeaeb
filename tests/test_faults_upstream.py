"""Upstream faults the fake OpenAI cannot play: garbage, wrong content types, a slow accept.

Each ends in a clear OpenAI-shaped error or a stream that ends, never a 500 or a hung worker; and
afterwards the worker holds no more sockets or threads than before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from bench.support.procstat import settles, usage, worker_pid
from bench.support.server import Server, start_server, stop_server
from tests.support.raw_upstream import RawUpstream, http

KEY = "sk-faults-0123456789"


@pytest.fixture(scope="module")
def proxy(raw_upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": raw_upstream.url, "OPENAI_TIMEOUT": "1"}
    server = start_server(tmp_path_factory.mktemp("faults-upstream"), env)
    yield server
    stop_server(server)


HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
REPLIES = {
    "html-502": (http("502 Bad Gateway", "text/html", HTML), 502),
    "html-400": (http("400 Bad Request", "text/html", HTML), 400),
    "json-not-openai-400": (http("400 Bad Request", "application/json", b'{"detail": "nope"}'), 400),
    "json-list-400": (http("400 Bad Request", "application/json", b"[1, 2]"), 400),
    "html-200": (http("200 OK", "text/html; charset=utf-8", HTML), 502),
    "json-200": (http("200 OK", "application/json", b'{"error": {"message": "quota"}}'), 502),
    "not-http": (b"\x00\x01garbage that is not HTTP at all\r\n\r\n", 502),
    "truncated-headers": (b"HTTP/1.1 200 OK\r\nContent-Type: aud", 502),
    "empty-200": (http("200 OK", "audio/mpeg", b""), 502),
    "closed-at-once": (b"", 502),
}


@pytest.mark.parametrize("name", list(REPLIES))
def test_broken_upstream_answers_are_clear_errors(proxy: Server, raw_upstream: RawUpstream, name: str) -> None:
    raw_upstream.reply, status = REPLIES[name]
    response = requests.post(
        f"{proxy.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello."}, timeout=30
    )
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "<html>" not in error["message"]
    assert KEY not in response.text


def test_garbage_audio_is_relayed_not_fatal(proxy: Server, raw_upstream: RawUpstream) -> None:
    """Bytes labelled audio are the upstream's business: relayed as they are, and the server goes on."""
    noise = os.urandom(50_000)
    raw_upstream.reply = http("200 OK", "audio/mpeg", noise)
    response = requests.post(
        f"{proxy.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello."}, timeout=30
    )
    assert response.status_code == 200
    assert response.content == noise


def test_upstream_that_never_accepts_times_out(proxy: Server, raw_upstream: RawUpstream) -> None:
    """The kernel completes the handshake into the backlog, so this is a read timeout, not a refusal."""
    raw_upstream.accept = False
    time.sleep(0.3)  # let an accept() already under way time out
    try:
        start = time.monotonic()
        response = requests.post(
            f"{proxy.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi."}, timeout=30
        )
        took = time.monotonic() - start
    finally:
        raw_upstream.accept = True
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "upstream_error"
    assert took < 10  # OPENAI_TIMEOUT is 1 s


def test_faults_leave_nothing_behind(proxy: Server, raw_upstream: RawUpstream) -> None:
    pid = worker_pid(proxy.process.pid)
    raw_upstream.reply = http("200 OK", "audio/mpeg", b"\xff\xfb" * 1000)
    assert requests.post(f"{proxy.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "A."}).ok
    baseline = usage(pid)
    for name in list(REPLIES) * 3:
        raw_upstream.reply = REPLIES[name][0]
        requests.post(f"{proxy.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "B."})
    assert settles(lambda: usage(pid).fds <= baseline.fds + 1), (usage(pid), baseline)  # +1: one pooled connection
    assert usage(pid).threads <= baseline.threads + 2, (usage(pid), baseline)
    assert "Traceback" not in proxy.log_text()
