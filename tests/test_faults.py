"""Faults on the client side and in the server's life: slow readers, hang-ups anywhere, restarts.

Nothing may leak: after each test the worker's file descriptors and threads are back where they
were, and it stops spending CPU on listeners who are gone.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.support.procstat import settles, usage, worker_pid
from bench.support.server import Server
from tests.support import raw_http

LONG = " ".join(f"Sentence number {n} is here, with a clause, to keep the voice busy for a while." for n in range(50))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bytes(text: str, fmt: str = "mp3") -> bytes:
    body = json.dumps({"model": "piper", "voice": "alloy", "input": text, "response_format": fmt}).encode()
    return raw_http.HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body


def connect(server: Server, rcvbuf: int | None = None) -> socket.socket:
    parts = urlsplit(server.url)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect((parts.hostname, parts.port))
    return sock


def idle_cpu(pid: int, seconds: float = 1.5) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def test_slow_reader_holds_no_audio_in_the_server(server: Server) -> None:
    """A client that stops reading: once the socket buffers are full the worker goes idle (no audio
    piles up in the server), and it picks up again when the client reads on."""
    pid = worker_pid(server.process.pid)
    sock = connect(server, rcvbuf=4096)
    try:
        sock.sendall(request_bytes(LONG, "pcm"))  # ~4 minutes of speech, ~25 s of CPU to make
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert settles(lambda: idle_cpu(pid, 1.0) < 0.15, timeout=60)
        cpu_before = cpu_seconds(pid)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert sock.recv(65536)
        resumed = cpu_seconds(pid) - cpu_before
    finally:
        sock.close()
    # It was paused, not finished. (Its RSS is no guide here: all of LONG as pcm is 12 MB, less than
    # the ONNX working memory that the first long pieces add.)
    assert resumed > 0.2, resumed
    # And it still serves everyone else.
    assert server.post_speech(stream=False, input="Still here.").status_code == 200


def hang_up_at(server: Server, point: str, rng: random.Random) -> None:
    data = request_bytes(LONG)
    sock = connect(server)
    try:
        if point == "in-headers":
            sock.sendall(data[: rng.randrange(1, data.index(b"\r\n\r\n"))])
        elif point == "in-body":
            sock.sendall(data[: rng.randrange(data.index(b"\r\n\r\n") + 4, len(data))])
        else:
            sock.sendall(data)
            if point == "after-status":
                sock.recv(12)
            elif point == "mid-stream":
                received = 0
                goal = rng.randrange(1, 60_000)
                while received < goal:
                    received += len(sock.recv(4096))
        time.sleep(rng.random() * 0.3)
    finally:
        if rng.random() < 0.5:  # half of them reset the connection instead of closing it politely
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()


def run_concurrently(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_hang_ups_anywhere_leak_nothing(server: Server) -> None:
    pid = worker_pid(server.process.pid)
    rng = random.Random(7)
    points = ["in-headers", "in-body", "after-status", "mid-stream"]

    def full_stream() -> None:
        with server.post_speech(input="A whole answer, read to the end.") as response:
            assert response.status_code == 200
            assert len(response.content) > 1000

    # Warm the thread pool past this concurrency first (12 hang-ups at once, some with a connection
    # still lingering): gthread keeps its threads once started, so only a leak can add one later.
    run_concurrently([full_stream] * 16)
    assert settles(lambda: idle_cpu(pid, 0.5) < 0.2)
    baseline = usage(pid)

    for _ in range(3):
        run_concurrently([functools.partial(hang_up_at, server, point, rng) for point in points * 3])

    # The worker stops working for the departed (CPU back to idle) and lets go of every socket.
    assert settles(lambda: idle_cpu(pid, 0.5) < 0.2, timeout=20)
    assert settles(lambda: usage(pid).fds <= baseline.fds), (usage(pid), baseline)
    assert usage(pid).threads <= baseline.threads, (usage(pid), baseline)
    run_concurrently([full_stream] * 4)
    assert worker_pid(server.process.pid) == pid  # no crash, no restart
    assert "Traceback" not in server.log_text()


def read_stream(url: str, results: dict[str, object]) -> None:
    start = time.monotonic()
    received = 0
    try:
        with requests.post(
            f"{url}/v1/audio/speech", json={"model": "piper", "voice": "alloy", "input": LONG}, stream=True, timeout=60
        ) as response:
            for chunk in response.iter_content(chunk_size=None):
                received += len(chunk)
        results["outcome"] = "complete"
    except requests.RequestException as error:
        results["outcome"] = type(error).__name__
    results["bytes"] = received
    results["seconds"] = time.monotonic() - start


def test_restart_ends_streams_cleanly_within_the_grace_period(make_server: Callable[..., Server]) -> None:
    """SIGHUP mid-stream: streams end cleanly by graceful_timeout, the old worker goes, a new one serves.

    Regression: a stream outlived graceful_timeout, so the old worker hung at exit until the master
    killed it a heartbeat timeout (60 s) later, cutting every stream mid-chunk.
    """
    grace = 3.0
    server = make_server(GUNICORN_CMD_ARGS=f"--graceful-timeout {grace:g}")
    old = worker_pid(server.process.pid)
    results: list[dict[str, object]] = [{} for _ in range(3)]
    readers = [threading.Thread(target=read_stream, args=(server.url, result)) for result in results]
    for reader in readers:
        reader.start()
    time.sleep(1.5)
    hup = time.monotonic()
    os.kill(server.process.pid, signal.SIGHUP)
    for reader in readers:
        reader.join(timeout=60)
    ended = time.monotonic() - hup
    assert not any(reader.is_alive() for reader in readers)
    # Each stream got some audio and a proper end of the chunked body, not a reset.
    assert all(result["outcome"] == "complete" for result in results), results
    assert all(int(str(result["bytes"])) > 0 for result in results), results
    assert ended < grace + 5, ended  # LONG takes minutes to speak; the grace period is what ends it
    assert settles(lambda: not Path(f"/proc/{old}").exists(), timeout=grace + 10)
    new = worker_pid(server.process.pid)
    assert new != old
    response = server.post_speech(stream=False, input="The new worker speaks.")
    assert response.status_code == 200
    assert len(response.content) > 1000
    assert "WORKER TIMEOUT" not in server.log_text()
