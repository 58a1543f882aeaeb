"""Browser clients nobody on the team wrote, on another origin: the official `openai` npm package in
browser mode and kvsur's openai-speech-stream-player, both installed from npm (tests/e2e/npm)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from bench.support.other_site import serve
from bench.support.player import poll
from bench.support.server import Server, start_server, stop_server
from tests.e2e.conftest import artifact

KEY = "sk-browser-clients-0123"


@pytest.fixture(scope="module")
def other_site() -> Iterator[int]:
    server = serve()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def api(other_site: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SPEECH_CORS_ORIGINS": f"http://127.0.0.1:{other_site}", "SPEECH_API_KEYS": KEY}
    server = start_server(tmp_path_factory.mktemp("browser-clients"), env)
    yield server
    stop_server(server)


def open_other_site(page: Page, origin: str) -> None:
    page.goto(f"{origin}/")
    poll(page, "() => window.ready === true")


def record(name: str, result: dict[str, Any]) -> None:
    """First byte and first sound, for the README's compatibility table."""
    path = artifact("browser-clients.json")
    measured = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**measured, name: result}, indent=2))


def assert_streamed_and_played(result: dict[str, Any]) -> None:
    assert str(result["requestId"]).startswith("req_")  # exposed to the page through CORS
    assert result["currentTime"] >= 0.3
    assert result["firstByte"] < result["lastByte"]
    assert result["played"] < result["lastByte"]  # sound before the last byte: streamed, not buffered


def test_openai_sdk_in_the_browser(page: Page, other_site: int, api: Server) -> None:
    open_other_site(page, f"http://127.0.0.1:{other_site}")
    result = page.evaluate("([base, key]) => window.viaSdk(base, key)", [f"{api.url}/v1", KEY])
    assert_streamed_and_played(result)
    record("openai (npm), Chromium", result)


def test_kvsur_player_in_the_browser(page: Page, other_site: int, api: Server) -> None:
    open_other_site(page, f"http://127.0.0.1:{other_site}")
    result = page.evaluate("([url, key]) => window.viaKvsur(url, key)", [f"{api.url}/v1/audio/speech", KEY])
    assert_streamed_and_played(result)
    record("openai-speech-stream-player (npm), Chromium", result)


def test_an_origin_the_site_does_not_list_is_refused(page: Page, other_site: int, api: Server) -> None:
    open_other_site(page, f"http://localhost:{other_site}")  # another origin: same page, other host name
    outcome = page.evaluate("([base, key]) => window.refused(base, key)", [f"{api.url}/v1", KEY])
    assert outcome == {"fetch": "TypeError", "sdk": "APIConnectionError"}
