"""Soak: minutes of mixed traffic against one server; memory, files and threads must stay flat.

    .venv/bin/python -m bench.soak [--minutes 10] [--clients 6]

One server with both engines (piper locally, the upstream engine against the fake upstream in its
own process). ``--clients`` threads loop over a mix: short and long local streams read to the end,
streams abandoned at a random point, SSE, proxied streams, proxied streams abandoned, bad requests.
Every 30 s it prints the worker's RSS, open files and threads; at the end, the trend of each over
the second half (after warm-up), which should be about zero. Loopback only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from bench.load import KEY, long_text, serve_upstream
from tests.support.procstat import Usage, usage, worker_pid
from tests.support.server import Server, start_server, stop_server

SHORT = "Hello there. This is a short answer."


def one_request(server: Server, rng: random.Random) -> str:
    kind = rng.choice(["short", "long", "abandon", "sse", "proxied", "proxied-abandon", "bad"])
    url = f"{server.url}/v1/audio/speech"
    payload: dict[str, object] = {"model": "piper", "voice": "alloy", "input": SHORT}
    if kind == "long" or kind == "abandon":
        payload["input"] = long_text(20)
    if kind == "sse":
        payload["stream_format"] = "sse"
    if kind.startswith("proxied"):
        payload["model"] = "tts-1"
    if kind == "bad":
        payload["voice"] = "nobody"
    payload["response_format"] = rng.choice(["mp3", "opus", "pcm", "aac"])
    with requests.post(url, json=payload, stream=True, timeout=120) as response:
        expected = 400 if kind == "bad" else 200
        if response.status_code != expected:
            return f"{kind}: HTTP {response.status_code}"
        budget = rng.uniform(0.2, 3.0) if kind.endswith("abandon") else float("inf")
        start = time.monotonic()
        for _ in response.iter_content(chunk_size=None):
            if time.monotonic() - start > budget:
                break
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    upstream = multiprocessing.Process(target=serve_upstream, args=(child,), daemon=True)
    upstream.start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": parent.recv()}
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-soak-")), env)
    done: Counter[str] = Counter()
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                done[one_request(server, rng)] += 1
            except requests.RequestException as error:
                done[f"error: {type(error).__name__}"] += 1

    try:
        pid = worker_pid(server.process.pid)
        samples: list[tuple[float, Usage]] = [(0.0, usage(pid))]
        threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        start = time.monotonic()
        print("| minute | requests | failures | RSS MB | fds | threads |\n|---|---|---|---|---|---|")
        next_print = 0.0
        while (elapsed := time.monotonic() - start) < args.minutes * 60:
            time.sleep(1)
            samples.append((elapsed, usage(pid)))
            if elapsed >= next_print:
                failures = sum(count for kind, count in done.items() if ":" in kind)
                now = samples[-1][1]
                print(
                    f"| {elapsed / 60:.1f} | {sum(done.values())} | {failures} | "
                    f"{now.rss_mb:.0f} | {now.fds} | {now.threads} |",
                    flush=True,
                )
                next_print += 30
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
        time.sleep(2)
        samples.append((time.monotonic() - start, usage(pid)))
        assert worker_pid(server.process.pid) == pid, "the worker was restarted"
    finally:
        stop_server(server)
        parent.send("stop")
        upstream.join(timeout=10)

    half = [(t, u) for t, u in samples if t >= samples[-1][0] / 2]
    times = [t / 60 for t, _ in half]

    def slope(values: list[float]) -> float:
        return statistics.linear_regression(times, values).slope if len(set(times)) > 1 else 0.0

    print(f"\nrequests by kind: {dict(sorted(done.items()))}")
    print(
        f"second half trend per minute: RSS {slope([u.rss_mb for _, u in half]):+.2f} MB, "
        f"fds {slope([float(u.fds) for _, u in half]):+.2f}, threads {slope([float(u.threads) for _, u in half]):+.2f}"
    )
    first, last = samples[0][1], samples[-1][1]
    print(f"start → end: RSS {first.rss_mb:.0f} → {last.rss_mb:.0f} MB, fds {first.fds} → {last.fds}, "
          f"threads {first.threads} → {last.threads}")  # fmt: skip


if __name__ == "__main__":
    main()
