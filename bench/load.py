"""Load: many concurrent long streams, each heard by a simulated listener playing at 1x.

    .venv/bin/python -m bench.load [--local 8] [--proxied 200] [--seconds 40] [--threads 256]

Local: N streams of about ``--seconds`` of speech each, all started at once, against the piper
voice. Proxied: M streams through the upstream engine to the fake upstream (bench/support/fake_upstream.py,
in its own process; 300 ms to first byte, then 4 KB of pcm every 40 ms, twice real time).

Every stream asks for ``pcm`` (24 kHz s16le: 48,000 bytes a second), so its clock is exact. The
listener starts playing at the first byte; when the audio it has runs out before the next bytes
arrive, that is an underrun (it waits, then plays on). A stream "stayed ahead" when it had none.
Clients are raw sockets on one selector thread (HTTP/1.0, so the body is not chunk-framed), so the
measuring side stays cheap. Loopback only; everything is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import selectors
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from bench.support.fake_upstream import Behaviour, FakeUpstream
from bench.support.procstat import Usage, usage, worker_pid
from bench.support.server import Server, start_server, stop_server

BYTES_PER_SECOND = 48_000
KEY = "sk-bench-load"
UPSTREAM = Behaviour(ttfb=0.3, interval=0.04, chunk_size=4096)
STALL_GAP = 0.5  # proxied: two chunks further apart than this is a stall
SENTENCES = [
    "The lighthouse keeper climbed the stairs at dusk, as he had done every evening for thirty years.",
    "Below him the sea was grey and restless, and the wind carried the smell of rain.",
    "He trimmed the wick, polished the lens, and watched the first beam sweep across the water.",
    "Somewhere out there a ship was finding its way home by that light.",
]


def long_text(seconds: float) -> str:
    """About ``seconds`` of speech: this voice says about 14 characters a second."""
    text = ""
    index = 0
    while len(text) < seconds * 14:
        text += f"Part {index + 1}. {SENTENCES[index % len(SENTENCES)]} "
        index += 1
    return text.strip()


@dataclass
class Stream:
    sock: socket.socket
    started: float
    head: bytes = b""
    status: int = 0
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, body bytes in this read)
    error: str = ""


@dataclass
class Result:
    status: int
    ttfb: float
    seconds: float  # of audio received
    underruns: int
    stalled_for: float  # total time the listener sat waiting after the start
    min_lead: float  # least audio in hand when a chunk arrived
    max_gap: float
    error: str


def open_stream(port: int, payload: dict[str, object]) -> Stream:
    body = json.dumps(payload).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (
        f"POST /v1/audio/speech HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    started = time.monotonic()
    sock.sendall(request)
    sock.setblocking(False)
    return Stream(sock, started)


def receive_all(streams: list[Stream], deadline: float) -> None:
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.sock, selectors.EVENT_READ, stream)
    open_count = len(streams)
    while open_count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            stream = key.data
            now = time.monotonic()
            try:
                data = stream.sock.recv(262_144)
            except OSError as error:
                data, stream.error = b"", f"{type(error).__name__}"
            if not data:
                selector.unregister(stream.sock)
                stream.sock.close()
                open_count -= 1
                continue
            if not stream.status:
                stream.head += data
                if b"\r\n\r\n" not in stream.head:
                    continue
                head, data = stream.head.split(b"\r\n\r\n", 1)
                stream.status = int(head.split()[1])
            if data:
                stream.arrivals.append((now, len(data)))
    for key in list(selector.get_map().values()):
        key.data.error = key.data.error or "timeout"
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()


def listen(stream: Stream) -> Result:
    """Play the stream at 1x from its first byte; count the times the listener runs dry."""
    if stream.status != 200 or not stream.arrivals:
        return Result(stream.status, 0.0, 0.0, 0, 0.0, 0.0, 0.0, stream.error or f"HTTP {stream.status}")
    first = stream.arrivals[0][0]
    plays_until = first
    underruns, stalled_for, min_lead, max_gap, previous = 0, 0.0, float("inf"), 0.0, first
    total = 0
    for arrived, size in stream.arrivals:
        lead = plays_until - arrived
        if arrived > first:
            min_lead = min(min_lead, lead)
        if lead < 0:
            underruns += 1
            stalled_for -= lead
            plays_until = arrived
        plays_until += size / BYTES_PER_SECOND
        max_gap = max(max_gap, arrived - previous)
        previous = arrived
        total += size
    return Result(
        status=200,
        ttfb=first - stream.started,
        seconds=total / BYTES_PER_SECOND,
        underruns=underruns,
        stalled_for=stalled_for,
        min_lead=min_lead if min_lead != float("inf") else 0.0,
        max_gap=max_gap,
        error=stream.error,
    )


class Sampler(threading.Thread):
    """The worker's RSS, fds and threads every half second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[Usage] = [usage(pid)]
        self.stop = threading.Event()
        self.cores_used = 0.0

    def run(self) -> None:
        started, cpu = time.monotonic(), cpu_seconds(self.pid)
        while not self.stop.wait(0.5):
            self.samples.append(usage(self.pid))
        # On a shared machine this tells whether the worker got the CPU it needed.
        self.cores_used = (cpu_seconds(self.pid) - cpu) / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(server: Server, payloads: list[dict[str, object]], budget: float) -> tuple[list[Result], Sampler, float]:
    port = int(server.url.rsplit(":", 1)[1])
    sampler = Sampler(worker_pid(server.process.pid))
    sampler.start()
    start = time.monotonic()
    streams = [open_stream(port, payload) for payload in payloads]
    receive_all(streams, start + budget)
    took = time.monotonic() - start
    time.sleep(1.0)
    sampler.stop.set()
    sampler.join()
    return [listen(stream) for stream in streams], sampler, took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def report(title: str, results: list[Result], sampler: Sampler, took: float, proxied: bool) -> None:
    ok = [result for result in results if not result.error]
    ttfb = [result.ttfb for result in ok]
    ahead = [result for result in ok if result.underruns == 0]
    stalled = [result for result in ok if result.max_gap > STALL_GAP] if proxied else []
    rss = [sample.rss_mb for sample in sampler.samples]
    load = os.getloadavg()[0]
    print(
        f"\n### {title}: {len(results)} concurrent streams, {took:.1f} s, load average {load:.1f}, "
        f"worker used {sampler.cores_used:.2f} cores\n"
    )
    print(
        "| streams | failed | TTFB p50 | TTFB p95 | TTFB max | stayed ahead at 1x | underruns | worst wait | "
        "least lead | max gap | audio/stream | RSS start → max → end | fds max | threads max |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(results)} | {len(results) - len(ok)} | {statistics.median(ttfb) * 1000:.0f} ms | "
        f"{percentile(ttfb, 0.95) * 1000:.0f} ms | {max(ttfb) * 1000:.0f} ms | {len(ahead)}/{len(results)} | "
        f"{sum(result.underruns for result in ok)} | {max(result.stalled_for for result in ok):.2f} s | "
        f"{min(result.min_lead for result in ok):.2f} s | {max(result.max_gap for result in ok):.2f} s | "
        f"{statistics.median(result.seconds for result in ok):.1f} s | "
        f"{rss[0]:.0f} → {max(rss):.0f} → {rss[-1]:.0f} MB | {max(s.fds for s in sampler.samples)} | "
        f"{max(s.threads for s in sampler.samples)} |"
    )
    if proxied:
        print(f"\nstalled (a gap over {STALL_GAP} s): {len(stalled)}")
    for result in results:
        if result.error:
            print(f"failed: {result.error}")


