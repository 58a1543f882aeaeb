"""Proxy benchmark: time to first byte and per-chunk delay through our server vs straight to upstream.

    .venv/bin/python -m bench.proxy [--threads 64] [--runs 30] [--streams 50,100,200]

The fake upstream (bench/support/fake_upstream.py) runs in its own process: 300 ms to first byte, then a
512-byte chunk every 20 ms (about 3 s per stream). Clients are raw sockets on one selector thread,
so the measuring side stays cheap. A chunk's delay is from the moment the fake upstream wrote it to
the moment its last byte reached the client. A stream is "stalled" when its first byte took over
1 s more than upstream's 300 ms, or two chunks arrived more than 500 ms apart.
With nginx installed (Debian ``nginx-light``), nginx ``proxy_pass`` with ``proxy_buffering off``
is measured as a reference.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import selectors
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.support.fake_upstream import Behaviour, Exchange, FakeUpstream
from bench.support.server import free_port, start_server, stop_server

KEY = "sk-bench-key"
BEHAVIOUR = Behaviour(ttfb=0.3, interval=0.02, chunk_size=512)
PATH = "/v1/audio/speech"
STALL_GAP = 0.5
STALL_TTFB = 1.3
_tags = itertools.count()


def serve_upstream(conn: Connection) -> None:
    """Child process: the fake upstream, driven over a pipe."""
    fake = FakeUpstream(KEY).start()
    fake.behaviour = BEHAVIOUR
    conn.send(fake.url)
    while (command := conn.recv()) != "stop":
        if command == "exchanges":
            conn.send(list(fake.exchanges))
            fake.exchanges.clear()
    fake.stop()


@dataclass
class Stream:
    sock: socket.socket
    tag: str  # the input text, which names the upstream exchange that fed this stream
    started: float
    raw: bytearray = field(default_factory=bytearray)
    reads: list[tuple[float, int]] = field(default_factory=list)  # (time, raw bytes so far)
    error: str | None = None

    def body_arrivals(self) -> tuple[int, list[tuple[int, float]]]:
        """Status and, per chunk of body, (body end offset, time its last byte arrived)."""
        head_end = self.raw.find(b"\r\n\r\n") + 4
        status = int(self.raw[9:12]) if head_end > 3 else 0
        result: list[tuple[int, float]] = []
        if status != 200:
            return status, result
        pos, body = head_end, 0
        while pos < len(self.raw):
            line_end = self.raw.find(b"\r\n", pos)
            size = int(self.raw[pos:line_end], 16)
            if size == 0:
                break
            body += size
            data_end = line_end + 2 + size
            result.append((body, next(t for t, seen in self.reads if seen >= data_end)))
            pos = data_end + 2
        return status, result


def run_streams(host: str, port: int, path: str, count: int, headers: str = "") -> list[Stream]:
    """``count`` simultaneous POSTs, read to the end on one selector thread."""
    selector = selectors.DefaultSelector()
    streams = []
    for _ in range(count):
        tag = f"Benchmark stream {next(_tags)}."
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": tag, "response_format": "mp3"})
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
        ).encode()
        sock = socket.create_connection((host, port))
        sock.setblocking(False)
        stream = Stream(sock, tag, time.monotonic())
        streams.append(stream)
        selector.register(sock, selectors.EVENT_READ, stream)
        sock.sendall(request)  # small; fits the socket buffer
    open_streams = count
    while open_streams:
        for key, _ in selector.select(timeout=30):
            stream = key.data
            try:
                data = stream.sock.recv(65536)
            except OSError as error:
                stream.error, data = str(error), b""
            if data:
                stream.raw += data
                stream.reads.append((time.monotonic(), len(stream.raw)))
            else:
                selector.unregister(stream.sock)
                stream.sock.close()
                open_streams -= 1
    return streams


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(streams: list[Stream], exchanges: list[Exchange]) -> dict[str, Any]:
    """Time each stream against the upstream exchange that fed it."""
    ttfbs: list[float] = []
    delays: list[float] = []
    stalled = failed = 0
    fed_by = {exchange.body["input"]: exchange for exchange in exchanges}
    for stream in streams:
        status, arrivals = stream.body_arrivals()
        exchange = fed_by.get(stream.tag)
        if exchange is None or stream.error or status != 200 or not arrivals or arrivals[-1][0] != exchange.sent[-1][1]:
            failed += 1
            continue
        ttfb = arrivals[0][1] - stream.started
        ttfbs.append(ttfb)
        gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(arrivals)]
        stalled += ttfb > STALL_TTFB or max(gaps, default=0) > STALL_GAP
        for left, end in exchange.sent:
            delays.append(next(t for offset, t in arrivals if offset >= end) - left)
    return {"ttfbs": ttfbs, "delays": delays, "stalled": stalled, "failed": failed}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def streamed(upstream: Connection, port: int, batches: list[int], headers: str) -> dict[str, Any]:
    """Run the batches one after another (each batch's streams at once) and time every stream."""
    streams = [stream for count in batches for stream in run_streams("127.0.0.1", port, PATH, count, headers)]
    upstream.send("exchanges")
    return measure(streams, upstream.recv())


def nginx(upstream_port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        return None
    port = free_port()
    (workdir / "nginx.conf").write_text(f"""
daemon off; worker_processes 1; pid {workdir}/nginx.pid; error_log {workdir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; client_body_temp_path {workdir}; proxy_temp_path {workdir};
  upstream fake {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection "";
                  proxy_buffering off; tcp_nodelay on; }}
  }}
}}
""")
    process = subprocess.Popen([binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")])
    time.sleep(0.5)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="64", help="GUNICORN_THREADS for our server")
    parser.add_argument("--runs", type=int, default=30, help="sequential streams per path")
    parser.add_argument("--streams", default="50,100,200", help="concurrency levels")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve_upstream, args=(theirs,), daemon=True)
    child.start()
    upstream_url: str = ours.recv()
    upstream_port = int(upstream_url.split(":")[2].split("/")[0])
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream_url, "GUNICORN_THREADS": args.threads}
    server = start_server(workdir, env)
    server_port = int(server.url.rsplit(":", 1)[1])
    reference = nginx(upstream_port, workdir)
    auth = f"Authorization: Bearer {KEY}\r\n"
    try:
        run_streams("127.0.0.1", server_port, PATH, 1)  # warm the upstream pool
        ours.send("exchanges")
        ours.recv()
        print(f"upstream: 300 ms to first byte, 512 B every 20 ms; our server: gthread, {args.threads} threads")
        paths = {"direct": (upstream_port, auth), "our proxy": (server_port, "")}
        if reference is not None:
            paths["nginx"] = (reference[1], auth)
        sequential = {name: streamed(ours, port, [1] * args.runs, headers) for name, (port, headers) in paths.items()}
        base = statistics.median(sequential["direct"]["ttfbs"])
        print(f"\n{args.runs} sequential streams   TTFB p50   overhead   chunk delay p50   p99")
        for name, result in sequential.items():
            ttfb = statistics.median(result["ttfbs"])
            print(
                f"  {name:<24} {ms(ttfb):>9}  {ms(ttfb - base):>9}   {ms(percentile(result['delays'], 0.5)):>13}"
                f"  {ms(percentile(result['delays'], 0.99)):>8}"
            )
        print("\nconcurrent streams          stalled  failed   TTFB p50   TTFB max   chunk delay p50   p99")
        for count in map(int, args.streams.split(",")):
            for name, (port, headers) in paths.items():
                result = streamed(ours, port, [count], headers)
                ttfbs = result["ttfbs"] or [float("nan")]
                delays = result["delays"] or [float("nan")]
                print(
                    f"  {count:>5} {name:<20} {result['stalled']:>7}  {result['failed']:>6}"
                    f"  {ms(statistics.median(ttfbs)):>9}  {ms(max(ttfbs)):>9}"
                    f"   {ms(percentile(delays, 0.5)):>13}  {ms(percentile(delays, 0.99)):>8}"
                )
    finally:
        stop_server(server)
        if reference is not None:
            reference[0].terminate()
            reference[0].wait()
        ours.send("stop")
        child.join(timeout=5)


if __name__ == "__main__":
    main()
