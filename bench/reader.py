"""{% speech_reader %}: click -> first sound on a 10,000-word page, and the highlight's lag behind the audio clock,
in Chromium, Firefox ESR and WebKitGTK.

Start the site first (`make run`), then: python -m bench.reader [--url http://127.0.0.1:8000] [--runs 5]
(or `--serve` to start one here, as the tests do). Each run opens the demo page (/read/) afresh, makes its
article 10,000 words long (its chapters repeated), waits for the reader to mount, and really clicks Listen (a
trusted click through each engine's automation). First sound is measured in the page, from the click event's
time stamp to the player's `playing`. The reader reads the page's text while the browser is idle after
load (and again after a change); the run waits for that before it clicks, as a visitor's click would. The
first run of each engine warms up (the voice, the browser's caches) and is not counted.

The site started by `--serve` has the audio cache on, as `make run` has it: after the warm-up run the
page is a popular one, its first sentence replayed from the cache. `--cold` turns the cache off, so that
every run synthesises as for a page nobody has read yet. `--dwell S` rests the pointer on Listen for S
seconds before the click, as a person's does (the reader asks for the first sentence then).

Beside it, the p50 of its two parts before the audio: click -> the first piece's request (the reader and the
player in the page) and that request -> its first byte (the server).

The lag: for every word heard in the first LISTEN seconds, the audio clock (the path's `played()`) at the
first animation frame whose speech-word highlight is on that word, minus the word's start on that clock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.browser import percentile
from bench.support.browsers import ENGINES, BrowserPage, launch, wait_for
from bench.support.procstat import wait_idle, worker_pid

WORDS = 10_000
LISTEN = 8.0  # seconds of speech sampled for the lag, per run
READER = "document.querySelector('[data-speech-reader]').speechReader"
# Mounted, its voice chosen, and the page's text read (in an idle moment after load, as on any page).
MOUNTED = f"Boolean({READER.replace('.speechReader', '?.speechReader')}?.voice) && {READER}.prepared"

# The demo article's chapters, repeated until it holds WORDS words.
LENGTHEN = """((words) => {
  const article = document.querySelector('#article');
  const chapters = [...article.querySelectorAll('h2, h2 ~ p')];
  const count = () => article.textContent.split(/\\s+/).filter(Boolean).length;
  while (count() < words) article.append(...chapters.map((node) => node.cloneNode(true)));
  document.body.getBoundingClientRect();  // laid out now, as a page is long before anyone clicks
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(count()))));
})"""

INSTRUMENT = f"""(() => {{
  const reader = {READER};
  const player = reader.player;
  window.bench = {{ lags: [] }};
  document.querySelector('.sr-play').addEventListener('click', (event) => {{
    window.bench.clickAt = event.timeStamp;
    window.bench.trusted = event.isTrusted;
  }}, true);
  const original = window.fetch;
  window.fetch = function (url, init) {{
    if (init?.body) window.bench.posted ??= performance.now();  // the first piece asked for
    return original.apply(this, arguments);
  }};
  player.on('firstbyte', () => {{ window.bench.firstbyte ??= performance.now(); }});
  player.on('playing', (detail) => {{
    window.bench.playing ??= performance.now();
    window.bench.path = detail.path;
  }});
  player.on('error', (detail) => {{ window.bench.error = detail.message; }});
  const seen = new Set();
  const frame = () => {{
    const session = player.session;
    const highlight = globalThis.CSS?.highlights?.get('speech-word');
    const range = highlight && [...highlight][0];
    if (session?.playback && range) {{
      const at = reader.page.offsetAt(range.startContainer, range.startOffset) - reader.offset;
      const word = session.words.find((w) => w.charStart <= at && at < w.charEnd);
      if (word && !seen.has(word)) {{
        seen.add(word);
        window.bench.lags.push((session.playback.played() - word.start) * 1000);
      }}
    }}
    window.bench.frame = requestAnimationFrame(frame);
  }};
  window.bench.frame = requestAnimationFrame(frame);
  return true;
}})()"""


def run_once(page: BrowserPage, url: str, dwell: float = 0.0) -> dict[str, Any]:
    page.goto(f"{url}/read/")
    page.evaluate("localStorage.clear()")  # every run starts at the top
    words = page.evaluate(f"({LENGTHEN})({WORDS})")
    wait_for(
        lambda: page.evaluate(f"Boolean({READER.replace('.speechReader', '?.speechReader')}?.voice)"), 30, "reader"
    )
    page.evaluate(INSTRUMENT)
    if dwell:
        page.hover(".sr-play")  # a person's pointer reaches the button before the click
        time.sleep(dwell)
    page.click(".sr-play")
    wait_for(lambda: page.evaluate("'playing' in window.bench || 'error' in window.bench"), 60, "first sound")
    started = time.monotonic()
    wait_for(lambda: page.evaluate("'error' in window.bench") or time.monotonic() - started > LISTEN, LISTEN + 5, "")
    result: dict[str, Any] = page.evaluate("window.bench")
    result["text_chars"] = page.evaluate(f"{READER}.text.length")
    page.evaluate(f"(cancelAnimationFrame(window.bench.frame), {READER}.stop(), true)")
    if "error" in result or not result.get("trusted"):
        raise RuntimeError(f"{page.engine}: {result}")
    result["ms"] = result["playing"] - result["clickAt"]
    result["request_ms"] = result["posted"] - result["clickAt"]  # the reader's part: click -> first request
    result["first_byte_ms"] = result["firstbyte"] - result["posted"]  # the server's
    result["words"] = words
    return result


@contextlib.contextmanager
def site(url: str | None, cache: bool = True) -> Iterator[tuple[str, int | None]]:
    """The site's URL, and its worker's pid when started here (to wait for it to go idle between runs)."""
    if url:
        yield url, None
        return
    from bench.support.server import start_server, stop_server

    env = {"DJANGO_SETTINGS_MODULE": "ttsproject.settings", "SPEECH_CACHE_AUDIO": "1" if cache else "0"}
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-reader-")), env)
    try:
        yield server.url, worker_pid(server.process.pid)
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="a running site (default: http://127.0.0.1:8000)")
    parser.add_argument("--serve", action="store_true", help="start a site for the run, as the tests do")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--cold", action="store_true", help="with --serve: the audio cache off, every run synthesises (a new page)"
    )
    parser.add_argument(
        "--dwell", type=float, default=0.0, help="seconds the pointer rests on Listen before the click (default 0)"
    )
    args = parser.parse_args()

    with site(None if args.serve else args.url or "http://127.0.0.1:8000", cache=not args.cold) as (url, worker):
        print(f"{args.runs} runs per engine (after one warm-up) against {url}/read/ made {WORDS:,} words long")
        print(f"audio cache {'off' if args.cold else 'on'}, pointer on Listen {args.dwell:.2f} s before the click")
        print(
            f"{'engine':<9} {'path':<10} {'click->sound p50/p95 ms':>24} {'highlight lag p50/p95 ms':>25} {'words':>6}"
        )
        for engine in args.engines.split(","):
            browser = launch(engine)
            try:
                sounds: list[float] = []
                requests: list[float] = []
                first_bytes: list[float] = []
                lags: list[float] = []
                paths: set[str] = set()
                for index in range(args.runs + 1):
                    if worker:  # what the last run left (its cancelled pieces' last model runs) is done
                        wait_idle(worker)
                    page = browser.new_page()
                    try:
                        result = run_once(page, url, args.dwell)
                    finally:
                        page.close()
                    if index == 0:
                        continue  # warm-up
                    sounds.append(result["ms"])
                    requests.append(result["request_ms"])
                    first_bytes.append(result["first_byte_ms"])
                    lags += result["lags"]
                    paths.add(result["path"])
                sound = f"{percentile(sounds, 0.5):.0f} / {percentile(sounds, 0.95):.0f}"
                lag = f"{percentile(lags, 0.5):.0f} / {percentile(lags, 0.95):.0f}" if lags else "no highlights"
                parts = f"{percentile(requests, 0.5):.0f} / {percentile(first_bytes, 0.5):.0f}"
                print(f"{engine:<9} {','.join(sorted(paths)):<10} {sound:>24} {lag:>25} {len(lags):>6} {parts:>24}")
            finally:
                browser.close()
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
