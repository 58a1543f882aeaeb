"""Slowloris: how long a real request waits while N connections dribble their headers.

    .venv/bin/python -m bench.slowloris [--attackers 128,256,512] [--seconds 30] [--deadline 10]

For each N, N raw sockets send ``GET /`` and then one header line every 3 s, reconnecting at once
whenever the server cuts them (the attacker's best play against a deadline). Meanwhile one client
sends ``GET /v1/models`` one after another and the script prints their latency. Run twice: with the
site's request deadline (``GUNICORN_REQUEST_TIMEOUT``, default 10 s) and without it (a deadline
longer than the run), the way the server behaved before. 256 gunicorn threads, as the site runs.
One selector thread drives every attacking socket; loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.support.server import Server, start_server, stop_server

LINE_EVERY = 3.0
PATIENCE = 30.0  # a real request that waits longer than this counts as failed


def attack(url: str, count: int, until: float, cuts: list[int]) -> None:
    host, port = url.removeprefix("http://").split(":")
    selector = selectors.DefaultSelector()

    def connect() -> None:
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        selector.register(sock, selectors.EVENT_READ)

    for _ in range(count):
        connect()
    next_line, line = time.monotonic() + LINE_EVERY, 0
    while time.monotonic() < until:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            selector.unregister(sock)
            sock.close()
            cuts[0] += 1
            connect()
        if time.monotonic() >= next_line:
            line += 1
            for key in list(selector.get_map().values()):
                with contextlib.suppress(OSError):  # cut: the selector reports it
                    key.fileobj.sendall(b"X-Slow-%d: y\r\n" % line)  # type: ignore[union-attr]
            next_line += LINE_EVERY
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def measure(server: Server, attackers: int, seconds: float) -> tuple[list[float], int, int]:
    until = time.monotonic() + seconds
    cuts = [0]
    attacker = threading.Thread(target=attack, args=(server.url, attackers, until, cuts))
    attacker.start()
    time.sleep(2.0)
    latencies, failed = [], 0
    while time.monotonic() < until - 1:
        started = time.monotonic()
        try:
            requests.get(f"{server.url}/v1/models", timeout=min(PATIENCE, max(1.0, until - started))).raise_for_status()
            latencies.append(time.monotonic() - started)
        except requests.RequestException:
            failed += 1
    attacker.join()
    return latencies, failed, cuts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attackers", default="128,256,512")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--deadline", default="10")
    args = parser.parse_args()
    for label, deadline in (("with deadline", args.deadline), ("no deadline (before)", "100000")):
        server = start_server(Path(tempfile.mkdtemp(prefix="bench-slowloris-")), {"GUNICORN_REQUEST_TIMEOUT": deadline})
        try:
            for count in (int(n) for n in args.attackers.split(",")):
                latencies, failed, cuts = measure(server, count, args.seconds)
                answered = (
                    f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s" if latencies else "none"
                )
                print(
                    f"{label:>22}: {count:4d} slow connections -> {len(latencies):3d} requests answered ({answered}), "
                    f"{failed} waited > {PATIENCE:.0f} s or past the run; server cut {cuts} slow connections",
                    flush=True,
                )
                time.sleep(2)
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
