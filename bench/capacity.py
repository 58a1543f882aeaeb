"""Capacity: how many 1x listeners one server keeps fed, against what the engine's CPU allows.

    .venv/bin/python -m bench.capacity [--counts 1,2,4,6,8,10,12,14,16,18,20] [--chars 500]

Starts gunicorn as `make run` does (limits off), then ramps concurrent pcm listeners, each with a
different ~500-character text, all starting together and each playing at 1x from its own first
byte. The ramp stops at the first count where a listener runs dry (an underrun). The theoretical
limit, measured in the same run, is cores / (CPU seconds piper alone spends per second of audio
on the same texts, in this process). Memory: the worker's RSS idle, after a first stream, and at
its peak during each count. Loopback only; prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from piper.voice import PiperVoice

from bench.support.procstat import cpu_seconds, worker_pid
from bench.support.server import start_server, stop_server
from bench.ttfb import PROSE, Playback, RssSampler, listen, load, machine, open_stream, status_kib
from speech import text
from speech.conf import PIPER_VOICES
from speech.voices import spec_paths


def texts(count: int, chars: int) -> list[str]:
    """``count`` different texts of about ``chars`` characters: the prose from a different sentence each."""
    sentences = text.sentences(PROSE)
    out = []
    for index in range(count):
        ring = sentences[index % len(sentences) :] + sentences * (chars // len(PROSE) + 2)
        body = f"Listener {index + 1}. " + " ".join(ring)
        out.append(body[: body.rfind(".", 0, chars) + 1])
    return out


def engine_cpu_per_audio_second(inputs: list[str]) -> float:
    """Piper alone, as its own README runs it, in this process: CPU seconds per audio second."""
    model, config = spec_paths(PIPER_VOICES["joe"])
    voice = PiperVoice.load(model, config_path=config)
    list(voice.synthesize("Hello there."))
    cpu, audio = time.process_time(), 0.0
    for input_text in inputs:
        for chunk in voice.synthesize(text.normalize(input_text)):
            audio += len(chunk.audio_int16_bytes) / 2 / chunk.sample_rate
    return (time.process_time() - cpu) / audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,2,4,6,8,10,12,14,16,18,20")
    parser.add_argument("--chars", type=int, default=500)
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    cores = os.cpu_count() or 1

    before_ramp = engine_cpu_per_audio_second(texts(4, args.chars))
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-capacity-")))
    try:
        pid = worker_pid(server.process.pid)
        idle = status_kib(pid, "VmRSS") / 1024
        warm = open_stream(server.url, texts(1, args.chars)[0], "pcm")
        b"".join(warm.chunks())
        warm.close()
        after_first = status_kib(pid, "VmRSS") / 1024
        print(*machine(), "\n")
        print("| listeners | underruns | stall s total | worst stall s | TTFB p50 / max ms | worker CPU / audio s "
              "| worker cores | worker peak RSS MiB | loadavg |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        best, peaks = 0, {}
        for count in counts:
            before = load()
            results = [Playback() for _ in range(count)]
            go = threading.Barrier(count)
            threads = [
                threading.Thread(target=listen, args=(server.url, input_text, go, result))
                for input_text, result in zip(texts(count, args.chars), results, strict=True)
            ]
            cpu, wall = cpu_seconds(pid), time.monotonic()
            with RssSampler(pid) as sampler:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            cpu, wall = cpu_seconds(pid) - cpu, time.monotonic() - wall
            peaks[count] = sampler.peak_kib / 1024
            ttfbs = [r.ttfb * 1000 for r in results]
            underruns = sum(r.underruns for r in results)
            stalled, worst = sum(r.stalled for r in results), max(r.worst for r in results)
            print(
                f"| {count} | {underruns} | {stalled:.2f} | {worst:.2f} "
                f"| {statistics.median(ttfbs):.0f} / {max(ttfbs):.0f} | {cpu / sum(r.audio for r in results):.3f} "
                f"| {cpu / wall:.2f} | {peaks[count]:.0f} | {before} |",
                flush=True,
            )
            if underruns:
                break
            best = count
            time.sleep(2)
    finally:
        stop_server(server)

    per_audio = (before_ramp + engine_cpu_per_audio_second(texts(4, args.chars))) / 2
    limit = cores / per_audio
    print(f"\nengine alone (before and after the ramp): {per_audio:.3f} CPU s per audio s → theoretical limit "
          f"{cores} / {per_audio:.3f} = {limit:.1f} listeners; largest N without underrun: {best} "
          f"({best / limit:.0%}); loadavg {load()}")  # fmt: skip
    print(f"worker RSS: idle {idle:.0f} MiB, after one stream {after_first:.0f} MiB; peak by listeners: "
          + ", ".join(f"{n}: {mib:.0f}" for n, mib in peaks.items()))  # fmt: skip


if __name__ == "__main__":
    main()
