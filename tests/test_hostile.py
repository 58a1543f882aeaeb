"""Hostile input against the real server: each gets a clear 4xx or is spoken, in bounded time and memory."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from bench.support.procstat import usage, worker_pid
from bench.support.server import Server
from tests.support import raw_http
from tests.support.audio_check import duration

SPEECH = "/v1/audio/speech"
# Reading this long is enough to show that a stream is under way; the rest is cancelled by hanging up.
LISTEN_SECONDS = 2.0


def post_raw(server: Server, body: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{server.url}{SPEECH}", data=body, headers={"Content-Type": "application/json", **headers}, timeout=60
    )


def assert_openai_error(response: requests.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def first_byte_and_some_audio(server: Server, payload: dict[str, object]) -> tuple[float, bytes]:
    """Seconds to the first byte, and what arrived in the first LISTEN_SECONDS after it."""
    start = time.monotonic()
    with requests.post(f"{server.url}{SPEECH}", json=payload, stream=True, timeout=60) as response:
        assert response.status_code == 200, response.text[:300]
        assert response.headers["Content-Type"] == "audio/mpeg"
        first = None
        data = b""
        for chunk in response.iter_content(chunk_size=None):
            first = first or time.monotonic() - start
            data += chunk
            if time.monotonic() - start > first + LISTEN_SECONDS:
                break
    assert first is not None
    return first, data


@pytest.fixture(scope="module")
def usual_first_byte(server: Server) -> float:
    """Time to first byte for a plain short request right now (the machine is shared: compare with it)."""
    times = [first_byte_and_some_audio(server, {"model": "piper", "voice": "alloy", "input": "Hello there."})[0]]
    times += [first_byte_and_some_audio(server, {"model": "piper", "voice": "alloy", "input": "Hello there."})[0]]
    return min(times)


def test_ten_megabyte_body_is_413_without_reading_it(server: Server) -> None:
    before = usage(worker_pid(server.process.pid)).rss_mb
    start = time.monotonic()
    response = post_raw(server, b'{"input": "' + b"a" * (10 * 1024 * 1024) + b'"}')
    assert_openai_error(response, 413)
    assert time.monotonic() - start < 10
    assert usage(worker_pid(server.process.pid)).rss_mb - before < 30


def test_ten_megabyte_chunked_body_is_refused(server: Server) -> None:
    """No Content-Length: the worker reads 4 MiB of it, more than Django takes, and Django refuses it."""
    with raw_http.connect(server) as sock:
        sock.sendall(raw_http.HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        try:
            for _ in range(160):  # 10 MB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before we finished: fine
        reply = sock.recv(4096)
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b'"code":"request_too_large"' in reply.replace(b" ", b"")


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "piper", "voice": "alloy", "input": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
        b'{"model": "piper", "voice": "alloy", "input": "Hi", "instructions": ' + b'{"x": ' * 50_000 + b"}",
    ],
    ids=["arrays", "objects", "unterminated"],
)
def test_deeply_nested_json_is_400(server: Server, body: bytes) -> None:
    assert_openai_error(post_raw(server, body), 400)


@pytest.mark.parametrize(
    "raw_input",
    ["\x13", "\x00\x01\x02", "\u200b\u200c\u200d\u2060\ufeff", "\u202e\u202c", '"\\ud800"', '"\\udfff \\ud800"'],
    ids=["one-control", "controls", "zero-width", "bidi-controls", "lone-surrogate", "lone-surrogates"],
)
def test_input_with_nothing_to_say_is_400(server: Server, raw_input: str) -> None:
    """Regression: '\\x13' passed the emptiness check and streamed 0 bytes with a 200."""
    value = raw_input if raw_input.startswith('"') else json.dumps(raw_input)
    body = f'{{"model": "piper", "voice": "alloy", "input": {value}}}'.encode()
    error = assert_openai_error(post_raw(server, body), 400)
    assert error["param"] == "input"


SPOKEN = {
    "control-characters": "Hello\x00\x07 world\x1b[31m in red\x7f. And a bell\x07.",
    "lone-surrogates": "\ud800Hello \udfffthere.",  # sent as JSON escapes, as a browser could
    "rtl-and-zero-width": "\u202eHello\u200b world\u200f. \u05e9\u05dc\u05d5\u05dd. \u0645\u0631\u062d\u0628\u0627.",
    "ssml-like": '<speak><prosody rate="x-slow">Hello</prosody><break time="30s"/> world &amp; more</speak>',
    "4096-emoji": "\N{GRINNING FACE}" * 4096,
    "4096-letter-word": "a" * 4096,
}


@pytest.mark.parametrize("name", list(SPOKEN))
def test_odd_input_is_spoken_promptly(server: Server, usual_first_byte: float, name: str) -> None:
    pid = worker_pid(server.process.pid)
    before = usage(pid).rss_mb
    first, data = first_byte_and_some_audio(server, {"model": "piper", "voice": "alloy", "input": SPOKEN[name]})
    assert duration(data, "mp3") > 0.3
    # Generous and relative: this machine is shared. Before the fix 4,096 emoji took ~17 s.
    assert first < max(3.0, 8 * usual_first_byte), (first, usual_first_byte)
    # ONNX keeps its peak working memory, which grows with the audio length of the longest piece:
    # pieces are bounded in phonemes, but a whole piece of emoji (25, each read by its name) is 16.5 s
    # of audio, and the worker then holds 850-870 MB more than idle in some runs, 620 in others
    # (piper samples its durations). Far under the 2 GB that 300 emoji in one piece made.
    assert usage(pid).rss_mb - before < 1000


def test_slow_bodies_do_not_block_others(server: Server) -> None:
    """Slowloris-style clients dribble their bodies; meanwhile others are served, then so are they."""
    body = json.dumps({"model": "piper", "voice": "alloy", "input": "Slow."}).encode()
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    slow = [socket.create_connection((host, port), timeout=30) for _ in range(16)]
    replies: list[bytes] = []

    def dribble() -> None:
        for i in range(len(body)):
            for sock in slow:
                sock.sendall(body[i : i + 1])
            time.sleep(2.0 / len(body))
        for sock in slow:
            replies.append(sock.recv(64))

    try:
        for sock in slow:
            sock.sendall(head % (SPEECH.encode(), len(body)))
        dribbler = threading.Thread(target=dribble)
        dribbler.start()
        response = server.post_speech(stream=False, input="Served while others dribble.")
        assert response.status_code == 200
        assert dribbler.is_alive()  # the slow bodies were still arriving when we were served
        dribbler.join(timeout=60)
    finally:
        for sock in slow:
            sock.close()
    assert len(replies) == len(slow)
    assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies), replies


@pytest.mark.parametrize("fmt", ["mp3", "pcm"])
@pytest.mark.parametrize("punctuation", [";", "?!", "... ..."])
def test_input_the_voice_cannot_say_is_still_valid_audio(server: Server, punctuation: str, fmt: str) -> None:
    """Regression (schemathesis): input ';' gave a 200 with an empty body, which no player accepts."""
    response = server.post_speech(stream=False, input=punctuation, response_format=fmt)
    assert response.status_code == 200
    assert 0 < duration(response.content, fmt) < 2
