"""A fake OpenAI speech API: a real threaded HTTP server that streams the shared fixtures.

Tests set ``upstream.behaviour`` (status, time to first byte, interval, drop, hang ...) and read
``upstream.exchanges``: what each request carried, when each chunk left, when the client hung up.

It also streams chat completions (``POST /v1/chat/completions`` with ``stream: true``), as OpenAI's
server-sent events: ``upstream.chat`` says what the model answers, in deltas of ``delta_size``
characters every ``interval`` seconds (docs/live-text.md's example runs against it).
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.support.server import FIXTURES

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@dataclass
class Behaviour:
    status: int = 200
    ttfb: float = 0.0  # seconds before the status line
    interval: float = 0.0  # seconds between chunks
    chunk_size: int = 2048
    chunked: bool = True  # False: Content-Length framing
    hang: bool = False  # never answer
    hang_after_headers: bool = False  # send headers, then nothing
    drop_after: int | None = None  # bytes of body, then cut the connection
    retry_after: str | None = None
    message: str = "Something went wrong upstream."
    repeat: int = 1  # the fixture this many times over: a long body at once
    after_chunk: Callable[[int], None] | None = None  # called with each chunk's end offset once it is sent


@dataclass
class Chat:
    reply: str = "The sea is wide. It is deep, and it is cold. Ships cross it every day."
    delta_size: int = 4
    interval: float = 0.01


@dataclass
class Exchange:
    """One request as the fake upstream saw it. Times are ``time.monotonic()``."""

    headers: dict[str, str]
    body: dict[str, Any]
    started: float
    sent: list[tuple[float, int]] = field(default_factory=list)  # (time a chunk left, end offset)
    finished: float | None = None
    closed_by_client: float | None = None
    path: str = "/v1/audio/speech"


def audio_body(fmt: str) -> bytes:
    return (FIXTURES / f"sample.{fmt}").read_bytes()


class FakeUpstream(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default listen backlog of 5 drops bursts of connections

    def __init__(self, api_key: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_key = api_key
        self.behaviour = Behaviour()
        self.chat = Chat()
        self.exchanges: list[Exchange] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def wait_closed(self, exchange: Exchange, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while exchange.closed_by_client is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return exchange.closed_by_client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeUpstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        exchange = Exchange(dict(self.headers.items()), json.loads(raw or b"{}"), time.monotonic(), path=self.path)
        self.server.exchanges.append(exchange)
        behaviour = self.server.behaviour
        if self.path == "/v1/chat/completions":
            return self._chat(exchange)
        if self.path != "/v1/audio/speech":
            return self._error(404, f"Invalid URL (POST {self.path})", exchange)
        if behaviour.hang or self._client_left(behaviour.ttfb, exchange):
            self._client_left(3600, exchange)
            return
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            # Like OpenAI, name the key that was presented: the proxy must never pass this on.
            presented = self.headers.get("Authorization", "").removeprefix("Bearer ")
            return self._error(401, f"Incorrect API key provided: {presented}.", exchange, code="invalid_api_key")
        if behaviour.status != 200:
            return self._error(behaviour.status, behaviour.message, exchange)
        self._stream(behaviour, exchange)

    def _error(self, status: int, message: str, exchange: Exchange, code: str | None = None) -> None:
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "param": "input", "code": code}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.behaviour.retry_after is not None:
            self.send_header("Retry-After", self.server.behaviour.retry_after)
        self.end_headers()
        self.wfile.write(body)
        exchange.finished = time.monotonic()

    def _stream(self, behaviour: Behaviour, exchange: Exchange) -> None:
        fmt = exchange.body.get("response_format", "mp3")
        data = audio_body(fmt) * behaviour.repeat
        chunks = [data[i : i + behaviour.chunk_size] for i in range(0, len(data), behaviour.chunk_size)]
        sse = exchange.body.get("stream_format") == "sse"
        if sse:
            events: list[dict[str, Any]] = [
                {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()} for chunk in chunks
            ]
            events.append({"type": "speech.audio.done", "usage": {"input_tokens": 1}})
            chunks = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if sse else CONTENT_TYPES[fmt])
        if behaviour.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(sum(map(len, chunks))))
        self.end_headers()
        if behaviour.hang_after_headers:
            self._client_left(3600, exchange)
            return
        offset = 0
        for index, chunk in enumerate(chunks):
            if index and self._client_left(behaviour.interval, exchange):
                return
            if behaviour.drop_after is not None and offset + len(chunk) > behaviour.drop_after:
                if behaviour.drop_after > offset:
                    self.wfile.write(self._frame(chunk[: behaviour.drop_after - offset], behaviour))
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            try:
                self.wfile.write(self._frame(chunk, behaviour))
            except OSError:
                exchange.closed_by_client = time.monotonic()
                self.close_connection = True
                return
            offset += len(chunk)
            exchange.sent.append((time.monotonic(), offset))
            if behaviour.after_chunk is not None:
                behaviour.after_chunk(offset)
        if behaviour.chunked:
            self.wfile.write(b"0\r\n\r\n")
        exchange.finished = time.monotonic()

    def _chat(self, exchange: Exchange) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            return self._error(401, "Incorrect API key provided.", exchange, code="invalid_api_key")
        chat = self.server.chat
        base = {"id": "chatcmpl-fake", "created": 0, "model": exchange.body.get("model", "gpt-4o-mini")}
        if not exchange.body.get("stream"):
            body = json.dumps({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": chat.reply},
                             "finish_reason": "stop"}],
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            exchange.finished = time.monotonic()
            return
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": chat.reply[i : i + chat.delta_size]} for i in range(0, len(chat.reply), chat.delta_size)]
        events = [{**base, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]  # fmt: skip
        events.append({**base, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        offset = 0
        for index, data in enumerate([*(json.dumps(event) for event in events), "[DONE]"]):
            if index and self._client_left(chat.interval, exchange):
                return
            frame = f"data: {data}\n\n".encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            except OSError:
                exchange.closed_by_client = time.monotonic()
                self.close_connection = True
                return
            offset += len(frame)
            exchange.sent.append((time.monotonic(), offset))
        self.wfile.write(b"0\r\n\r\n")
        exchange.finished = time.monotonic()

    @staticmethod
    def _frame(chunk: bytes, behaviour: Behaviour) -> bytes:
        return b"%x\r\n%s\r\n" % (len(chunk), chunk) if behaviour.chunked else chunk

    def _client_left(self, seconds: float, exchange: Exchange) -> bool:
        """Wait ``seconds``; True (and the time recorded) as soon as the client closes the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable and self._peer_closed():
                exchange.closed_by_client = time.monotonic()
                self.close_connection = True
                return True
        return self.server.stopping.is_set()

    def _peer_closed(self) -> bool:
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"")
        except BlockingIOError:
            return False
        except OSError:
            return True
