"""Click -> first sound in Chromium, Firefox ESR and WebKitGTK, per engine and playback path.

Start the site first (`make run`), then: python -m bench.browser_engines [--url http://127.0.0.1:8000] [--runs 10]
Each run opens the page afresh, clicks into the text box and types (as a person does: that first gesture
starts the AudioContext), then really clicks Speak (a trusted click through each engine's automation),
and waits for the player's `playing`; then clicks Speak again. First sound is measured in the page from
the click event's time stamp to `playing` (media element playing, or the first Web Audio buffer's start
on a running clock). The engine's automatic choice is `auto`; other paths are forced with `?path=`.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from bench.browser import FORMATS, TEXT, percentile, server_ttfb
from bench.support.browsers import ENGINES, BrowserPage, launch, wait_for

PATHS = {"chromium": ["auto", "webcodecs"], "firefox": ["auto", "pcm"], "webkit": ["auto", "webcodecs"]}
PLAYER = "document.querySelector('[data-speech-player]').speechPlayer"

LISTEN = f"""(() => {{
  const player = {PLAYER};
  window.bench = [];
  document.querySelector('.sp-speak').addEventListener('click', (event) => {{
    window.bench.push({{clickAt: event.timeStamp, trusted: event.isTrusted}});
  }}, true);
  for (const name of ['firstbyte', 'playing', 'error']) {{
    player.on(name, (detail) => {{
      const run = window.bench[window.bench.length - 1];
      if (name in run) return;
      Object.assign(run, {{[name]: performance.now(), context: player.ctx ? player.ctx.state : null}});
      if (name !== 'firstbyte') Object.assign(run, {{path: detail.path, message: detail.message}});
    }});
  }}
}})()"""


def click_speak(page: BrowserPage) -> dict[str, Any]:
    count = len(page.evaluate("window.bench"))
    page.click(".sp-speak")
    done = "window.bench.length > {0} && ('playing' in window.bench[{0}] || 'error' in window.bench[{0}])"
    wait_for(lambda: page.evaluate(done.format(count)), 30, "playing")
    run: dict[str, Any] = page.evaluate(f"window.bench[{count}]")
    page.evaluate(f"{PLAYER}.stop()")
    if "error" in run or not run["trusted"]:
        raise RuntimeError(f"{page.engine}: {run}")
    run["ms"] = run["playing"] - run["clickAt"]
    run["after_first_byte"] = run["playing"] - run.get("firstbyte", run["playing"])
    return run


def measure(page: BrowserPage, url: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    page.goto(f"{url}/" if path == "auto" else f"{url}/?path={path}")
    ready = f"Boolean({PLAYER.replace('.speechPlayer', '?.speechPlayer')})"
    wait_for(lambda: page.evaluate(f"{ready} && document.querySelector('.sp-voice').options.length > 1"), 30, "page")
    page.evaluate(LISTEN)
    page.type(".sp-text", TEXT)
    return click_speak(page), click_speak(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()

    print(f"{args.runs} runs per engine and path against {args.url}; milliseconds, click -> first sound")
    header = ["first click p50/p95", "again p50/p95", "after 1st byte p50/p95", "server TTFB p50"]
    print(f"{'engine':<9} {'path':<16} " + " ".join(f"{h:>22}" for h in header))
    for engine in args.engines.split(","):
        browser = launch(engine)
        try:
            for path in PATHS[engine]:
                first, again, after, ttfb, used, contexts = [], [], [], [], set(), set()
                for _ in range(args.runs):
                    page = browser.new_page()
                    try:
                        one, two = measure(page, args.url, path)
                    finally:
                        page.close()
                    first.append(one["ms"])
                    again.append(two["ms"])
                    after += [one["after_first_byte"], two["after_first_byte"]]
                    used.add(one["path"])
                    contexts.add(one["context"])
                    ttfb.append(server_ttfb(args.url, FORMATS[one["path"]]))
                    time.sleep(0.2)
                label = f"{path} ({','.join(sorted(used))})" if path == "auto" else path
                cells = [f"{percentile(v, 0.5):.0f} / {percentile(v, 0.95):.0f}" for v in (first, again, after)]
                cells.append(f"{percentile(ttfb, 0.5):.0f}")
                note = "" if contexts <= {"running", None} else f"  AudioContext at playing: {sorted(contexts)}"
                print(f"{engine:<9} {label:<16} " + " ".join(f"{c:>22}" for c in cells) + note)
        finally:
            browser.close()
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
