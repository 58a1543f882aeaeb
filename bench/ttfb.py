"""Time to first byte, real-time factor, memory and 1x listeners against the real server.

    python -m bench.ttfb                 # starts gunicorn on a free loopback port, prints Markdown
    python -m bench.ttfb --url http://127.0.0.1:8000 --runs 20
    python -m bench.ttfb --server uvicorn                   # the same sections under an ASGI server
    python -m bench.ttfb --server gunicorn,uvicorn,daphne   # TTFB side by side, requests interleaved

Not a test: it prints numbers for BENCHMARKS.md. Loopback only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import io
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import av
import django

django.setup()

from bench.support.procstat import cpu_seconds, goes_idle  # noqa: E402
from bench.support.server import Server, start_server, stop_server  # noqa: E402
from speech import pipeline, text  # noqa: E402
from speech.cancellation import Cancellation  # noqa: E402
from speech.conf import PIPER_VOICES  # noqa: E402
from speech.engines.piper import LocalVoice  # noqa: E402
from speech.scheduler import Grant, scheduler  # noqa: E402

LENGTHS = (20, 300, 1000, 4000)
FORMATS = ("mp3", "opus", "pcm")
PCM_RATE = 24_000
PROSE = (
    "Hello there, friend. The train left the station a little after nine, and by the time it reached "
    "the river the fog had lifted. Mrs. Alder counted the fields as they went by: wheat, then barley, "
    "then a long strip of something green she could not name. Her brother, who had made this journey "
    "every spring for twenty years, slept with his hat over his eyes. At the bridge the carriage slowed, "
    "and a boy on the bank waved at every window in turn. Nobody knew why the line had been built along "
    "the water rather than over the hill; the old maps showed a road there, and before the road a path. "
    "Some things, she thought, are simply where they have always been. "
)


def sample(chars: int) -> str:
    """English prose of about ``chars`` characters, cut at a word and ending a sentence."""
    body = (PROSE * (chars // len(PROSE) + 2))[:chars]
    if chars <= len("Hello there, friend."):
        return body
    return body[: body.rstrip().rfind(" ")].rstrip(",;:") + "."


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Stream:
    started: float
    first_byte: float
    response: http.client.HTTPResponse
    conn: http.client.HTTPConnection
    first: bytes

    def chunks(self) -> Iterator[bytes]:
        yield self.first
        while data := self.response.read1(65536):
            yield data

    def close(self) -> None:
        self.conn.close()


def open_stream(url: str, input_text: str, fmt: str) -> Stream:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    body = '{"model": "piper", "voice": "alloy", "response_format": "%s", "input": %s}'
    payload = (body % (fmt, json.dumps(input_text))).encode()
    started = time.monotonic()
    conn.request("POST", "/v1/audio/speech", payload, {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {response.read()[:300]!r}")
    first = response.read1(65536)
    return Stream(started, time.monotonic(), response, conn, first)


def audio_seconds(data: bytes, fmt: str) -> float:
    if fmt == "pcm":
        return len(data) / 2 / PCM_RATE
    seconds = 0.0
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(audio=0):
            seconds += frame.samples / frame.sample_rate
    return seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- worker memory ---------------------------------------------------------------------------------


def worker_pid(master: int) -> int | None:
    for task in Path(f"/proc/{master}/task").iterdir():
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    return None


def serving_pid(server: Server) -> int | None:
    """The process that runs the application: gunicorn's worker, or the ASGI server itself."""
    return worker_pid(server.process.pid) if server.kind == "gunicorn" else server.process.pid


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Peak RSS of the worker while a block runs: VmHWM reset via clear_refs, and VmRSS sampled."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()

    def __enter__(self) -> RssSampler:
        with contextlib.suppress(OSError):  # resets VmHWM (Linux >= 4.0)
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmHWM"))


# --- sections --------------------------------------------------------------------------------------


def first_piece(input_text: str) -> str:
    return pipeline.next_piece(deque(text.sentences(text.normalize(input_text))), lead=0.0)


def settle(pid: int | None) -> None:
    """Wait until the server has stopped working (its CPU time still for 100 ms, at most 5 s), so that a
    cancelled stream's last piece does not share the cores with the next request; without the worker's
    pid (``--url``), a fixed pause."""
    if pid is None:
        time.sleep(0.3)
        return
    goes_idle(pid, timeout=5, every=0.1, still=0.005)


