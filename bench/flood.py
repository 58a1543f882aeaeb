"""Flood: is a normal client served while one address floods the server, and at once after?

    .venv/bin/python -m bench.flood [--seconds 60] [--after 30] [--speech 100] [--slowloris 100] [--gets 100]

The site as it runs in production: gunicorn with gunicorn.conf.py, DEBUG off, the site's default
limits and audio cache, ``SPEECH_API_KEYS`` with 51 keys. From 127.0.0.1 the attacker opens about
300 connections for ``--seconds``: speech loops over 50 of the keys (a third never read their
stream, a third read 2 KB every 10 s, a third read it whole; every text new, so nothing replays
from the cache; a refused request is sent again after 0.1 s), slowloris connections (``GET /``, a
header line every 3 s, reconnecting at once when cut) and GET loops (the page, or ``/v1/models``
with a key, back to back). From 127.0.0.2, as another client would come, a normal client with the
51st key asks for a short new sentence every 2 s during the flood and for ``--after`` seconds
after it. Prints Markdown: what the normal client got and how fast its first audio byte came (in
brackets the part after the view began, from its usage record), and what the attacker's requests
got. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.support.server import Server, client_at, start_server, stop_server
from bench.ttfb import load, machine

ATTACKER_KEYS = [f"sk-flood-{n:02d}" for n in range(50)]
NORMAL_KEY = "sk-normal-client"
NORMAL_ADDRESS = "127.0.0.2"
EVERY = 2.0  # the normal client's pace
ASKED = itertools.count()  # every sentence it asks for is new: none replays from the cache
ATTACKS = itertools.count()  # nor does the attacker's
PATIENCE = 30.0  # the normal client's read timeout
UNREAD_FOR = 40.0  # an unread stream's silence: past the site's STALL_TIMEOUT (30 s)
ATTACK_TEXT = "Attack number {n}: this sentence is here to keep a synthesis slot busy for a good while. " * 8
# The site's defaults: start_server turns every limit off for the tests, and the cache.
LIMITS = ("RATE_LIMIT", "AUTH_FAILURE_LIMIT", "MAX_STREAMS_PER_CLIENT", "MAX_STREAMS", "CACHE_AUDIO")
PRODUCTION = {f"SPEECH_{name}": "" for name in LIMITS}  # empty: the site's default


class Tally:
    """What the attacker's requests got, counted from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _read_head(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """(status, head, what came after it); status 0 when the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(4096)
        if not more:
            return 0, data, b""
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, rest


def _error_code(sock: socket.socket, head: bytes, rest: bytes) -> str:
    lines = head.lower().split(b"\r\n")
    length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")), 0)
    with contextlib.suppress(OSError):
        while len(rest) < length:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(rest)["error"]["code"])
    return "?"


def _rest_of_stream(sock: socket.socket, tail: bytes, until: float, pause: float = 0.0, size: int = 65536) -> str:
    """Read a chunked body (``size`` bytes every ``pause`` s) to its end: "complete", "cut" (the server
    ended it early) or "held" (still open when the flood ended)."""
    while not tail.endswith(b"0\r\n\r\n"):
        if time.monotonic() >= until:
            return "held"
        if pause:
            time.sleep(min(pause, max(0.0, until - time.monotonic())))
        try:
            more = sock.recv(size)
        except TimeoutError:
            continue
        except OSError:
            return "cut"
        if not more:
            return "cut"
        tail = (tail + more)[-5:]
    return "complete"


