"""Requests written straight onto a socket, the way an attacker's script (or an odd client) sends them."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

from bench.support.server import Server

HEAD = b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
SHORT_WAV = json.dumps({"model": "piper", "voice": "alloy", "input": "Hi.", "response_format": "wav"}).encode()


def connect(site: Server) -> socket.socket:
    url = urlsplit(site.url)
    return socket.create_connection((str(url.hostname), int(url.port or 80)), timeout=30)


def send_chunked(sock: socket.socket, body: bytes, pause: float = 0.0) -> None:
    """``body`` in two chunks, ``pause`` seconds apart, then the end of the body."""
    sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    for part in (body[:10], body[10:]):
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        time.sleep(pause)
    sock.sendall(b"0\r\n\r\n")


def slow_listener(site: Server, text: str) -> socket.socket:
    """A stream of ``text`` whose listener reads its answer's head and then nothing; its own kernel
    buffer, the one slack the server cannot shrink, is kept small, so the server's socket is soon full."""
    url = urlsplit(site.url)
    body = json.dumps({"model": "piper", "voice": "alloy", "input": text, "response_format": "pcm"}).encode()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.connect((str(url.hostname), int(url.port or 80)))
    listener.sendall(HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert listener.recv(1024).startswith(b"HTTP/1.1 200 OK")
    return listener