def bench_ttfb(url: str, voice: LocalVoice, runs: int, runs_4000: int, pid: int | None) -> list[str]:
    rows = [
        "Time to first byte (ms), warm server, one request at a time (closed after the first chunk, then "
        "a wait until the server's CPU is idle). Engine column: piper alone on the same first piece in the "
        f"bench process, run between requests. loadavg {load()}",
        "",
        "| chars | format | runs | p50 | p95 | max | engine alone on the first piece p50 |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for fmt in FORMATS:  # warm the connection path and each encoder
        open_stream(url, sample(20), fmt).close()
        time.sleep(0.3)
    for chars in LENGTHS:
        piece = first_piece(sample(chars))
        for fmt in FORMATS:
            times, engine = [], []
            for _ in range(runs_4000 if chars == 4000 else runs):
                stream = open_stream(url, sample(chars), fmt)
                times.append((stream.first_byte - stream.started) * 1000)
                stream.close()  # a hang-up: the server cancels the rest
                settle(pid)
                started = time.monotonic()
                voice.synthesize(piece, 1.0, Grant(slot=0, alone=True), Cancellation())
                engine.append((time.monotonic() - started) * 1000)
                time.sleep(0.1)  # onnxruntime's threads here spin a little after a run
            p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
            rows.append(
                f"| {chars} | {fmt} | {len(times)} | {p50:.0f} | {p95:.0f} | {max(times):.0f} "
                f"| {percentile(engine, 0.5):.0f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def engine_run(voice: LocalVoice, input_text: str) -> tuple[float, float, float]:
    """Piper alone on the whole text: (wall s, CPU s, audio s)."""
    wall, cpu = time.monotonic(), time.process_time()
    pcm = voice.synthesize(text.normalize(input_text), 1.0, Grant(slot=0, alone=True), Cancellation()).pcm
    return time.monotonic() - wall, time.process_time() - cpu, len(pcm) / 2 / voice.rate


def bench_rtf(url: str, voice: LocalVoice, pid: int | None) -> list[str]:
    idle = status_kib(pid, "VmRSS") / 1024 if pid else 0.0
    rows = [
        "Real-time factor = wall time / audio seconds. Pipeline: the whole stream over HTTP, read as fast as "
        "it comes. Engine: piper alone in the bench process on the same text (all cores), run just before. "
        "CPU columns: CPU seconds per audio second (bench process for the engine, gunicorn worker for the "
        "pipeline), which other load on the machine disturbs far less than wall time.",
        "",
        "| chars | format | audio s | engine RTF | pipeline RTF | ratio | engine CPU | worker CPU "
        "| worker peak RSS MiB | loadavg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for chars in LENGTHS:
        input_text = sample(chars)
        for fmt in FORMATS:
            engine_wall, engine_cpu, engine_audio = engine_run(voice, input_text)
            before = load()
            cpu = cpu_seconds(pid) if pid else 0.0
            with RssSampler(pid) if pid else contextlib.nullcontext() as sampler:
                stream = open_stream(url, input_text, fmt)
                data = b"".join(stream.chunks())
                wall = time.monotonic() - stream.started
                stream.close()
            cpu = cpu_seconds(pid) - cpu if pid else float("nan")
            peak = sampler.peak_kib / 1024 if sampler else float("nan")
            seconds = audio_seconds(data, fmt)
            engine, pipeline = engine_wall / engine_audio, wall / seconds
            rows.append(
                f"| {chars} | {fmt} | {seconds:.1f} | {engine:.3f} | {pipeline:.3f} | {pipeline / engine:.2f} "
                f"| {engine_cpu / engine_audio:.3f} | {cpu / seconds:.3f} | {peak:.0f} | {before} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
            time.sleep(0.3)
    rows += ["", f"Worker RSS when idle, before these runs: {idle:.0f} MiB."]
    return rows


@dataclass
class Playback:
    ttfb: float = 0.0
    underruns: int = 0
    stalled: float = 0.0
    worst: float = 0.0
    audio: float = 0.0


def listen(url: str, input_text: str, go: threading.Barrier, result: Playback) -> None:
    """A 1x player: the clock starts at the first byte and stops (an underrun) when audio runs out."""
    go.wait()
    stream = open_stream(url, input_text, "pcm")
    result.ttfb = stream.first_byte - stream.started
    clock_start = stream.first_byte
    received = 0.0  # seconds of audio in hand
    for data in stream.chunks():
        now = time.monotonic()
        played = now - clock_start
        if played > received and received > 0:
            gap = played - received
            result.underruns += 1
            result.stalled += gap
            result.worst = max(result.worst, gap)
            clock_start += gap  # the player waits for data, then resumes
        received += len(data) / 2 / PCM_RATE
    result.audio = received
    stream.close()


def bench_listeners(url: str, pid: int | None, counts: list[int], chars: int) -> list[str]:
    rows = [
        f"Concurrent 1x listeners, pcm, {chars}-character input each, all starting together. "
        "Worker CPU: CPU seconds the gunicorn worker spent per audio second it sent, and the cores it got.",
        "",
        "| listeners | audio s each | underruns | stall s total | worst stall s | TTFB p50 / max ms "
        "| worker CPU / audio s | worker cores | loadavg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for count in counts:
        before = load()
        cpu, wall = cpu_seconds(pid) if pid else 0.0, time.monotonic()
        results = [Playback() for _ in range(count)]
        go = threading.Barrier(count)
        threads = [threading.Thread(target=listen, args=(url, sample(chars), go, r)) for r in results]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu, wall = (cpu_seconds(pid) - cpu if pid else float("nan")), time.monotonic() - wall
        ttfbs = [r.ttfb * 1000 for r in results]
        rows.append(
            f"| {count} | {results[0].audio:.1f} | {sum(r.underruns for r in results)} "
            f"| {sum(r.stalled for r in results):.2f} | {max(r.worst for r in results):.2f} "
            f"| {statistics.median(ttfbs):.0f} / {max(ttfbs):.0f} "
            f"| {cpu / sum(r.audio for r in results):.3f} | {cpu / wall:.2f} | {before} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
        time.sleep(1)
    return rows


def bench_servers(servers: list[Server], runs: int, chars: int) -> list[str]:
    """TTFB per server, one request at a time taking turns, so that each server sees the same load."""
    rows = [
        f"Time to first byte (ms) by server, {chars}-character input, {runs} runs per format, the servers "
        "taking turns request by request. Last column: one whole pcm stream, first byte / last byte (s). "
        f"loadavg {load()}",
        "",
        f"| server | {' | '.join(f'{fmt} p50 / p95' for fmt in FORMATS)} | first / last byte | first / total |",
        f"|---|{'---:|' * len(FORMATS)}---:|---:|",
    ]
    urls = {server.kind: server.url for server in servers}
    pids = {server.kind: serving_pid(server) for server in servers}
    times: dict[tuple[str, str], list[float]] = {(kind, fmt): [] for kind in urls for fmt in FORMATS}
    for _ in range(runs + 1):  # the first round warms each server's connection path and encoders
        for fmt in FORMATS:
            for kind, url in urls.items():
                stream = open_stream(url, sample(chars), fmt)
                times[kind, fmt].append((stream.first_byte - stream.started) * 1000)
                stream.close()
                settle(pids[kind])
    for kind, url in urls.items():
        stream = open_stream(url, sample(chars), "pcm")
        for _ in stream.chunks():
            last = time.monotonic()
        stream.close()
        first, total = stream.first_byte - stream.started, last - stream.started
        cells = [
            f"{percentile(times[kind, fmt][1:], 0.5):.0f} / {percentile(times[kind, fmt][1:], 0.95):.0f}"
            for fmt in FORMATS
        ]
        rows.append(f"| {kind} | {' | '.join(cells)} | {first:.2f} / {total:.2f} | {first / total:.1%} |")
        print(rows[-1], file=sys.stderr, flush=True)
        time.sleep(1)
    return rows


def machine() -> list[str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    packages = ("django", "gunicorn", "uvicorn", "daphne", "piper-tts", "onnxruntime", "av")
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)
    return [
        f"Machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {versions}; "
        f"loadavg at start {load()}."
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; default: start --server on a free loopback port")
    parser.add_argument(
        "--server", default="gunicorn", help="gunicorn, uvicorn or daphne; several (comma list): TTFB side by side"
    )
    parser.add_argument("--runs", type=int, default=20, help="TTFB runs per length and format")
    parser.add_argument("--runs-4000", type=int, default=20, help="TTFB runs for the 4,000-character input")
    parser.add_argument("--listeners", default="1,4,8", help="concurrent listener counts")
    parser.add_argument("--listen-chars", type=int, default=1000, help="input length for each listener")
    parser.add_argument("--only", default="ttfb,rtf,listeners", help="sections to run")
    args = parser.parse_args()
    sections = args.only.split(",")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` stops the server on kill/timeout
    kinds = args.server.split(",")
    if len(kinds) > 1:
        compare(kinds, args.runs, args.listen_chars)
        return
    server: Server | None = None
    url = args.url
    pid = None
    if url is None:
        server = start_server(Path(tempfile.mkdtemp(prefix="bench-")), kind=kinds[0])
        url = server.url
        pid = serving_pid(server)
    try:
        voice = LocalVoice.load("joe", PIPER_VOICES["joe"], scheduler.slots)  # the engine alone, in this process
        voice.synthesize("Hello there.", 1.0, Grant(slot=0, alone=True), Cancellation())
        out = [*machine(), ""]
        if "ttfb" in sections:
            out += [*bench_ttfb(url, voice, args.runs, args.runs_4000, pid), ""]
        if "rtf" in sections:
            out += [*bench_rtf(url, voice, pid), ""]
        if "listeners" in sections:
            counts = [int(n) for n in args.listeners.split(",")]
            out += [*bench_listeners(url, pid, counts, args.listen_chars), ""]
        print("\n".join(out))
    finally:
        if server is not None:
            stop_server(server)


def compare(kinds: list[str], runs: int, chars: int) -> None:
    servers: list[Server] = []
    try:
        for kind in kinds:
            servers.append(start_server(Path(tempfile.mkdtemp(prefix=f"bench-{kind}-")), kind=kind))
        print("\n".join([*machine(), "", *bench_servers(servers, runs, chars)]))
    finally:
        for srv in servers:
            stop_server(srv)


if __name__ == "__main__":
    main()