def speech_loop(url: str, index: int, until: float, tally: Tally) -> None:
    mode = ("unread", "slow", "whole")[index % 3]
    while time.monotonic() < until:
        n = next(ATTACKS)
        key = ATTACKER_KEYS[n % len(ATTACKER_KEYS)]
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": ATTACK_TEXT.format(n=n),
                           "response_format": "pcm" if mode == "unread" else "mp3"}).encode()  # fmt: skip
        try:
            with socket.socket() as sock:
                if mode != "whole":  # a small window: the server's socket fills at once
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(1.0)
                sock.connect(_address(url))
                sock.sendall(
                    b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                    b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                    % (key.encode(), len(body), body)
                )
                status, head, rest = _read_head_before(sock, until)
                if status != 200:
                    code = _error_code(sock, head, rest) if status else ""
                    tally.add(f"speech {status} {code}" if status else "speech: no answer (closed, or the flood ended)")
                    time.sleep(0.1)
                    continue
                if mode == "unread":  # nothing read for 40 s (past STALL_TIMEOUT), then what is left, at once
                    time.sleep(max(0.0, min(until, time.monotonic() + UNREAD_FOR) - time.monotonic()))
                    tally.add(f"speech 200, unread: {_rest_of_stream(sock, rest[-5:], until)}")
                    continue
                pause, size = (10.0, 2048) if mode == "slow" else (0.0, 65536)
                tally.add(f"speech 200, {mode}: {_rest_of_stream(sock, rest[-5:], until, pause, size)}")
        except OSError as error:
            tally.add(f"speech: {type(error).__name__}")
            time.sleep(0.1)


def _read_head_before(sock: socket.socket, until: float) -> tuple[int, bytes, bytes]:
    while True:
        try:
            return _read_head(sock)
        except TimeoutError:
            if time.monotonic() >= until:
                return 0, b"", b""


def slowloris(url: str, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        try:
            with socket.create_connection(_address(url), timeout=1.0) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                line = 0
                while time.monotonic() < until:
                    try:
                        if not sock.recv(4096):
                            tally.add("slowloris: cut by the server")
                            break
                    except TimeoutError:
                        pass
                    line += 1
                    if line % 3 == 0:  # a header line every 3 s
                        sock.sendall(b"X-Slow-%d: y\r\n" % line)
        except OSError as error:
            tally.add(f"slowloris: {type(error).__name__}")
            time.sleep(0.1)


def get_loop(url: str, index: int, until: float, tally: Tally) -> None:
    session = requests.Session()
    while time.monotonic() < until:
        page = index % 2 == 0
        headers = {} if page else {"Authorization": f"Bearer {ATTACKER_KEYS[index % len(ATTACKER_KEYS)]}"}
        try:
            answer = session.get(f"{url}/" if page else f"{url}/v1/models", headers=headers, timeout=(5, 30))
            tally.add(f"GET {'/' if page else '/v1/models'} {answer.status_code}")
        except requests.RequestException as error:
            tally.add(f"GET: {type(error).__name__}")
            time.sleep(0.1)


@dataclass
class Ask:
    at: float  # seconds since the flood began (negative: before it)
    status: int = 0
    code: str = ""
    first_byte: float | None = None  # seconds from the request to its first audio byte
    whole: bool = False
    error: str = ""
    request_id: str = ""
    in_view: float | None = None  # the part of first_byte after the view began (its usage record)


def ask(session: requests.Session, url: str, n: int, began: float) -> Ask:
    result = Ask(time.monotonic() - began)
    body = {"model": "tts-1", "voice": "alloy", "input": f"This is a normal request, number {n}.",
            "response_format": "mp3"}  # fmt: skip
    started = time.monotonic()
    try:
        with session.post(f"{url}/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {NORMAL_KEY}"},
                          stream=True, timeout=(10, PATIENCE)) as answer:  # fmt: skip
            result.status, result.request_id = answer.status_code, answer.headers.get("x-request-id", "")
            if answer.status_code != 200:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    result.code = answer.json()["error"]["code"]
                return result
            received = 0
            for chunk in answer.iter_content(chunk_size=None):
                if result.first_byte is None:
                    result.first_byte = time.monotonic() - started
                received += len(chunk)
            result.whole = received > 0
    except requests.RequestException as error:
        result.error = type(error).__name__
    return result


def normal_client(url: str, began: float, until: float, asks: list[Ask], flood: float | None = None) -> None:
    """One short new sentence every EVERY seconds from ``began`` until ``until`` (``at``: since ``flood``)."""
    session = client_at(NORMAL_ADDRESS)
    at = began
    while at < until:
        time.sleep(max(0.0, at - time.monotonic()))
        asks.append(ask(session, url, next(ASKED), began if flood is None else flood))
        at = max(at + EVERY, time.monotonic())


