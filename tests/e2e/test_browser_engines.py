"""The same end-to-end checks in Chromium, Firefox ESR and WebKitGTK: one parametrised test each."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Playwright

from bench.support.browsers import ENGINES, Browser, BrowserPage, launch, wait_for
from bench.support.server import Server
from tests.e2e import test_words as words
from tests.support.audio_check import duration


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Browser]:
    """One browser per engine for the whole run (pytest groups tests by engine)."""
    started = launch(request.param, playwright)
    yield started
    started.close()


@pytest.fixture
def engine_page(engine: Browser) -> Iterator[BrowserPage]:
    opened = engine.new_page()
    yield opened
    opened.close()


HARNESS_PAGE = """<!doctype html><meta charset=utf-8><title>harness</title><link rel=icon href="data:,">
<input id=text><button id=go>Go</button><button id=fail>Fail</button>
<script>
window.log = [];
document.getElementById('go').addEventListener('click', (event) => {
  const context = new AudioContext();
  const buffer = context.createBuffer(1, context.sampleRate / 2, context.sampleRate);
  buffer.getChannelData(0).forEach((_, i, data) => { data[i] = Math.sin(i / 10) / 4; });
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.onended = () => window.log.push('ended ' + context.currentTime.toFixed(2));
  source.start();
  window.context = context;
  window.log.push('click ' + event.isTrusted + ' ' + document.getElementById('text').value);
});
document.getElementById('fail').addEventListener('click', () => console.error('deliberate failure'));
</script>"""


@pytest.fixture(scope="module")
def static_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("static")
    (root / "index.html").write_text(HARNESS_PAGE)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()


def test_harness_types_clicks_and_hears(engine_page: BrowserPage, static_url: str) -> None:
    """The harness itself: typing and a trusted click reach the page, and Web Audio runs and ends."""
    page = engine_page
    page.goto(static_url)
    page.type("#text", "hello there")
    page.click("#go")
    wait_for(lambda: any(e.startswith("ended") for e in page.evaluate("window.log")), 20, "the buffer to end")
    log = page.evaluate("window.log")
    assert log[0] == "click true hello there"
    assert page.evaluate("window.context.state") == "running"
    assert page.console_errors() == []
    page.click("#fail")
    wait_for(lambda: page.console_errors() != [], 5, "the console error")
    assert "deliberate failure" in page.console_errors()[0]
    assert not page.crashed()


# --- The player ------------------------------------------------------------------------------------

TEXT = "Streaming speech starts at once. The listener hears the first words while the rest is still made."
LONG = "This sentence is one of many, so that the whole text takes a while to speak. " * 6
# What each engine can do decides the path; nothing in the URL asks for one.
EXPECTED_PATH = {"chromium": "mse", "firefox": "webcodecs", "webkit": "mse"}

PLAYER = "document.querySelector('[data-speech-player]').speechPlayer"
# Records the player's events and every Web Audio buffer started, with its loudest sample.
LISTEN = """(() => {
  const player = document.querySelector('[data-speech-player]').speechPlayer;
  window.speechLog = [];
  for (const name of ['firstbyte', 'playing', 'progress', 'ended', 'error']) {
    player.on(name, (detail) => window.speechLog.push({name, at: Date.now(), context: player.ctx?.state, ...detail}));
  }
  window.buffersStarted = [];
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (...args) {
    const peak = this.buffer.getChannelData(0).reduce((max, v) => Math.max(max, Math.abs(v)), 0);
    window.buffersStarted.push({peak, state: this.context.state, at: Date.now()});
    return start.apply(this, args);
  };
})()"""


def events(page: BrowserPage, name: str | None = None) -> list[dict[str, Any]]:
    logged: list[dict[str, Any]] = page.evaluate("window.speechLog")
    return [event for event in logged if name is None or event["name"] == name]


def open_player(page: BrowserPage, url: str, path: str | None = None) -> None:
    page.goto(f"{url}/?path={path}" if path else f"{url}/")
    ready = f"Boolean({PLAYER.replace('.speechPlayer', '?.speechPlayer')})"
    ready += " && document.querySelector('.sp-voice').options.length > 1"
    wait_for(lambda: page.evaluate(ready), 30, "the player and its voices")
    page.evaluate(LISTEN)


def wait_event(page: BrowserPage, *names: str, timeout: float = 90) -> None:
    try:
        wait_for(lambda: any(event["name"] in names for event in events(page)), timeout, f"one of {names}")
    except Exception:
        assert not page.crashed(), f"the {page.engine} page crashed"
        raise


@pytest.fixture(scope="module")
def text_seconds(site: Server) -> float:
    return duration(site.post_speech(input=TEXT, response_format="pcm").content, "pcm")


@pytest.mark.parametrize("forced", [None, "webcodecs"])
def test_speaks_in_every_engine(
    engine_page: BrowserPage, site: Server, text_seconds: float, forced: str | None
) -> None:
    """Automatic choice in each engine; and the Opus path everywhere (WebKit's page crashed on it once)."""
    page = engine_page
    open_player(page, site.url, forced)
    page.type(".sp-text", TEXT)
    page.click(".sp-speak")
    wait_event(page, "ended", "error")

    assert events(page, "error") == []
    playing, ended = events(page, "playing")[0], events(page, "ended")[0]
    assert playing["path"] == (forced or EXPECTED_PATH[page.engine])
    assert page.evaluate("document.querySelector('.sp-path-used').textContent") == playing["path"]
    auto = EXPECTED_PATH[page.engine]
    assert page.evaluate("document.querySelector('.sp-path').options[0].textContent") == f"Automatic ({auto})"
    capabilities = page.evaluate(f"{PLAYER}.constructor.capabilities()")
    assert capabilities["paths"][0] == auto
    assert capabilities["mediaSource"] == ("ManagedMediaSource" if page.engine == "webkit" else "MediaSource")
    # Sound: the media element played, or Web Audio buffers with signal in them ran on a running clock.
    if playing["path"] == "webcodecs":
        buffers = page.evaluate("window.buffersStarted")
        assert any(b["peak"] > 0.05 for b in buffers)
        assert playing["context"] == "running"  # heard, not merely scheduled on a clock that stands still
    # All of it played, at the speed of speech, and the clock moved meanwhile.
    assert text_seconds * 0.75 < ended["duration"] < text_seconds * 1.25
    assert (ended["at"] - playing["at"]) / 1000 > ended["duration"] * 0.8
    assert max(event["played"] for event in events(page, "progress")) > ended["duration"] * 0.8
    assert page.console_errors() == []
    assert not page.crashed()


def test_stop_mid_stream_in_every_engine(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_player(page, site.url)
    page.type(".sp-text", LONG)
    page.click(".sp-speak")
    wait_event(page, "playing", "error")
    hang_ups = site.log_text().count("listener gone after")
    page.click(".sp-stop")
    wait_for(lambda: site.log_text().count("listener gone after") > hang_ups, 10, "the server to notice the stop")
    progress = len(events(page, "progress"))
    time.sleep(1)

    assert [event["name"] for event in events(page) if event["name"] in ("ended", "error")] == []
    assert len(events(page, "progress")) == progress  # nothing plays on
    assert page.evaluate("document.querySelector('.sp-status').textContent") == "Stopped."
    assert page.evaluate("document.querySelector('.sp-audio').paused")
    assert page.console_errors() == []
    assert not page.crashed()


def test_highlights_the_word_heard_in_every_engine(engine_page: BrowserPage, site: Server) -> None:
    """The word marked in the page follows the path's own clock (see test_words.py for the measure)."""
    page = engine_page
    open_player(page, site.url)
    page.type(".sp-text", words.TEXT)
    page.evaluate(f"({words.SAMPLER})()")
    page.click(".sp-speak")
    wait_event(page, "ended", "error")
    assert events(page, "error") == []
    samples, lists = page.evaluate("window.wordSamples"), page.evaluate("window.wordLists")

    found = lists[0]
    assert [w["text"] for w in found][:4] == ["Dr.", "Smith", "paid", "$5"]
    assert words.check_samples(samples, found) > 30
    first_marked = next(sample for sample in samples if sample["current"] is not None)
    assert words.first_sound(found) - words.TOLERANCE <= first_marked["t"] < words.first_sound(found) + 0.3
    assert page.console_errors() == []
    assert not page.crashed()
