"""The same end-to-end checks in Chromium, Firefox ESR and WebKitGTK: one parametrised test each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.browsers import ENGINES, Browser, BrowserPage, launch, wait_for


@pytest.fixture(scope="session", params=ENGINES)
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """One browser per engine for the whole run (pytest groups tests by engine)."""
    started = launch(request.param)
    yield started
    started.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[BrowserPage]:
    opened = browser.new_page()
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


def test_harness_types_clicks_and_hears(page: BrowserPage, static_url: str) -> None:
    """The harness itself: typing and a trusted click reach the page, and Web Audio runs and ends."""
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
