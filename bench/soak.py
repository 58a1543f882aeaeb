"""Soak: minutes of mixed traffic against one server; memory, files and threads must stay flat.

    .venv/bin/python -m bench.soak [--minutes 10] [--clients 6]
    .venv/bin/python -m bench.soak --minutes 60 --mix [--warm-up 10]

One server with both engines (piper locally, the upstream engine against the fake upstream in its
own process). ``--clients`` threads loop over a mix: short and long local streams read to the end,
streams abandoned at a random point, SSE, proxied streams, proxied streams abandoned, bad requests.

``--mix`` is the site as ``make run`` serves it (defaults: audio cache on, limits on) under an open
arrival of one request every 1-2 s from 16 loopback addresses: every format, 20-4,096 characters
(log-uniform), 25 % repeats, 10 % SSE, 10 % hang-ups, 10 % Range requests on earlier texts.
``--kokoro 0.2`` sends that share of the new texts to the Kokoro engine instead (Japanese, 10-400
characters, its five voices), so both engines stay loaded. ``--max-requests N`` hands the worker
over to a new one after N requests (speech/recycling.py); memory is then all workers' together.

Every 30 s it prints the worker's RSS, open files and threads; at the end, the trend of each after
warm-up, which should be about zero, and where the worker's resident memory lies (glibc arenas,
other anonymous mappings, files). Loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from bench.load import KEY, SENTENCES, long_text, serve_upstream
from bench.support.procstat import Usage, worker_pid, worker_pids, workers_usage
from bench.support.server import Server, start_server, stop_server

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


FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
JAPANESE = (
    "古い灯台は崖の端に立っていました。",
    "毎晩、そのランプは暗い海の上をゆっくりと回りました。",
    "通り過ぎる船は岩の場所を知ることができました。",
    "灯台守は夕暮れに階段を上り、芯を整えました。",
    "それから窓辺に座ってお茶を飲みました。",
    "今日はとても良い天気ですね。",
)
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
WORDS = " ".join(SENTENCES).replace(".", "").replace(",", "").split()


def mix_text(rng: random.Random) -> str:
    """A fresh text of 20-4,096 characters (log-uniform): shuffled words in sentences."""
    chars = int(math.exp(rng.uniform(math.log(20), math.log(4096))))
    sentences: list[str] = []
    while sum(len(s) + 1 for s in sentences) < chars:
        words = rng.choices(WORDS, k=rng.randint(4, 18))
        sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", "!"]))
    return " ".join(sentences)[:chars].rsplit(" ", 1)[0] + "."


def japanese_text(rng: random.Random) -> str:
    """A Japanese text of 10-400 characters for the Kokoro engine."""
    chars = int(math.exp(rng.uniform(math.log(10), math.log(400))))
    sentences = [rng.choice(JAPANESE)]
    while sum(map(len, sentences)) < chars:
        sentences.append(rng.choice(JAPANESE))
    return "".join(sentences)


Said = tuple[str, str, str, str]  # model, voice, input, format


def one_mixed_request(port: int, rng: random.Random, seen: list[Said], kokoro: float = 0.0) -> str:
    """One request of the --mix soak: the kind it was and how it went."""
    roll = rng.random()
    if seen and roll < 0.35:  # 25 % repeats, 10 % byte ranges of an earlier text
        kind = "repeat" if roll < 0.25 else "range"
        model, voice, input_text, fmt = rng.choice(seen)
    else:
        kind = "sse" if roll < 0.45 else "hang-up" if roll < 0.55 else "new"
        if rng.random() < kokoro:
            model, voice, input_text = "kokoro", rng.choice(KOKORO_VOICES), japanese_text(rng)
        else:
            model, voice, input_text = "piper", "alloy", mix_text(rng)
        fmt = rng.choice(FORMATS)
        if kind == "new":
            seen.append((model, voice, input_text, fmt))
    if model == "kokoro":
        kind = f"kokoro {kind}"
    body: dict[str, object] = {"model": model, "voice": voice, "input": input_text, "response_format": fmt}
    headers = {"Content-Type": "application/json"}
    if kind.endswith("sse"):
        body["stream_format"] = "sse"
    if kind.endswith("range"):
        first = rng.randint(0, 20_000)
        headers["Range"] = f"bytes={first}-{first + rng.randint(0, 200_000)}"
    source = f"127.0.0.{rng.randint(2, 17)}"  # 16 clients, each within the default per-client limits
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300, source_address=(source, 0))
    try:
        conn.request("POST", "/v1/audio/speech", json.dumps(body), headers)
        response = conn.getresponse()
        if response.status not in (200, 206, 416):
            code = json.loads(response.read() or b"{}").get("error", {}).get("code")
            return f"{kind}: HTTP {response.status} {code}"
        budget = rng.uniform(0.1, 3.0) if kind.endswith("hang-up") else math.inf
        start = time.monotonic()
        while response.read1(65536) and time.monotonic() - start < budget:
            pass
        return kind
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--mix", action="store_true", help="open arrivals of every kind, site defaults")
    parser.add_argument("--warm-up", type=float, help="minutes left out of the trend (default: the first half)")
    parser.add_argument("--samples", type=Path, help="write every 1-second sample here (CSV: minute, RSS MB)")
    parser.add_argument("--kokoro", type=float, default=0.0, help="with --mix: the share of new texts for Kokoro")
    parser.add_argument(
        "--max-requests", type=int, default=0, help="hand the worker over after this many requests (0: never)"
    )
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    upstream = multiprocessing.Process(target=serve_upstream, args=(child,), daemon=True)
    upstream.start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": parent.recv(), "GUNICORN_MAX_REQUESTS": str(args.max_requests)}
    if args.mix:  # the site's defaults, as `make run` serves it
        defaults = ("SPEECH_RATE_LIMIT", "SPEECH_MAX_STREAMS_PER_CLIENT", "SPEECH_MAX_STREAMS")
        env.update({"SPEECH_CACHE_AUDIO": "1", **dict.fromkeys(defaults, "")})
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-soak-")), env)
    done: Counter[str] = Counter()
    stop = threading.Event()
    port = int(server.url.rsplit(":", 1)[1])

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                done[one_request(server, rng)] += 1
            except requests.RequestException as error:
                done[f"error: {type(error).__name__}"] += 1

    def mixed(rng: random.Random, seen: list[Said]) -> None:
        try:
            done[one_mixed_request(port, rng, seen, args.kokoro)] += 1
        except (OSError, http.client.HTTPException) as error:
            done[f"error: {type(error).__name__}"] += 1

    def arrivals() -> None:
        rng = random.Random(1)
        seen: list[Said] = []
        while not stop.wait(rng.uniform(1.0, 2.0)):
            seed = rng.random()
            threading.Thread(target=mixed, args=(random.Random(seed), seen), daemon=True).start()

    try:
        master = server.process.pid
        first_worker = worker_pid(master)
        samples: list[tuple[float, Usage]] = [(0.0, workers_usage(master))]
        if args.mix:
            threads = [threading.Thread(target=arrivals, daemon=True)]
        else:
            threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        start = time.monotonic()
        print("| minute | requests | failures | RSS MB | fds | threads |\n|---|---|---|---|---|---|")
        next_print = 0.0
        while (elapsed := time.monotonic() - start) < args.minutes * 60:
            time.sleep(1)
            samples.append((elapsed, workers_usage(master)))
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
        samples.append((time.monotonic() - start, workers_usage(master)))
        last_worker = worker_pids(master)[-1]  # the newest, while an old one may still be finishing
        assert args.max_requests or worker_pid(master) == first_worker, "the worker was restarted"
        where = resident(last_worker)
    finally:
        stop_server(server)
        parent.send("stop")
        upstream.join(timeout=10)

    if args.samples:
        args.samples.write_text("".join(f"{t / 60:.4f},{u.rss_mb:.1f}\n" for t, u in samples))
    warm_up = samples[-1][0] / 2 if args.warm_up is None else args.warm_up * 60
    half = [(t, u) for t, u in samples if t >= warm_up]
    times = [t / 60 for t, _ in half]

    def slope(values: list[float]) -> float:
        return statistics.linear_regression(times, values).slope if len(set(times)) > 1 else 0.0

    print(f"\nrequests by kind: {dict(sorted(done.items()))}")
    print(
        f"trend per minute after {warm_up / 60:.1f} min of warm-up: RSS {slope([u.rss_mb for _, u in half]):+.2f} MB, "
        f"fds {slope([float(u.fds) for _, u in half]):+.2f}, threads {slope([float(u.threads) for _, u in half]):+.2f}"
    )
    first, last = samples[0][1], samples[-1][1]
    print(f"start → end: RSS {first.rss_mb:.0f} → {last.rss_mb:.0f} MB, fds {first.fds} → {last.fds}, "
          f"threads {first.threads} → {last.threads}")  # fmt: skip
    print(f"peak RSS {max(u.rss_mb for _, u in samples):.0f} MB; workers: {handovers(server.log_text()) + 1}")
    print("worker resident MB by kind: " + ", ".join(f"{kind} {mb:.0f}" for kind, mb in where.items()))


def handovers(log: str) -> int:
    return log.count("Relieved by a successor")


def resident(pid: int) -> dict[str, float]:
    """The worker's resident memory by kind, from /proc/PID/smaps.

    glibc's secondary malloc arenas are anonymous mappings aligned to their 64 MiB reservation;
    "[heap]" is the main arena; other anonymous mappings are large malloc blocks, Python's and
    ONNX's own arenas and thread stacks; the rest is files (libraries, the model).
    """
    kinds: dict[str, float] = {}
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            start = int(fields[0].split("-")[0], 16)
            name = fields[5] if len(fields) > 5 else ""
            if name == "[heap]":
                kind = "main arena"
            elif name.startswith("["):
                kind = "other"
            elif name:
                kind = "files"
            else:
                kind = "malloc arenas" if start % (64 << 20) == 0 else "other anonymous"
        elif fields[0] == "Rss:":
            kinds[kind] = kinds.get(kind, 0.0) + int(fields[1]) / 1024
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


if __name__ == "__main__":
    main()
