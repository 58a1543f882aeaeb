"""Click -> first sound in headless Chromium, per playback path, with the server's own TTFB beside it.

Start the site first (`make run`), then: python bench/browser.py [--url http://127.0.0.1:8000] [--runs 10]
Each run opens the page afresh, types, and clicks Speak twice (first click, then again), so the numbers
show whether the first click is as fast as later ones.
"""

from __future__ import annotations

import argparse
import os
import time

import requests
from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT = "Hello! This is how quickly the voice starts after you press the button."
FORMATS = {"mse": "mp3", "webcodecs": "opus", "pcm": "pcm", "element": "mp3"}

CLICK = """async () => {
    const player = document.querySelector('[data-speech-player]').speechPlayer;
    const result = new Promise((resolve) => {
        const offs = [
            player.on('playing', ({ ms }) => { offs.forEach((off) => off()); resolve(ms); }),
            player.on('error', ({ message }) => { offs.forEach((off) => off()); resolve(message); }),
        ];
    });
    document.querySelector('.sp-speak').click();
    return await result;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_ttfb(url: str, fmt: str) -> float:
    body = {"model": "piper", "voice": "alloy", "input": TEXT, "response_format": fmt}
    start = time.perf_counter()
    with requests.post(f"{url}/v1/audio/speech", json=body, stream=True, timeout=60) as response:
        response.raise_for_status()
        next(response.iter_content(chunk_size=None))
        return (time.perf_counter() - start) * 1000


def click(page: Page) -> float:
    ms = page.evaluate(CLICK)
    if isinstance(ms, str):
        raise RuntimeError(f"the player reported an error: {ms}")
    page.evaluate("document.querySelector('[data-speech-player]').speechPlayer.stop()")
    return float(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--paths", default=",".join(FORMATS))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    print(f"{args.runs} runs per path against {args.url}; milliseconds")
    print(f"{'path':<10} {'first click p50/p95':>20} {'again p50/p95':>15} {'server TTFB p50/p95':>20}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for path in args.paths.split(","):
            first, again, ttfb = [], [], []
            for _ in range(args.runs):
                ttfb.append(server_ttfb(args.url, FORMATS[path]))
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{args.url}/?path={path}")
                page.wait_for_function("document.querySelector('.sp-voice').options.length > 1")
                page.click(".sp-text")  # the person puts the cursor in the box and types
                page.fill(".sp-text", TEXT)
                first.append(click(page))
                again.append(click(page))
                context.close()
            row = [first, again, ttfb]
            cells = [f"{percentile(values, 0.5):.0f} / {percentile(values, 0.95):.0f}" for values in row]
            print(f"{path:<10} {cells[0]:>20} {cells[1]:>15} {cells[2]:>20}")
        browser.close()
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
