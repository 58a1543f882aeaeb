"""/v1/docs in Chromium: Swagger UI from the site's own static files, under its CSP, offline."""

from __future__ import annotations

from playwright.sync_api import Page

from bench.support.player import poll
from bench.support.server import Server


def test_docs_render_the_speech_endpoint_with_no_console_errors(page: Page, site: Server) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(site.url) else elsewhere.append(request.url))

    # Swagger UI is 1.5 MB of script: a loaded machine takes its time.
    response = page.goto(f"{site.url}/v1/docs", timeout=180_000)

    assert response is not None
    assert "script-src" in response.headers["content-security-policy"]
    drawn = "() => document.querySelectorAll('.opblock').length > 0"  # Swagger UI has drawn the operations
    poll(page, drawn, timeout=180)
    assert page.locator(".opblock-post .opblock-summary-path", has_text="/v1/audio/speech").count() == 1
    page.wait_for_load_state("networkidle", timeout=180_000)
    assert errors == []
    assert elsewhere == []  # nothing from a CDN: the page works offline
