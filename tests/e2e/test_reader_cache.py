"""`{% speech_reader %}` with the audio cache on: a second visitor hears the page from the cache (its SSE
requests hit, words then audio as events) and the same words are marked at the same places."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Playwright

from bench.support.browsers import ENGINES, Browser, launch
from bench.support.server import Server, start_server, stop_server
from tests.e2e.test_reader import READER, open_reader, wait_log, words

# Every answer's X-Speech-Cache, in the order the reader's requests were sent.
CACHE_STATES = """(() => {
  window.cacheStates = [];
  const original = window.fetch;
  window.fetch = async function () {
    const index = window.cacheStates.push(null) - 1;
    const response = await original.apply(this, arguments);
    window.cacheStates[index] = response.headers.get('X-Speech-Cache');
    return response;
  };
})()"""


@pytest.fixture(scope="module")
def cached_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"DJANGO_SETTINGS_MODULE": "ttsproject.settings", "SPEECH_CACHE_AUDIO": "1"}
    srv = start_server(tmp_path_factory.mktemp("cached-site"), env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module", params=ENGINES)
def browser(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Browser]:
    started = launch(request.param, playwright)
    yield started
    started.close()


def visit(browser: Browser, url: str) -> tuple[list[dict[str, Any]], list[str | None], str]:
    """The words heard (12 of them) from the top of the page, the cache state of each answer, and the
    text the reader reads."""
    page = browser.new_page()
    try:
        open_reader(page, url)
        page.evaluate(CACHE_STATES)
        page.click(".sr-play")
        wait_log(page, lambda entries: sum(e["name"] == "word" for e in entries) >= 12, "12 words heard")
        page.evaluate(f"{READER}.stop()")
        assert page.console_errors() == []
        heard = [{key: word[key] for key in ("text", "offset", "end")} for word in words(page)]
        return heard, page.evaluate("window.cacheStates"), page.evaluate(f"{READER}.text")
    finally:
        page.close()


def test_a_second_visitor_hears_the_page_from_the_cache(browser: Browser, cached_site: Server) -> None:
    url = f"{cached_site.url}/read/"
    first, first_states, text = visit(browser, url)
    second, second_states, _ = visit(browser, url)

    assert first_states[0] in ("miss", "hit")  # another engine may have read it before
    assert second_states[0] == "hit"  # the first piece ended long before the first visitor stopped
    assert len(first) >= 12
    assert len(second) >= 12
    # The replayed words mark the same places. The highlight follows the audio clock, so a busy page
    # may skip a short word; the words both visitors saw are compared, and every one against the text.
    for heard in (first, second):
        assert [text[w["offset"] : w["end"]] for w in heard] == [w["text"] for w in heard]
    at = {w["offset"]: w for w in first}
    both = [w for w in second if w["offset"] in at]
    assert len(both) >= len(second) // 2
    assert both == [at[w["offset"]] for w in both]
