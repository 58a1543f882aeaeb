"""A whole stream against piper alone: total time of a wav stream vs piper's own synthesis.

    .venv/bin/python -m bench.efficiency [--runs 7] [--chars 1000]

Starts gunicorn as `make run` does, loads piper the way its README does in this process, then
alternates: piper alone synthesises the text (all of it, in one call), then the server streams the
same text as wav over HTTP, read to the end. Prints each pair, the medians and their ratio, and
the stream's time to first byte. Interleaving makes the ratio fair on a shared machine; the load
average is printed beside it. Loopback only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from piper.voice import PiperVoice

from bench.support.server import start_server, stop_server
from bench.ttfb import load, machine, open_stream, sample
from speech import text
from speech.conf import PIPER_VOICES
from speech.voices import spec_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chars", type=int, default=1000)
    args = parser.parse_args()
    input_text = sample(args.chars)

    model, config = spec_paths(PIPER_VOICES["joe"])
    voice = PiperVoice.load(model, config_path=config)
    list(voice.synthesize("Hello there."))
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-efficiency-")))
    alone, streamed, first = [], [], []
    try:
        print(*machine(), f"\n{len(input_text)} characters, wav, {args.runs} interleaved pairs\n")
        print("| run | piper alone s | stream total s | ratio | stream first byte ms | loadavg |")
        print("|---:|---:|---:|---:|---:|---|")
        for run in range(args.runs):
            before = load()
            started = time.monotonic()
            b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text.normalize(input_text)))
            alone.append(time.monotonic() - started)
            stream = open_stream(server.url, input_text, "wav")
            b"".join(stream.chunks())
            streamed.append(time.monotonic() - stream.started)
            first.append((stream.first_byte - stream.started) * 1000)
            stream.close()
            print(f"| {run + 1} | {alone[-1]:.2f} | {streamed[-1]:.2f} | {streamed[-1] / alone[-1]:.2f} "
                  f"| {first[-1]:.0f} | {before} |", flush=True)  # fmt: skip
    finally:
        stop_server(server)
    ratio = statistics.median(streamed) / statistics.median(alone)
    pairs = statistics.median(s / a for s, a in zip(streamed, alone, strict=True))
    print(f"\nmedians: piper alone {statistics.median(alone):.2f} s, stream {statistics.median(streamed):.2f} s, "
          f"ratio {ratio:.3f}; median of per-pair ratios {pairs:.3f}; "
          f"first byte p50 {statistics.median(first):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
