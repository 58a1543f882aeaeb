"""Memory per loaded piper voice and the time to load one, through the engine's own loader.

    python -m bench.voices               # 4 voices, prints Markdown for BENCHMARKS.md
    python -m bench.voices --voices 6

Each voice is the joe model under another name in a temporary voice store, so every load is a
real one (own sessions, own weights). RSS is read from /proc after loading, after the first
synthesis on each session (ONNX's working memory), and after the LRU drops voices.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.test import override_settings  # noqa: E402

from bench.support.fake_hub import HubVoice, add_voice, language  # noqa: E402
from speech.cancellation import Cancellation  # noqa: E402
from speech.engines.piper import PiperEngine  # noqa: E402
from speech.scheduler import Grant, scheduler  # noqa: E402

SENTENCE = "The voice store holds every language a site needs, and loads each voice when it is first asked for."


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=4)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="bench-voices-"))
    names = [f"en_US-bench{i}-medium" for i in range(args.voices)]
    for name in [*names, "en_US-extra-medium"]:
        add_voice(store, HubVoice(name, language("en_US", "English", "English")))
    grants = [Grant(slot=0, alone=True), *(Grant(slot=i, alone=False) for i in range(scheduler.slots))]
    settings = {"VOICES_DIR": str(store), "MAX_LOADED_VOICES": args.voices}
    with override_settings(SPEECH=settings):
        engine = PiperEngine(alias="bench")
        gc.collect()
        start = rss_mib()
        rows, loads, loaded_costs, warm_costs = [], [], [], []
        for name in names:
            before = rss_mib()
            began = time.perf_counter()
            voice = engine.resolve(name)
            loads.append(time.perf_counter() - began)
            loaded = rss_mib()
            for grant in grants:
                voice.synthesize(SENTENCE, 1.0, grant, Cancellation())
            warm = rss_mib()
            loaded_costs.append(loaded - before)
            warm_costs.append(warm - before)
            rows.append(
                f"| {name} | {loads[-1]:.2f} | {loaded - before:.0f} | {warm - before:.0f} | {warm - start:.0f} |"
            )
        del voice
        with override_settings(SPEECH={**settings, "MAX_LOADED_VOICES": 1}):
            engine.resolve("en_US-extra-medium")  # one more: the LRU drops every other voice
        gc.collect()
        dropped = rss_mib()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # what glibc still holds of the dropped voices' memory
        trimmed = rss_mib()
    sessions = 1 + scheduler.slots
    print(f"{args.voices} voices (joe's 63 MB model each), {sessions} sessions per voice, {os.cpu_count()} cores")
    print()
    print("| voice | load s | RSS after load MiB | after first synthesis per session MiB | total over start MiB |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    loaded_cost, warm_cost = statistics.median(loaded_costs), statistics.median(warm_costs)
    print(
        f"median load {statistics.median(loads):.2f} s; median cost per voice {loaded_cost:.0f} MiB loaded, "
        f"{warm_cost:.0f} MiB once each session has run; "
        f"RSS {warm - start:.0f} MiB over start with {args.voices} loaded, {dropped - start:.0f} MiB once "
        f"MAX_LOADED_VOICES=1 dropped them for a fresh one, {trimmed - start:.0f} MiB after malloc_trim"
    )
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