class Upstream(FakeUpstream):
    request_queue_size = 1024  # 200 clients connect at once; the default backlog of 5 would refuse some


def serve_upstream(conn: Connection) -> None:
    fake = Upstream(KEY).start()
    fake.behaviour = UPSTREAM
    conn.send(fake.url)
    conn.recv()
    fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local", type=int, default=8, help="concurrent local-voice streams (0: skip)")
    parser.add_argument("--proxied", type=int, default=200, help="concurrent proxied streams (0: skip)")
    parser.add_argument("--seconds", type=float, default=40, help="speech per local stream")
    parser.add_argument("--threads", default="256", help="GUNICORN_THREADS (each open stream holds one)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))

    if args.local:
        server = start_server(tmp, {"GUNICORN_THREADS": args.threads})
        try:
            text = long_text(args.seconds)
            warm: dict[str, object] = {
                "model": "piper",
                "voice": "alloy",
                "input": "Warm up.",
                "response_format": "pcm",
            }
            run(server, [warm], 30)
            payloads: list[dict[str, object]] = [
                {"model": "piper", "voice": "alloy", "input": f"Listener {n}. {text}", "response_format": "pcm"}
                for n in range(args.local)
            ]
            results, sampler, took = run(server, payloads, budget=args.seconds * 4)
            report(f"Local voice (piper), ~{args.seconds:.0f} s of speech each", results, sampler, took, False)
        finally:
            stop_server(server)

    if args.proxied:
        parent, child = multiprocessing.Pipe()
        upstream = multiprocessing.Process(target=serve_upstream, args=(child,), daemon=True)
        upstream.start()
        url = parent.recv()
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "GUNICORN_THREADS": args.threads}
        server = start_server(tmp, env)
        try:
            payload: dict[str, object] = {"model": "tts-1", "voice": "alloy", "input": "Hi.", "response_format": "pcm"}
            run(server, [payload], 30)
            results, sampler, took = run(server, [payload] * args.proxied, budget=120)
            report("Proxied (fake upstream, 2x real time)", results, sampler, took, True)
        finally:
            stop_server(server)
            parent.send("stop")
            upstream.join(timeout=10)


if __name__ == "__main__":
    main()
