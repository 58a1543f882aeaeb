"""The docs' JavaScript block (docs/player.md, the one ```js block of DOCS), pasted into a module script
on the site's page in Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from bench.support.readme import readme_blocks
from bench.support.server import Server

[JS] = [block for block in readme_blocks() if block.lang == "js"]


@pytest.fixture
def pasting_page(browser: Browser) -> Iterator[Page]:
    """A page where a pasted inline script may run: the site's CSP allows only its own files and a nonce."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def test_the_javascript_block_plays(pasting_page: Page, site: Server) -> None:
    console: list[str] = []
    errors: list[str] = []
    pasting_page.on("console", lambda message: console.append(message.text))
    pasting_page.on("pageerror", lambda error: errors.append(str(error)))
    answers: list[str] = []
    pasting_page.on("response", lambda response: answers.append(f"{response.status} {response.url}"))
    pasting_page.goto(f"{site.url}/")

    pasting_page.add_script_tag(content=JS.code, type="module")

    deadline = time.monotonic() + 120
    while not any(line.startswith("played ") for line in console) and not errors and time.monotonic() < deadline:
        pasting_page.wait_for_timeout(200)  # lets Playwright deliver the page's console messages
    assert errors == []
    assert any(re.fullmatch(r"sound after \d+ ms", line) for line in console), (console, answers)
    assert any(re.fullmatch(r"played \d+\.\d s", line) for line in console), (console, answers)
