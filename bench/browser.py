"""Click -> first sound in headless Chromium, per playback path, with the server's own TTFB beside it.

Start the site first (`make run`), then: python -m bench.browser [--url http://127.0.0.1:8000] [--runs 10]
Each run opens the page afresh, types, and clicks Speak twice (first click, then again), so the numbers
show whether the first click is as fast as later ones.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import requests
from playwright.sync_api import Page, sync_playwright

from bench.support.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.support.player import poll

TEXT = "Hello! This is how quickly the voice starts after you press the button."
PLAYER = Path(__file__).resolve().parent.parent / "speech" / "static" / "speech" / "player.js"


def path_formats() -> dict[str, str]:
    """The format each playback path asks for, read from the player's own ``PATHS`` table."""
    table = re.search(r"export const PATHS = \{([^}]*)\}", PLAYER.read_text(encoding="utf-8"))
    if table is None:
        raise RuntimeError(f"no PATHS table in {PLAYER}")
    return dict(re.findall(r'(\w+): "(\w+)"', table[1]))


FORMATS = path_formats()

CLICK = """async () => {
    const player = document.querySelector('[data-speech-player]').speechPlayer;
    let firstbyte = null;
    const result = new Promise((resolve) => {
        const offs = [
            player.on('firstbyte', ({ ms }) => { firstbyte ??= ms; }),
            player.on('playing', ({ ms }) => { offs.forEach((off) => off()); resolve([ms, firstbyte]); }),
            player.on('error', ({ message }) => { offs.forEach((off) => off()); resolve(message); }),
        ];
    });
    document.querySelector('.sp-speak').click();
    return await result;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(value for value in values if value == value) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_ttfb(url: str, fmt: str) -> float:
    body = {"model": "piper", "voice": "alloy", "input": TEXT, "response_format": fmt}
    start = time.perf_counter()
    with requests.post(f"{url}/v1/audio/speech", json=body, stream=True, timeout=60) as response:
        response.raise_for_status()
        next(response.iter_content(chunk_size=None))
        return (time.perf_counter() - start) * 1000


def click(page: Page) -> tuple[float, float]:
    """Milliseconds from the click to the first sound, and from the first byte to the first sound."""
    result = page.evaluate(CLICK)
    if isinstance(result, str):
        raise RuntimeError(f"the player reported an error: {result}")
    page.evaluate("document.querySelector('[data-speech-player]').speechPlayer.stop()")
    sound, byte = result
    # A "playing" with no "firstbyte" before it has been seen (rarely, MSE path, second click): NaN.
    return float(sound), float("nan") if byte is None else float(sound - byte)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--paths", default=",".join(FORMATS))
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()

    print(f"{args.runs} runs per path against {args.url}; milliseconds")
    header = ["first click", "again", "byte->sound", "server TTFB"]
    print(f"{'path (p50 / p95)':<17}" + "".join(f"{name:>14}" for name in header))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for path in args.paths.split(","):
            first: list[float] = []
            again: list[float] = []
            player_cost: list[float] = []
            ttfb: list[float] = []
            for _ in range(args.runs):
                ttfb.append(server_ttfb(args.url, FORMATS[path]))
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{args.url}/?path={path}")
                poll(page, "() => document.querySelector('.sp-voice').options.length > 1")
                page.click(".sp-text")  # the person puts the cursor in the box and types
                page.fill(".sp-text", TEXT)
                for clicks in (first, again):
                    sound, cost = click(page)
                    clicks.append(sound)
                    player_cost.append(cost)
                context.close()
            cells = [f"{percentile(v, 0.5):.0f} / {percentile(v, 0.95):.0f}" for v in (first, again, player_cost, ttfb)]
            print(f"{path:<17}" + "".join(f"{cell:>14}" for cell in cells))
        browser.close()
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
