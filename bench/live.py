"""Live text: first audio after the first complete sentence, and gaps between sentences, at 10, 25 and 100 words/s.

    .venv/bin/python -m bench.live                       # gunicorn, 5 runs per rate
    .venv/bin/python -m bench.live --server uvicorn --runs 10 --rates 10,25,100

A host view (tests/host_site/live.py) answers with ``SpeechResponse`` over a generator that yields an
LLM-like reply word by word (each word with the space before it) at the given rate, noting when it
hands over each fragment. The client reads raw PCM and plays it at 1x from its first byte:

- first audio: from the moment the first sentence's last fragment was taken (``after end``), and
  from the moment the next fragment showed that sentence complete (``after known``: "3." might have
  become "3.5"), to the first audio byte at the client. Same machine, one monotonic clock.
- gaps: the listener's silences after the first byte, each a moment its audio ran out before more
  arrived (text faster than speech must never leave one). ``lead`` is the audio in hand, played
  1x from the first byte, when the text's last fragment was taken.

Not a test: it prints figures for BENCHMARKS.md. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.support.server import Server, start_server, stop_server

PCM_RATE = 24_000
REPLY = (
    "Sure, here is a short story about the sea. The boat left the harbour a little after nine, and by "
    "noon the coast was a grey line behind it. Dr. Alder counted the gulls as they followed the wake. "
    "Her brother, who had made this crossing every spring for twenty years, slept in the sun. "
    "At three the wind turned, and the sails had to come down. They reached the island before dark."
)
GAP = 0.005  # silences shorter than this are the client's own scheduling, not the server's


@dataclass
class Run:
    after_end: float  # first byte - the first sentence's last fragment
    after_known: float  # first byte - the fragment that showed the sentence complete
    gaps: list[float]
    lead: float


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def silences(arrivals: list[tuple[float, int]]) -> tuple[list[float], float]:
    """A listener playing at 1x from the first byte: its gaps (a chunk arriving after the audio ran out),
    and when it would run dry at the end."""
    runs_dry, gaps, received = arrivals[0][0], [], 0
    for at, size in arrivals:
        if at > runs_dry + GAP and received:
            gaps.append(at - runs_dry)
        runs_dry = max(runs_dry, at) + size / 2 / PCM_RATE
        received += size
    return gaps, runs_dry


def whole(server: Server) -> Run:
    """The same text sent at once to the REST endpoint: what this machine's synthesis gives anyway."""
    body = {"model": "piper", "voice": "alloy", "input": REPLY, "response_format": "pcm"}
    arrivals: list[tuple[float, int]] = []
    sent = time.monotonic()
    with requests.post(f"{server.url}/v1/audio/speech", json=body, stream=True, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=None):
            arrivals.append((time.monotonic(), len(chunk)))
    gaps, _ = silences(arrivals)
    return Run(after_end=arrivals[0][0] - sent, after_known=arrivals[0][0] - sent, gaps=gaps, lead=0.0)


def one(server: Server, wps: float, work: Path) -> Run:
    log = work / f"source-{time.monotonic_ns()}.log"
    params = {"text": REPLY, "wps": wps, "size": 0, "format": "pcm", "log": str(log), "model": "piper"}
    arrivals: list[tuple[float, int]] = []
    with requests.get(f"{server.url}/live/speak", params=params, stream=True, timeout=300) as response:  # type: ignore[arg-type]
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=None):
            arrivals.append((time.monotonic(), len(chunk)))
    taken = {event["taken"]: event["t"] for event in map(json.loads, log.read_text().splitlines()) if "taken" in event}
    words = re.findall(r"\s*\S+", REPLY)
    first_end = next(index for index, word in enumerate(words) if word.rstrip().endswith("."))
    first_byte = arrivals[0][0]
    gaps, _ = silences(arrivals)
    last_taken = max(taken.values())
    played_by_then = max(0.0, last_taken - first_byte) - sum(gaps)
    in_hand = sum(size for at, size in arrivals if at <= last_taken) / 2 / PCM_RATE
    return Run(
        after_end=first_byte - taken[first_end],
        after_known=first_byte - taken[first_end + 1],
        gaps=gaps,
        lead=in_hand - played_by_then,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="gunicorn", choices=["gunicorn", "uvicorn", "daphne"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rates", default="10,25,100", help="words per second, comma-separated")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    env = {"DJANGO_SETTINGS_MODULE": "tests.host_site.live_settings"}
    server = start_server(work, env, args.server)
    try:
        one(server, 100, work)  # the first request of a process pays for what warm-up leaves
        results = {f"{rate:g}": [one(server, rate, work) for _ in range(args.runs)] for rate in rates}
        results["REST, whole text at once (first byte from the request)"] = [whole(server) for _ in range(args.runs)]
    finally:
        stop_server(server)
    print(f"# bench.live: {args.server}, {args.runs} runs per rate, {len(REPLY.split())} words, pcm")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print()
    print("| words/s | first audio after end, ms p50 / p95 | after known, ms p50 / p95 "
          "| gaps > 5 ms (all runs) | longest gap, ms p50 / p95 | lead at text end, s p50 |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for rate, runs in results.items():
        end = [run.after_end * 1000 for run in runs]
        known = [run.after_known * 1000 for run in runs]
        longest = [max(run.gaps, default=0.0) * 1000 for run in runs]
        gaps = sum(len(run.gaps) for run in runs)
        lead = statistics.median(run.lead for run in runs) if rate[0].isdigit() else float("nan")
        print(
            f"| {rate} | {percentile(end, 50):.0f} / {percentile(end, 95):.0f} "
            f"| {percentile(known, 50):.0f} / {percentile(known, 95):.0f} | {gaps} "
            f"| {percentile(longest, 50):.0f} / {percentile(longest, 95):.0f} | {lead:.1f} |"
        )


if __name__ == "__main__":
    main()
