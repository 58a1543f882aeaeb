"""A real server with collected static files, a slow proxy in front of it, and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from bench.support.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.support.server import ROOT, Server, start_server, stop_server
from tests.support.slow_proxy import SlowProxy

# The end of each audio response is held back this long after its first byte.
HOLD_SECONDS = 4.0
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The site as `make run` serves it: production settings (hashed static files), gunicorn."""
    env = {
        "DJANGO_SETTINGS_MODULE": "ttsproject.settings",
        # DEBUG logs each piece synthesised and each hang-up noticed, which the stop test reads.
        "SPEECH_LOG_LEVEL": "DEBUG",
    }
    srv = start_server(tmp_path_factory.mktemp("site"), env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def slow_site(site: Server) -> Iterator[SlowProxy]:
    proxy = SlowProxy(site.url, hold=HOLD_SECONDS)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """One Playwright for the run: its sync API allows only one per thread."""
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives a browser: `pytest -m "not e2e"` is the fast loop."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
