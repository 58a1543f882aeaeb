"""Request bodies under gunicorn's worker (speech.workers): chunked ones are read, and none may take
longer than the request deadline, however large, however slow.

An attacker's script: a body announced larger than the worker reads first (by Content-Length, or
chunked with 4 MiB sent at once), then the rest a byte at a time, for far longer than the deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from bench.support.server import Server, start_server, stop_server
from tests.support.raw_http import HEAD, SHORT_WAV, connect, send_chunked

DEADLINE = 10  # time enough for 4 MiB to arrive on a loaded machine
DRIBBLE_SECONDS = 60
THREADS = 4


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"GUNICORN_THREADS": str(THREADS), "GUNICORN_REQUEST_TIMEOUT": str(DEADLINE)}
    server = start_server(tmp_path_factory.mktemp("bodies"), env)
    yield server
    stop_server(server)


def test_a_chunked_body_is_read(site: Server) -> None:
    with connect(site) as sock:
        send_chunked(sock, SHORT_WAV)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert b"Content-Type: audio/wav" in reply


class Attacker(threading.Thread):
    """Sends an oversized body, reads the answer, then dribbles the rest until the server hangs up."""

    def __init__(self, site: Server, chunked: bool) -> None:
        super().__init__(daemon=True)
        self.site, self.chunked = site, chunked
        self.reply = b""
        self.closed_after: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        with connect(self.site) as sock:
            try:
                if self.chunked:
                    first = b"a" * (4 * 1024 * 1024 + 65536)  # gunicorn reads up to 1 KiB past what is asked
                    sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(first), first))
                else:
                    sock.sendall(HEAD + b"Content-Length: 8000000\r\n\r\n" + b"a" * 100)
                sock.settimeout(1.0)
                while time.monotonic() - started < DRIBBLE_SECONDS:
                    try:
                        data = sock.recv(65536)
                        if not data:
                            break
                        self.reply += data
                    except TimeoutError:
                        pass
                    sock.sendall(b"1\r\nb\r\n" if self.chunked else b"b")
            except OSError:  # reset by the server
                pass
        self.closed_after = time.monotonic() - started


def test_oversized_bodies_get_413_and_cannot_hold_the_threads(site: Server) -> None:
    attackers = [Attacker(site, chunked=n % 2 == 0) for n in range(THREADS + 2)]
    for attacker in attackers:
        attacker.start()
    deadline = time.monotonic() + 60
    while not all(b"\r\n\r\n" in attacker.reply for attacker in attackers) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Every thread has had an attacker on it; the deadline frees them while the attackers keep sending.
    answered = requests.get(f"{site.url}/v1/models", timeout=DRIBBLE_SECONDS - 15)
    assert answered.status_code == 200
    for attacker in attackers:
        attacker.join(timeout=DRIBBLE_SECONDS + 10)
        head, _, body = attacker.reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), (attacker.chunked, attacker.closed_after, attacker.reply[:300])
        assert json.loads(body)["error"]["code"] == "request_too_large"
        assert attacker.closed_after is not None
        assert attacker.closed_after < DRIBBLE_SECONDS - 15, "the server kept reading a body past its deadline"
