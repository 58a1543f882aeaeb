"""The widget on a page of another Django site, the app installed from its wheel, under /site/tts/, in Chromium,
served by gunicorn (WSGI) and by uvicorn (ASGI).

The host site requires API keys: the page plays through the token the server signed into it, never seeing a key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from bench.support.player import first, log, open_player, wait_for
from bench.support.server import Server
from tests.host_site.server import KEY, PREFIX, host_site


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with host_site(tmp_path_factory.mktemp("host-e2e"), ("gunicorn", "uvicorn")) as servers:
        yield servers


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
@pytest.mark.parametrize("path", ["mse", "element"])
def test_the_widget_plays_in_a_host_page_under_the_prefix(
    page: Page, hosts: dict[str, Server], path: str, kind: str
) -> None:
    host = hosts[kind]
    requests_made: list[str] = []
    page.on("request", lambda request: requests_made.append(request.url))
    open_player(page, host.url, path)
    assert KEY not in page.content()
    page.fill(".sp-text", "Hello from the host site. This plays through its prefix.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    events = log(page)

    assert [event for event in events if event["name"] == "error"] == []
    assert first(events, "playing")["path"] == path
    assert first(events, "ended")["duration"] > 1.5
    api = [url for url in requests_made if "/v1/" in url or "/speech/stream" in url]
    assert api
    assert all(url.startswith(f"{host.url.removesuffix(PREFIX)}{PREFIX}/tts/") for url in api)
