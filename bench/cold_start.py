"""Cold start of a host site: the first speech request after the server starts, with the app's warm-up at
start (SPEECH["WARM_UP"] = "auto", the default) and without it (False).

    .venv/bin/python -m bench.cold_start                  # gunicorn, uvicorn, daphne, runserver; 3 runs each
    .venv/bin/python -m bench.cold_start --runs 5 --servers uvicorn

The site is the docs' host-site guide followed in a new `startproject` site (bench/support/docs_site.py),
DEBUG off. For each server and setting, each run starts the server and times, from the moment it first
answers a page: (a) a speech request sent at once, to its first audio byte; then, in a new server that
has gone idle after start, (b) the first speech request to its first audio byte. Not a test: it prints
Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from bench.support.docs_site import SERVERS, reader_site, reader_venv, serve
from bench.support.procstat import wait_idle, worker_pid
from bench.support.server import Server, page_config, stop_server

BODY = {"model": "piper", "voice": "alloy", "input": "The first words this server says."}


def first_audio(server: Server) -> float:
    browser = requests.Session()
    token = page_config(browser, f"{server.url}/page")["pageToken"]
    started = time.monotonic()
    url = f"{server.url}/tts/v1/audio/speech"
    with browser.post(url, json=BODY, headers={"X-Speech-Page": token}, stream=True, timeout=120) as response:
        response.raise_for_status()
        next(response.iter_content(chunk_size=None))
    return time.monotonic() - started


def serving_pid(server: Server, kind: str) -> int:
    return worker_pid(server.process.pid) if kind == "gunicorn" else server.process.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        site = reader_site(reader_venv(Path(work)), Path(work) / "site", OPENAI_API_KEY="sk-bench")
        site.append("settings.py", 'DEBUG = False\nALLOWED_HOSTS = ["127.0.0.1"]\n')
        site.run(site.python, "manage.py", "collectstatic", "--noinput", "-v", "0")
        settings = site.root / "mysite" / "settings.py"
        plain = settings.read_text()
        print(f"loadavg {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
        print("| server | WARM_UP | up (s) | first audio, sent at once (s) | first audio, after idle (s) |")
        print("|---|---|---:|---:|---:|")
        for kind in args.servers.split(","):
            for warm in ("auto", False):
                settings.write_text(plain + f'SPEECH = {{**globals().get("SPEECH", {{}}), "WARM_UP": {warm!r}}}\n')
                up, at_once, after_idle = [], [], []
                for _ in range(args.runs):
                    server, seconds = serve(site, kind)
                    try:
                        up.append(seconds)
                        at_once.append(first_audio(server))
                    finally:
                        stop_server(server)
                    server, _ = serve(site, kind)
                    try:
                        wait_idle(serving_pid(server, kind))
                        after_idle.append(first_audio(server))
                    finally:
                        stop_server(server)
                med = statistics.median
                print(f"| {kind} | {warm} | {med(up):.2f} | {med(at_once):.2f} | {med(after_idle):.2f} |")
        settings.write_text(plain)


if __name__ == "__main__":
    main()
