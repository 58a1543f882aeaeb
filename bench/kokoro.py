"""Kokoro-82M beside piper in one run: first byte, real-time factor, stream vs model alone, memory, capacity.

    .venv/bin/python -m bench.kokoro [--runs 7] [--pairs 3]

Starts gunicorn as `make run` does (piper warm, Kokoro loaded by a first request), then for each engine:

* first byte p50/p90 (ms) of a short first sentence over HTTP, warm, one request at a time, the two
  engines interleaved, each request closed after its first chunk and followed by a wait until the
  server's CPU is idle;
* the model alone in this process on the whole text (one call, every core): real-time factor (wall
  seconds per audio second) and CPU seconds per audio second;
* the whole stream (wav, read to the end) against the model alone on the same text, interleaved pairs,
  in wall time and in CPU time (the server worker's for the stream, this process's for the model), which
  a busy machine disturbs less;
* memory per loaded model: this process's RSS before and after loading it and running it once
  per session it keeps (the wide one and one per slot);
* a capacity estimate: listeners at 1x one machine keeps fed, cores / CPU seconds per audio second.

Kokoro's voices here are Japanese and piper's is English, so "the same texts" are one text in each
language of about the same spoken length (a Japanese voice reads Latin letters as nothing useful).
Not a test: it prints Markdown. Loopback only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from bench.support.procstat import cpu_seconds  # noqa: E402
from bench.support.server import start_server, stop_server  # noqa: E402
from bench.ttfb import load, machine, serving_pid, settle  # noqa: E402
from speech import text  # noqa: E402
from speech.cancellation import Cancellation  # noqa: E402
from speech.engines.base import get_engine  # noqa: E402
from speech.scheduler import Grant, scheduler  # noqa: E402

FIRST = {"piper": "Hello there, this starts at once.", "kokoro": "こんにちは、すぐに始まります。"}
WHOLE = {
    "piper": (
        "The old lighthouse stood at the edge of the cliff. Every night its lamp turned slowly over the dark "
        "water, and the ships that passed knew where the rocks were. The keeper climbed the stairs at dusk, "
        "trimmed the wick and wound the clockwork, then sat by the window with a cup of tea."
    ),
    "kokoro": (
        "古い灯台は崖の端に立っていました。毎晩、そのランプは暗い海の上をゆっくりと回り、"
        "通り過ぎる船は岩の場所を知ることができました。灯台守は夕暮れに階段を上り、芯を整えて"
        "時計仕掛けを巻き、それから窓辺に座ってお茶を飲みました。"
    ),
}
VOICES = {"piper": "alloy", "kokoro": "jf_alpha"}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request(url: str, engine: str, input_text: str, fmt: str) -> tuple[http.client.HTTPConnection, Any, float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    body = {"model": engine, "voice": VOICES[engine], "input": input_text, "response_format": fmt}
    started = time.monotonic()
    conn.request("POST", "/v1/audio/speech", json.dumps(body).encode(), {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{engine}: {response.status} {response.read()[:300]!r}")
    return conn, response, started


def first_byte_ms(url: str, engine: str) -> float:
    conn, response, started = request(url, engine, FIRST[engine], "mp3")
    response.read1(65536)
    elapsed = (time.monotonic() - started) * 1000
    conn.close()
    return elapsed


def whole_stream_s(url: str, engine: str) -> float:
    conn, response, started = request(url, engine, WHOLE[engine], "wav")
    while response.read1(65536):
        pass
    elapsed = time.monotonic() - started
    conn.close()
    return elapsed


def alone(voice: Any, input_text: str) -> tuple[float, float, float]:
    """The model alone on the whole text, one call, every core: (wall s, CPU s, audio s)."""
    wall, cpu = time.monotonic(), time.process_time()
    pcm = voice.synthesize(text.normalize(input_text), 1.0, Grant(slot=0, alone=True), Cancellation()).pcm
    return time.monotonic() - wall, time.process_time() - cpu, len(pcm) / 2 / voice.rate


def loaded(engine: str) -> tuple[Any, float, float]:
    """The engine's voice loaded here: (voice, RSS MiB added by the load, by the load and a run per session)."""
    before = rss_mib()
    voice = get_engine(engine).resolve(VOICES[engine])  # type: ignore[attr-defined]
    after_load = rss_mib()
    grants = [Grant(slot=0, alone=True), *(Grant(slot=i, alone=False) for i in range(scheduler.slots))]
    for grant in grants:
        voice.synthesize(text.normalize(FIRST[engine]), 1.0, grant, Cancellation())
    return voice, after_load - before, rss_mib() - before


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def interleaved(
    runs: int, engines: list[str], measure: Callable[[str], float], idle: Callable[[], None]
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {engine: [] for engine in engines}
    for _ in range(runs):
        for engine in engines:
            found[engine].append(measure(engine))
            idle()
    return found


def row(name: str, cells: list[str]) -> None:
    print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="first-byte requests per engine")
    parser.add_argument("--pairs", type=int, default=3, help="stream / model-alone pairs per engine")
    args = parser.parse_args()
    engines = ["piper", "kokoro"]
    print(*machine(), "\n")

    memory = {engine: loaded(engine) for engine in engines}
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-kokoro-")))
    pid = serving_pid(server)

    def idle() -> None:
        settle(pid)

    try:
        for engine in engines:  # the server loads Kokoro on its first request
            first_byte_ms(server.url, engine)
            idle()
        first = interleaved(args.runs, engines, lambda engine: first_byte_ms(server.url, engine), idle)
        streamed: dict[str, list[float]] = {engine: [] for engine in engines}
        streamed_cpu: dict[str, list[float]] = {engine: [] for engine in engines}
        solo: dict[str, list[tuple[float, float, float]]] = {engine: [] for engine in engines}
        for _ in range(args.pairs):
            for engine in engines:
                solo[engine].append(alone(memory[engine][0], WHOLE[engine]))
                before = cpu_seconds(pid) if pid else 0.0
                streamed[engine].append(whole_stream_s(server.url, engine))
                idle()
                streamed_cpu[engine].append((cpu_seconds(pid) - before) if pid else 0.0)
        server_cpu = cpu_seconds(pid) if pid else 0.0
    finally:
        stop_server(server)

    print(f"loadavg at end {load()}; {args.runs} first-byte requests and {args.pairs} stream/alone pairs per engine\n")
    print("| | piper (joe, en) | kokoro (jf_alpha, ja) |")
    print("|---|---:|---:|")
    row("first sentence", [f"{len(FIRST[e])} chars" for e in engines])
    row("first byte p50 / p90, ms", [f"{p(first[e], 0.5):.0f} / {p(first[e], 0.9):.0f}" for e in engines])
    audio = {e: statistics.median(run[2] for run in solo[e]) for e in engines}
    wall = {e: statistics.median(run[0] for run in solo[e]) for e in engines}
    cpu = {e: statistics.median(run[1] / run[2] for run in solo[e]) for e in engines}
    row("whole text: audio s", [f"{audio[e]:.1f}" for e in engines])
    row("model alone: real-time factor (wall s / audio s)", [f"{wall[e] / audio[e]:.3f}" for e in engines])
    row("model alone: CPU s per audio s", [f"{cpu[e]:.3f}" for e in engines])
    ratios = {e: statistics.median(s / a[0] for s, a in zip(streamed[e], solo[e], strict=True)) for e in engines}
    row("whole stream (wav) / model alone, wall, median of pairs", [f"{ratios[e]:.3f}" for e in engines])
    cpu_ratios = {
        e: statistics.median(s / a[1] for s, a in zip(streamed_cpu[e], solo[e], strict=True)) for e in engines
    }
    row("whole stream / model alone, CPU s (server worker / this process)", [f"{cpu_ratios[e]:.3f}" for e in engines])
    row("memory: RSS after load, MiB", [f"{memory[e][1]:.0f}" for e in engines])
    row("memory: after a run per session, MiB", [f"{memory[e][2]:.0f}" for e in engines])
    cores = os.cpu_count() or 1
    row(f"capacity estimate: 1x listeners on {cores} cores", [f"{cores / cpu[e]:.1f}" for e in engines])
    print(f"\nserver worker CPU during the run: {server_cpu:.1f} s")


if __name__ == "__main__":
    main()
