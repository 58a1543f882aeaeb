"""Native memory in use across syntheses in one process: what the soak's growth is made of.

    .venv/bin/python -m bench.native_growth [--runs 120] [--engine kokoro]

An engine as the server runs it, no HTTP: texts of the soak's mix (piper: cut to 600 characters;
Kokoro: the soak's Japanese texts and voices), four formats, 30 % abandoned after the third chunk.
Prints glibc's heap memory in use (``mallinfo2``) and the process's RSS after a warm-up and every 30
syntheses: both should level off, not grow with the count.
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

from bench.soak import KOKORO_VOICES, japanese_text, mix_text  # noqa: E402
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


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthesise(rng: random.Random, engine: str) -> None:
    cancel = Cancellation()
    fmt = rng.choice(["mp3", "opus", "aac", "pcm"])
    if engine == "kokoro":
        voice, text = rng.choice(KOKORO_VOICES), japanese_text(rng)
    else:
        voice, text = "alloy", mix_text(rng)[:600]
    speech = SpeechRequest(model=engine, voice=voice, input=text, response_format=fmt)
    stream = get_engine(engine).speak(speech, cancel)
    abandon = rng.random() < 0.3
    for index, _ in enumerate(stream.chunks):
        if abandon and index == 2:
            cancel.cancel()
            break
    close(stream.chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--engine", choices=["piper", "kokoro"], default="piper")
    args = parser.parse_args()
    rng = random.Random(1)
    for _ in range(15):
        synthesise(rng, args.engine)
    base, base_rss = heap_in_use_mib(), rss_mib()
    print(f"after 15 warm-up syntheses: heap in use {base:.1f} MiB, RSS {base_rss:.0f} MiB", flush=True)
    for run in range(1, args.runs + 1):
        synthesise(rng, args.engine)
        if run % 30 == 0:
            now, rss = heap_in_use_mib(), rss_mib()
            heap = f"heap in use {now:.1f} MiB ({now - base:+.1f})"
            print(f"{run} syntheses: {heap}, RSS {rss:.0f} MiB ({rss - base_rss:+.0f})", flush=True)


if __name__ == "__main__":
    main()
