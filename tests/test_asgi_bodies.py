"""Request bodies under uvicorn (speech.asgi_bodies): bounded in size and in time, like gunicorn's worker.

Without it Django's ASGI handler read any body to its end (spooled to disk) before refusing it, and
waited for a dribbling one for ever.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from bench.support.server import Server, start_server, stop_server
from tests.support import raw_http

DEADLINE = 4
LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("asgi-bodies"), {"ASGI_REQUEST_TIMEOUT": str(DEADLINE)}, "uvicorn")
    yield server
    stop_server(server)


def connect(site: Server) -> socket.socket:
    sock = raw_http.connect(site)
    sock.settimeout(0.5)
    return sock


def answer(sock: socket.socket, within: float, dribble: bytes = b"", send_for: float = 0.0) -> tuple[bytes, float]:
    """What the server says while the client sends ``dribble`` for ``send_for`` seconds, and how long
    that took. The client stops in time: bytes the server never reads would reset the connection."""
    started, reply = time.monotonic(), b""
    while time.monotonic() - started < within:
        try:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
        except TimeoutError:
            pass
        if time.monotonic() - started < send_for:
            sock.sendall(dribble)
    return reply, time.monotonic() - started


def error_code(reply: bytes, status: bytes) -> str:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), reply[:300]
    code: str = json.loads(body)["error"]["code"]
    return code


def test_a_chunked_body_is_read(site: Server) -> None:
    with connect(site) as sock:
        raw_http.send_chunked(sock, raw_http.SHORT_WAV, pause=0.2)
        reply, _ = answer(sock, within=30)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert b"content-type: audio/wav" in reply.lower()


def test_a_body_announced_too_large_is_refused_unread(site: Server) -> None:
    with connect(site) as sock:
        sock.sendall(raw_http.HEAD + b"Content-Length: 104857600\r\n\r\n")
        reply, took = answer(sock, within=DEADLINE - 1)
    assert error_code(reply, b"413") == "request_too_large"
    assert took < DEADLINE - 1, "the server waited for a body it would refuse"


def test_a_body_growing_past_the_limit_is_cut_off_before_its_end(site: Server) -> None:
    with connect(site) as sock:
        sock.sendall(raw_http.HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        part = b"a" * 65536
        sock.settimeout(30)
        for _ in range(LIMIT // len(part) + 2):  # just past the limit, and the body has not ended
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.settimeout(0.5)
        reply, took = answer(sock, within=DEADLINE - 1)
    assert error_code(reply, b"413") == "request_too_large"
    assert took < DEADLINE - 1, "the server waited for the end of a body it would refuse"


def test_a_dribbled_body_gets_408_at_the_deadline_while_others_are_served(site: Server) -> None:
    with connect(site) as sock:
        sock.sendall(raw_http.HEAD + b"Content-Length: 1000\r\n\r\n")
        assert requests.get(f"{site.url}/v1/models", timeout=DEADLINE).status_code == 200
        reply, took = answer(sock, within=DEADLINE + 20, dribble=b"b", send_for=DEADLINE - 1)
    assert error_code(reply, b"408") == "request_timeout"
    assert took < DEADLINE + 20
