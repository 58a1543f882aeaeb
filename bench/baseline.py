"""Time to first byte: our streaming endpoint vs the "buffer everything, then return" Django view.

    .venv/bin/python -m bench.baseline [--runs 3]

Both servers run under gunicorn gthread on this machine with the same piper voice, both asked for
WAV, one request at a time, alternating between the two so that both see the same machine load.
For a player that starts at the first byte, time to first byte is time to first sound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.load import long_text
from bench.support.server import ROOT, free_port, start_server, stop_server

TEXTS = {
    "one sentence (36 chars)": "Hello there. This starts right away.",
    "paragraph (~280 chars)": long_text(20),
    "long paragraph (~700 chars)": long_text(50),
}


def timed(url: str, text: str) -> tuple[float, float, int]:
    """(seconds to first body byte, seconds to last, bytes)"""
    start = time.monotonic()
    payload = {"model": "piper", "voice": "alloy", "input": text, "response_format": "wav"}
    with requests.post(f"{url}/v1/audio/speech", json=payload, stream=True, timeout=300) as response:
        response.raise_for_status()
        first = None
        size = 0
        for chunk in response.iter_content(chunk_size=None):
            first = first or time.monotonic() - start
            size += len(chunk)
    assert first is not None
    return first, time.monotonic() - start, size


def start_baseline() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-b", f"127.0.0.1:{port}",
         "bench.baseline_app:application"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the baseline server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ours = start_server(Path(tempfile.mkdtemp(prefix="bench-baseline-")))
    baseline, baseline_url = start_baseline()
    try:
        print(f"load average at start {os.getloadavg()[0]:.1f}\n")
        print("| input | ours TTFB p50 | baseline TTFB p50 | baseline / ours | ours total p50 | baseline total p50 |")
        print("|---|---|---|---|---|---|")
        for name, text in TEXTS.items():
            timed(ours.url, text)  # one untimed round each: first use of this length
            timed(baseline_url, text)
            mine, theirs = [], []
            for _ in range(args.runs):
                mine.append(timed(ours.url, text))
                theirs.append(timed(baseline_url, text))
            ours_first = statistics.median(r[0] for r in mine)
            base_first = statistics.median(r[0] for r in theirs)
            print(
                f"| {name} | {ours_first * 1000:.0f} ms | {base_first * 1000:.0f} ms | "
                f"{base_first / ours_first:.1f}x | {statistics.median(r[1] for r in mine):.2f} s | "
                f"{statistics.median(r[1] for r in theirs):.2f} s |",
                flush=True,
            )
        print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    finally:
        stop_server(ours)
        os.killpg(baseline.pid, 15)
        baseline.wait(timeout=15)


if __name__ == "__main__":
    main()