def outcome(result: Ask) -> str:
    if result.first_byte is not None and result.in_view is not None:
        return f"{result.first_byte:.2f} ({result.in_view:.2f})"
    if result.first_byte is not None:
        return f"{result.first_byte:.2f}"
    return f"{result.status or result.error} {result.code}".strip()


def summary(asks: list[Ask]) -> str:
    served = [a for a in asks if a.status == 200 and a.whole]
    times = sorted(a.first_byte for a in served if a.first_byte is not None)
    got = Counter(f"{a.status} {a.code}".strip() if a.status else a.error for a in asks)
    if not times:
        return f"| {len(served)} / {len(asks)} | – | – | – | {', '.join(f'{k}: {v}' for k, v in sorted(got.items()))} |"
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return (
        f"| {len(served)} / {len(asks)} | {statistics.median(times):.2f} | {p95:.2f} | {times[-1]:.2f} "
        f"| {', '.join(f'{k}: {v}' for k, v in sorted(got.items()))} |"
    )


def flood(server: Server, args: argparse.Namespace) -> None:
    tally = Tally()
    began = time.monotonic()
    until = began + args.seconds
    threads = [threading.Thread(target=speech_loop, args=(server.url, n, until, tally)) for n in range(args.speech)]
    threads += [threading.Thread(target=slowloris, args=(server.url, until, tally)) for _ in range(args.slowloris)]
    threads += [threading.Thread(target=get_loop, args=(server.url, n, until, tally)) for n in range(args.gets)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    during: list[Ask] = []
    normal_client(server.url, began + EVERY, until, during, began)
    loads = [load()]
    for thread in threads:  # every attacking socket is closed once its loop sees the end
        thread.join(timeout=5)
    after: list[Ask] = []
    normal_client(server.url, time.monotonic(), time.monotonic() + args.after, after)
    loads.append(load())
    with contextlib.closing(sqlite3.connect(server.log.parent / "db.sqlite3")) as database:
        views = dict(database.execute("SELECT request_id, ttfb_ms FROM speech_usage WHERE ttfb_ms IS NOT NULL"))
    for result in during + after:
        result.in_view = views[result.request_id] / 1000 if result.request_id in views else None

    print("| normal client | served / asked | first byte p50 s | p95 s | max s | answers |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| during the {args.seconds:.0f} s flood " + summary(during))
    print(f"| the {args.after:.0f} s after it " + summary(after))
    if after:
        each = ", ".join(f"{a.at:.0f} → {outcome(a)}" for a in during)
        print(f"\nFirst request after the flood: {outcome(after[0])}. During it, s since the flood began → first "
              f"byte s (of which after the view began): {each}")  # fmt: skip
    still = sum(thread.is_alive() for thread in threads)
    print(f"\nAttacker ({args.speech} speech loops, {args.slowloris} slowloris, {args.gets} GET loops from 127.0.0.1; "
          f"{next(ATTACKS)} speech requests):\n")  # fmt: skip
    print("| attacker's request | outcome count |")
    print("|---|---:|")
    for what, count in sorted(tally.counts.items()):
        print(f"| {what} | {count} |")
    print(f"\nloadavg at the flood's end {loads[0]}, at the end {loads[1]}; attacker threads still open: {still}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--after", type=float, default=30)
    parser.add_argument("--speech", type=int, default=100)
    parser.add_argument("--slowloris", type=int, default=100)
    parser.add_argument("--gets", type=int, default=100)
    args = parser.parse_args()
    env = {**PRODUCTION, "SPEECH_API_KEYS": ",".join([*ATTACKER_KEYS, NORMAL_KEY])}
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-flood-")), env)
    try:
        print(*machine(), "\n")
        quiet: list[Ask] = []
        normal_client(server.url, time.monotonic(), time.monotonic() + 3 * EVERY, quiet)
        print("Before the flood: first byte " + ", ".join(f"{a.first_byte:.2f} s" for a in quiet if a.first_byte)
              + "\n")  # fmt: skip
        flood(server, args)
    finally:
        stop_server(server)
        print(f"\nserver log: {server.log}")


if __name__ == "__main__":
    main()
