"""The README's picture of the page: the site as `make run` serves it, speaking, in Debian's Chromium.

    .venv/bin/python -m bench.screenshot [--out docs/img/page.png]

Types a text, clicks Speak (twice: the first warms the browser) and takes the picture once a few words
have been heard (the word heard is highlighted in the text). Not a benchmark: it keeps the docs'
picture true to the page.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.support.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.support.server import ROOT, start_server, stop_server

TEXT = (
    "Streaming speech starts playing at once: the first sentence is heard while the rest is still being "
    "made. Each word lights up as it is spoken, and a click on a word goes there."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "page.png")
    args = parser.parse_args()
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-screenshot-")))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 960, "height": 900}, device_scale_factor=1)
            page.goto(f"{server.url}/")
            page.fill(".sp-text", TEXT)
            page.click(".sp-speak")  # once to warm the browser's media pipeline
            page.wait_for_timeout(1500)
            page.click(".sp-stop")
            page.click(".sp-speak")
            heard = "[...document.querySelectorAll('.sp-word')].findIndex((w) => w.classList.contains('is-current'))"
            while page.evaluate(heard) < 7:  # the page's CSP allows no wait_for_function (eval)
                page.wait_for_timeout(100)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        stop_server(server)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
