"""Live text in headless Chromium: from the first complete sentence written to the first sound, and
the gaps between sentences, per playback path.

    python -m bench.live_browser [--url http://127.0.0.1:8000] [--runs 10] [--paths mse,webcodecs,pcm]

Without --url a server is started as the tests start one (gunicorn, production settings). Each run
opens the page afresh and clicks a button that starts `player.live()`; a stand-in for a model then
writes the first sentence word by word (40 ms apart), and the rest at 25 words a second (faster than
speech), and ends. "first sound" is the player's `playing` event minus the moment the first
sentence's last word (with its space) was written; "first byte" is the player's `firstbyte` event
minus the same moment. "gap" is the widest silence where one response meets the next, on the
path's own clock: for MSE the time the element stood `waiting` there (its buffered audio is one
range), for the Web Audio paths the space between the buffers scheduled there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench.support.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.support.player import poll

FIRST = "Here is the answer to your question. "
REST = (
    "Streaming speech starts with the first sentence while the model is still writing. "
    "Each later sentence is asked for as soon as it is complete. "
    "They play back to back on one timeline, without a pause between them."
)

HARNESS = """async ([first, rest, path]) => {
  const { SpeechPlayer } = await import('/static/speech/player.js');
  const config = JSON.parse(document.querySelector('#speech-player-config').textContent);
  const player = new SpeechPlayer({ ...config, audio: new Audio() });
  const audio = player.audio;
  const log = window.benchLog = [];
  const note = (name, detail = {}) => log.push({ name, at: performance.now(), ...detail });
  for (const name of ['firstbyte', 'playing', 'ended', 'error']) player.on(name, (detail) => note(name, detail));
  audio.addEventListener('waiting', () => note('waiting', { t: audio.currentTime }));
  audio.addEventListener('playing', () => note('resumed', { t: audio.currentTime }));
  window.benchBuffers = [];
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (when = 0, ...more) {
    window.benchBuffers.push({ when, duration: this.buffer.duration });
    return start.call(this, when, ...more);
  };
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const button = document.createElement('button');
  button.id = 'bench-go';
  button.textContent = 'go';
  button.addEventListener('click', async () => {
    const live = window.benchLive = player.live({ path });
    for (const word of first.split(/(?<= )/)) {
      await pause(40);
      live.write(word);
    }
    note('first sentence', { requests: live.requests.length });
    for (const word of rest.split(/(?<= )/)) {
      await pause(40);
      live.write(word);
    }
    live.end();
  });
  document.body.prepend(button);
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def boundary_gap(path: str, log: list[dict[str, Any]], buffers: list[dict[str, Any]], starts: list[float]) -> float:
    """The widest silence (seconds) where one response's audio meets the next one's."""
    widest = 0.0
    if path == "mse":
        playing = next(entry["at"] for entry in log if entry["name"] == "playing")
        for waiting in (e for e in log if e["name"] == "waiting" and e["at"] > playing):
            if any(abs(waiting["t"] - at) < 0.05 for at in starts[1:]):
                resumed = next((e["at"] for e in log if e["name"] == "resumed" and e["at"] > waiting["at"]), None)
                widest = max(widest, ((resumed or waiting["at"]) - waiting["at"]) / 1000)
        return widest
    position = 0.0
    for a, b in itertools.pairwise(buffers):
        position += a["duration"]
        if any(abs(position - at) < 1e-3 for at in starts[1:]):
            widest = max(widest, b["when"] - (a["when"] + a["duration"]))
    return widest


def run(page: Page, url: str, path: str) -> tuple[float, float, float, int]:
    page.goto(f"{url}/")
    poll(page, "() => Boolean(document.querySelector('#speech-player-config'))")
    page.evaluate(HARNESS, [FIRST, REST, path])
    page.click("#bench-go")
    poll(page, "() => window.benchLog.some((e) => e.name === 'ended' || e.name === 'error')", timeout=120)
    log: list[dict[str, Any]] = page.evaluate("window.benchLog")
    if errors := [entry for entry in log if entry["name"] == "error"]:
        raise RuntimeError(f"the player reported an error: {errors[0]}")
    written = next(entry["at"] for entry in log if entry["name"] == "first sentence")
    sound = next(entry["at"] for entry in log if entry["name"] == "playing")
    byte = next(entry["at"] for entry in log if entry["name"] == "firstbyte")
    if next(entry["requests"] for entry in log if entry["name"] == "first sentence") != 1:
        raise RuntimeError("the first sentence was not asked for as soon as it was written")
    starts = page.evaluate("window.benchLive.requests.map((r) => r.start)")
    gap = boundary_gap(path, log, page.evaluate("window.benchBuffers"), starts)
    return sound - written, byte - written, gap * 1000, len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="a running site (default: start one)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--paths", default="mse,webcodecs,pcm")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()

    server = None
    url = args.url
    if url is None:
        from bench.support.server import start_server, stop_server

        server = start_server(Path(tempfile.mkdtemp(prefix="bench-live-")))
        url = server.url
    try:
        print(f"{args.runs} runs per path against {url}; milliseconds, p50 / p95 (max)")
        header = ["sentence->sound", "sentence->first byte", "gap between sentences"]
        print(f"{'path':<11}" + "".join(f"{name:>24}" for name in header) + f"{'requests':>10}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for path in args.paths.split(","):
                sounds: list[float] = []
                bytes_: list[float] = []
                gaps: list[float] = []
                pieces: list[int] = []
                for _ in range(args.runs):
                    context = browser.new_context()
                    sound, byte, gap, count = run(context.new_page(), url, path)
                    context.close()
                    sounds.append(sound)
                    bytes_.append(byte)
                    gaps.append(gap)
                    pieces.append(count)
                cells = [
                    f"{percentile(v, 0.5):.0f} / {percentile(v, 0.95):.0f} ({max(v):.0f})"
                    for v in (sounds, bytes_, gaps)
                ]
                counts = json.dumps(sorted(set(pieces)))
                print(f"{path:<11}" + "".join(f"{cell:>24}" for cell in cells) + f"{counts:>10}")
            browser.close()
    finally:
        if server is not None:
            stop_server(server)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
