"""The site's page in Chromium: the speed slider's range, a played bar that only moves forward, an icon."""

from __future__ import annotations

import itertools

import requests
from playwright.sync_api import Page

from bench.support.player import first, log, open_player, wait_for
from bench.support.server import Server
from speech.schemas import SPEEDS
from tests.support.slow_proxy import SlowProxy

TEXT = (
    "The played bar moves one way only. It measures what was heard against the whole, "
    "while the rest is still arriving. This sentence makes the buffer grow."
)
# Reads the bar after the widget has drawn it: this listener is added after the widget's own.
RECORD_BAR = """() => {
    const root = document.querySelector('[data-speech-player]');
    window.playedBar = [];
    const bar = root.querySelector('.sp-played');
    root.speechPlayer.on('progress', () => window.playedBar.push(parseFloat(bar.style.width)));
}"""


def test_speed_slider_covers_the_api_range(page: Page, site: Server) -> None:
    open_player(page, site.url, "mse")
    low, high = page.eval_on_selector(".sp-speed", "(slider) => [Number(slider.min), Number(slider.max)]")
    assert (low, high) == SPEEDS == (0.25, 4.0)

    page.eval_on_selector(".sp-speed", "(s) => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
    assert page.text_content(".sp-speed-value") == "4.00×"
    page.fill(".sp-text", "Hello there, quickly.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    assert [event for event in log(page) if event["name"] == "error"] == []


def test_played_bar_never_moves_back_while_audio_arrives(page: Page, slow_site: SlowProxy) -> None:
    open_player(page, slow_site.url, "mse")
    page.evaluate(RECORD_BAR)
    page.fill(".sp-text", TEXT)
    page.click(".sp-speak")
    wait_for(page, "ended", "error")

    events = log(page)
    bar: list[float] = page.evaluate("window.playedBar")
    progress = [event for event in events if event["name"] == "progress"]
    assert first(events, "ended")
    # The buffer grew while playing: the case where a bar measured against it would go back.
    assert any(event["buffered"] < progress[-1]["buffered"] and event["played"] > 0 for event in progress)
    assert len(bar) > 10
    assert all(later >= earlier for earlier, later in itertools.pairwise(bar)), bar
    assert bar[-1] == 100


def test_favicon_is_an_icon(page: Page, site: Server) -> None:
    response = requests.get(f"{site.url}/favicon.ico", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    missing: list[str] = []
    page.on("response", lambda answer: missing.append(answer.url) if answer.status >= 400 else None)
    open_player(page, site.url)
    page.wait_for_load_state("networkidle")
    assert missing == []
