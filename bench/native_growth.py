"""Native memory in use across syntheses in one process: what the soak's growth is made of.

    .venv/bin/python -m bench.native_growth [--runs 120]

The piper engine as the server runs it, no HTTP: texts of the soak's mix (cut to 600 characters),
four formats, 30 % abandoned after the third chunk. Prints glibc's heap memory in use (``mallinfo2``)
after a warm-up and every 30 syntheses: it should level off, not grow with the count.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from bench.soak import mix_text  # noqa: E402
from speech.cancellation import Cancellation, close  # noqa: E402
from speech.engines.base import SpeechRequest, get_engine  # noqa: E402

_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def heap_in_use_mib() -> float:
    gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return float(libc.mallinfo2().uordblks) / 2**20


def synthesise(rng: random.Random) -> None:
    cancel = Cancellation()
    fmt = rng.choice(["mp3", "opus", "aac", "pcm"])
    speech = SpeechRequest(model="piper", voice="alloy", input=mix_text(rng)[:600], response_format=fmt)
    stream = get_engine("piper").speak(speech, cancel)
    abandon = rng.random() < 0.3
    for index, _ in enumerate(stream.chunks):
        if abandon and index == 2:
            cancel.cancel()
            break
    close(stream.chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=120)
    args = parser.parse_args()
    rng = random.Random(1)
    for _ in range(15):
        synthesise(rng)
    base = heap_in_use_mib()
    print(f"after 15 warm-up syntheses: heap in use {base:.1f} MiB", flush=True)
    for run in range(1, args.runs + 1):
        synthesise(rng)
        if run % 30 == 0:
            now = heap_in_use_mib()
            print(f"{run} syntheses: heap in use {now:.1f} MiB ({now - base:+.1f})", flush=True)


if __name__ == "__main__":
    main()
