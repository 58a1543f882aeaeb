"""First byte per real client, against a site with a key and CORS for another origin: the README's table.

    python -m bench.clients [--runs 5]

Starts gunicorn on a free loopback port and a page on another origin for the browser clients (npm
packages from tests/e2e/npm: `make npm`). Each client speaks the same ~300-character text; the time is
from the call to the first audio byte the client hands over, median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.metadata
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openai
import requests
from playwright.sync_api import sync_playwright

from bench.support.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.support.other_site import E2E, serve
from bench.support.player import poll
from bench.support.server import Server, start_server, stop_server

KEY = "sk-bench-clients-0123"
TEXT = (
    "This page lives on another site. It asks the speech server for audio, and it plays the first words "
    "while the rest is still being made. A few more sentences keep the stream going for a while, so that "
    "playback clearly starts before the last byte arrives."
)


def openai_sync(site: Server) -> float:
    client = openai.OpenAI(base_url=f"{site.url}/v1", api_key=KEY, max_retries=0)
    start = time.perf_counter()
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
    ) as response:
        next(response.iter_bytes(chunk_size=None))
        return time.perf_counter() - start


def openai_async(site: Server) -> float:
    async def first_byte() -> float:
        client = openai.AsyncOpenAI(base_url=f"{site.url}/v1", api_key=KEY, max_retries=0)
        start = time.perf_counter()
        async with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
        ) as response:
            async for _ in response.iter_bytes(chunk_size=None):
                return time.perf_counter() - start
        raise RuntimeError("no audio")

    return asyncio.run(first_byte())


def openai_sse(site: Server) -> float:
    client = openai.OpenAI(base_url=f"{site.url}/v1", api_key=KEY, max_retries=0)
    start = time.perf_counter()
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and base64.b64decode(json.loads(line[6:]).get("audio", "")):
                return time.perf_counter() - start
    raise RuntimeError("no audio event")


def requests_first_byte(url: str, body: dict[str, object], headers: dict[str, str]) -> float:
    start = time.perf_counter()
    with requests.post(url, json=body, headers=headers, stream=True, timeout=120) as response:
        response.raise_for_status()
        next(response.iter_content(chunk_size=None))
        return time.perf_counter() - start


def home_assistant(site: Server) -> float:
    body = {"model": "tts-1", "input": TEXT, "voice": "nova", "response_format": "wav", "speed": 1.0}
    return requests_first_byte(f"{site.url}/v1/audio/speech", body, {"Authorization": f"Bearer {KEY}"})


def open_webui(site: Server) -> float:
    headers = {"Authorization": f"Bearer {KEY}", "X-OpenWebUI-User-Name": "bench"}
    return requests_first_byte(
        f"{site.url}/v1/audio/speech", {"input": TEXT, "voice": "alloy", "model": "tts-1"}, headers
    )


def curl(site: Server) -> float:
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": TEXT})
    out = subprocess.run(
        ["curl", "-sS", "-N", "-o", "/dev/null", "-w", "%{time_starttransfer}", "-H", f"Authorization: Bearer {KEY}",
         "-H", "Content-Type: application/json", "-d", body, f"{site.url}/v1/audio/speech"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout)


def npm_version(package: str) -> str:
    manifest = E2E / "npm" / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def median_ms(measure: Callable[[Server], float], site: Server, runs: int) -> str:
    return f"{statistics.median(measure(site) for _ in range(runs)) * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    page_server = serve()
    origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    site = start_server(
        Path(tempfile.mkdtemp(prefix="bench-clients-")), {"SPEECH_CORS_ORIGINS": origin, "SPEECH_API_KEYS": KEY}
    )
    sdk = importlib.metadata.version("openai")
    rows: list[tuple[str, str, str]] = []
    try:
        for name, version, client in [
            ("openai-python, sync, `with_streaming_response`", sdk, openai_sync),
            ("openai-python, async", sdk, openai_async),
            ('openai-python, `stream_format="sse"`', sdk, openai_sse),
            ("Home Assistant openai_tts request (wav)", "requests " + requests.__version__, home_assistant),
            ("Open WebUI request (mp3, read whole)", "requests " + requests.__version__, open_webui),
            ("curl -N", subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1], curl),
        ]:
            rows.append((name, version, median_ms(client, site, args.runs)))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            chromium = browser.version
            for name, package, script, target in [
                ("openai (npm) in Chromium, browser mode", "openai", "viaSdk", f"{site.url}/v1"),
                ("openai-speech-stream-player in Chromium", "openai-speech-stream-player", "viaKvsur",
                 f"{site.url}/v1/audio/speech"),
            ]:  # fmt: skip
                firsts, sounds = [], []
                for _ in range(args.runs):
                    page = browser.new_page()
                    page.goto(f"{origin}/")
                    poll(page, "() => window.ready === true")
                    result = page.evaluate(f"([url, key]) => window.{script}(url, key)", [target, KEY])
                    firsts.append(result["firstByte"])
                    sounds.append(result["played"])
                    page.close()
                version = f"{npm_version(package)}, Chromium {chromium}"
                rows.append((name, version, f"{statistics.median(firsts):.0f} (sound {statistics.median(sounds):.0f})"))
            browser.close()
    finally:
        stop_server(site)
        page_server.shutdown()
    print(f"| client | version | result | first byte, ms (median of {args.runs}) |")
    print("|---|---|---|---|")
    for name, version, ms in rows:
        print(f"| {name} | {version} | streams | {ms} |")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
