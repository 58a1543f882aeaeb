"""Cost bombs: one request each, what it costs the server in CPU seconds and peak memory.

    .venv/bin/python -m bench.cost_bombs [--bombs numbers,emoji] [--tree /tmp/old] [--audio-seconds 900]

Each bomb runs in a fresh process (so that its peak RSS is its own): the piper engine as the server
runs it, no HTTP and no cache, the default voice loaded and warmed first; the bomb's text (at most
4,096 characters, the API's limit) is streamed to the end as pcm. Prints, per bomb, the CPU seconds
of the synthesis, the process's RSS once warm and its peak (``ru_maxrss``), the audio made, and the
count and the longest of the model's runs (phoneme ids in, audio out). ``--tree`` runs another
checkout's code (``git worktree add /tmp/old HEAD~1``) with this bench; ``--audio-seconds`` sets
``SPEECH_MAX_AUDIO_SECONDS`` (default: the site's 900).
``four`` runs four bombs at once in one process, as four clients would.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4096

_ENGLISH = (
    "The old house stood at the end of the lane, where the hedges gave way to open fields. "
    "Every morning the light came in low across the kitchen table, and the kettle sang before anyone "
    "was properly awake. She liked to read the paper there, slowly, while the rest of the street "
    "went about its business. "
)


def _repeat(unit: str) -> str:
    return (unit * (LIMIT // len(unit) + 1))[:LIMIT]


BOMBS: dict[str, str] = {
    # Ordinary prose: what a request of the maximum length normally costs.
    "english": _repeat(_ENGLISH),
    # Each group is read as a number in words: "one billion two hundred and thirty-four million...".
    "numbers": "1234567890 " * (LIMIT // 11),
    "dollars": "$9,876,543.21 " * (LIMIT // 14),
    # Invisible marks vanish in normalising: one 3,072-letter "word", spelt letter by letter.
    "rtl": "abc\u200f" * (LIMIT // 4),
    # Each emoji and each CJK character is read by its name by an English voice.
    "emoji": "\N{GRINNING FACE}" * LIMIT,
    "cjk": _repeat("\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5"),
    # Words with no punctuation at all: no sentence or clause end to cut at.
    "unpunctuated": _repeat("the quick brown fox jumps over the lazy dog "),
}
FOUR = ("numbers", "dollars", "rtl", "emoji")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(names: list[str], one_by_one: bool = False) -> dict[str, float]:
    """In the child: warm the voice, then stream each named bomb (at once, one thread each; or one after
    the other: the peak is then the largest one request reaches)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from speech.cancellation import Cancellation, close
    from speech.engines import piper
    from speech.engines.base import SpeechRequest, get_engine

    engine = get_engine("piper")
    assert isinstance(engine, piper.PiperEngine)
    local = engine.resolve("alloy")
    runs = {"count": 0, "ids": 0, "samples": 0}
    run = piper._CancellableSession.run

    def counted(self: piper._CancellableSession, output_names: object, feeds: dict[str, object]) -> object:
        result = run(self, output_names, feeds)
        runs["count"] += 1
        runs["ids"] = max(runs["ids"], int(feeds["input"].shape[1]))  # type: ignore[attr-defined]
        runs["samples"] = max(runs["samples"], int(result[0].size))
        return result

    def speak(text: str) -> int:
        request = SpeechRequest(model="piper", voice="alloy", input=text, response_format="pcm")
        stream = engine.speak(request, Cancellation())
        made = 0
        try:
            for chunk in stream.chunks:
                made += len(chunk)
        finally:
            close(stream.chunks)
        return made

    speak("Hello there. A warm-up sentence or two, so that every session has run once.")
    piper._CancellableSession.run = counted  # type: ignore[method-assign]
    warm_rss, cpu, wall = _rss_mib(), _cpu(), time.monotonic()
    made: list[int] = []
    threads = [threading.Thread(target=lambda t=BOMBS[name]: made.append(speak(t))) for name in names]
    for thread in threads:
        thread.start()
        if one_by_one:
            thread.join()
    for thread in threads:
        thread.join()
    return {
        "cpu_s": round(_cpu() - cpu, 1),
        "wall_s": round(time.monotonic() - wall, 1),
        "warm_mib": round(warm_rss),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "audio_s": round(sum(made) / 2 / local.rate, 1),
        "runs": runs["count"],
        "largest_run_ids": runs["ids"],
        "largest_run_s": round(runs["samples"] / local.rate, 1),
    }


def measure(bomb: str, tree: Path, audio_seconds: str | None) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    if audio_seconds:
        env["SPEECH_MAX_AUDIO_SECONDS"] = audio_seconds
    names = ",".join(FOUR) if bomb == "four" else bomb
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", names],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{bomb}: the child failed ({done.returncode})")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bombs", default=",".join([*BOMBS, "four"]))
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code runs the bombs")
    parser.add_argument("--audio-seconds", default=None, help="SPEECH_MAX_AUDIO_SECONDS for the run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--one-by-one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child.split(","), args.one_by_one)))
        return
    print(f"tree {args.tree}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")
    print("| bomb | chars | CPU s | wall s | audio s | model runs | longest run: ids / audio s | warm / peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for bomb in args.bombs.split(","):
        row = measure(bomb, args.tree.resolve(), args.audio_seconds)
        chars = sum(len(BOMBS[name]) for name in FOUR) if bomb == "four" else len(BOMBS[bomb])
        print(
            f"| {bomb} | {chars:,} | {row['cpu_s']} | {row['wall_s']} | {row['audio_s']} | {row['runs']} "
            f"| {row['largest_run_ids']} / {row['largest_run_s']} | {row['warm_mib']} / {row['peak_mib']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
