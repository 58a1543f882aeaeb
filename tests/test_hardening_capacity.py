"""Issue 31 H: capacity counts work, not connections. A stream whose listener reads nothing lends its
synthesis slot until the listener catches up; connections have their own cap, also per address."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import requests

from bench.support.server import Server, client_at
from tests.support import raw_http

TEXT = "This sentence goes on for a while, and its listener reads it very slowly indeed. " * 30


def slow_listener(server: Server) -> socket.socket:
    return raw_http.slow_listener(server, TEXT)


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_slow_readers_lend_their_synthesis_slots(make_server: Callable[..., Server], kind: str) -> None:
    """Under WSGI the stream waits on the client's socket; under ASGI on the event loop, which cannot
    send (``asgi.Handover`` full): either way its synthesis slot serves others meanwhile."""
    server = make_server(kind, SPEECH_MAX_STREAMS="2", SPEECH_QUEUE_TIMEOUT="1", SPEECH_STALL_TIMEOUT="120")
    slow = [slow_listener(server), slow_listener(server)]
    try:
        # Both slots are held by streams nobody reads: before, every newcomer got 503 until they ended.
        deadline = time.monotonic() + 30
        while True:
            answer = server.post_speech(input="A normal listener.", response_format="pcm", stream=False)
            if answer.status_code == 200:
                break
            assert answer.json()["error"]["code"] == "server_busy"
            assert time.monotonic() < deadline, "the slow readers kept both synthesis slots"
        assert len(answer.content) > 10_000
        # The slow readers catch up: they take a slot back and go on.
        for listener in slow:
            listener.settimeout(30)
            received = 0
            while received < 500_000:
                data = listener.recv(65536)
                assert data, "the stream ended early"
                received += len(data)
    finally:
        for listener in slow:
            listener.close()


def test_connections_are_capped_per_address_whatever_the_key(make_server: Callable[..., Server]) -> None:
    server = make_server(
        SPEECH_API_KEYS="key-a,key-b",
        SPEECH_MAX_STREAMS_PER_CLIENT="2",
        SPEECH_MAX_CONNECTIONS_PER_ADDRESS="3",
    )
    body = {"model": "piper", "voice": "alloy", "input": TEXT, "response_format": "mp3"}
    url = f"{server.url}/v1/audio/speech"
    opened = []
    try:
        for key in ("key-a", "key-a", "key-b"):
            response = requests.post(
                url, json=body, headers={"Authorization": f"Bearer {key}"}, stream=True, timeout=60
            )
            assert response.status_code == 200
            opened.append(response)
        refused = requests.post(url, json=body, headers={"Authorization": "Bearer key-b"}, timeout=60)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_connections"
        # Another address has its own.
        other = client_at("127.0.0.7").post(
            url, json=body, headers={"Authorization": "Bearer key-b"}, stream=True, timeout=60
        )
        assert other.status_code == 200
        other.close()
    finally:
        for response in opened:
            response.close()


def test_under_asgi_the_connections_send_buffer_is_found_and_kept_small() -> None:
    """An ASGI server hands the app no socket: limit_stalls finds it by the scope's two addresses."""
    from types import SimpleNamespace

    from speech import hangup

    with socket.create_server(("127.0.0.1", 0)) as listening, socket.create_connection(listening.getsockname()) as peer:
        served, _ = listening.accept()
        with served:
            served.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            scope = {"server": list(served.getsockname()), "client": list(peer.getsockname())}
            hangup.limit_stalls(SimpleNamespace(META={}, scope=scope))  # type: ignore[arg-type]
            assert served.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * hangup.STALL_SEND_BUFFER
            unix = SimpleNamespace(META={}, scope={"server": ["/run/speech.sock", None], "client": None})
            assert hangup._asgi_socket(unix) is None  # type: ignore[arg-type]
