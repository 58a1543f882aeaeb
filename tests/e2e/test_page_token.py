"""The player takes up the fresh page token the server hands it (``X-Speech-Page`` on an answer).

The server renews a token past half its age (tests/test_auth.py, with the signer's clock moved);
here the answer is given a renewed token on its way to the browser, and the next request must carry it.
"""

from __future__ import annotations

from playwright.sync_api import Page, Route

from bench.support.player import log, open_player, poll, wait_for
from bench.support.server import Server


def test_the_player_sends_the_renewed_token(page: Page, site: Server) -> None:
    sent: list[str | None] = []

    def renew_first(route: Route) -> None:
        sent.append(route.request.headers.get("x-speech-page"))
        answer = route.fetch()
        renewed = {"x-speech-page": "renewed-by-the-server"} if len(sent) == 1 else {}
        route.fulfill(response=answer, headers={**answer.headers, **renewed})

    page.route("**/v1/audio/speech", renew_first)
    open_player(page, site.url, "mse")
    page.fill(".sp-text", "Hello there.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    assert [event for event in log(page) if event["name"] == "error"] == []
    with page.expect_request("**/v1/audio/speech") as again:
        page.click(".sp-speak")
    poll(page, "() => window.speechLog.filter((event) => ['ended', 'error'].includes(event.name)).length >= 2")
    page.unroute_all(behavior="wait")  # the route's fetch must not outlive the page
    assert sent[0]  # the token the page was issued
    assert again.value.headers.get("x-speech-page") == "renewed-by-the-server"


def test_the_audio_element_path_takes_up_a_renewed_token(page: Page, site: Server) -> None:
    """The <audio> element reads no answer: after half an hour without one, the player asks the
    voice list first, so a renewed token reaches the stream URL."""
    page.clock.install()
    open_player(page, site.url, "element")
    page.fill(".sp-text", "Hello there.")
    asked: list[str] = []

    def renew(route: Route) -> None:
        asked.append(route.request.url)
        answer = route.fetch()
        route.fulfill(response=answer, headers={**answer.headers, "x-speech-page": "renewed-by-the-server"})

    page.route("**/v1/audio/voices", renew)
    with page.expect_request("**/speech/stream?**") as fresh:
        page.click(".sp-speak")
    wait_for(page, "ended", "error")
    assert asked == []  # the page's token was answered minutes ago
    page.clock.fast_forward("00:31:00")
    with page.expect_request("**/speech/stream?**") as later:
        page.click(".sp-speak")
    poll(page, "() => window.speechLog.filter((event) => ['ended', 'error'].includes(event.name)).length >= 2")
    page.unroute_all(behavior="wait")
    assert len(asked) == 1
    assert "token=renewed-by-the-server" not in fresh.value.url
    assert "token=renewed-by-the-server" in later.value.url
