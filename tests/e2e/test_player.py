"""The page in a real Chromium against the real server: every playback path, stop, errors, the look."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from bench.support.player import first, log, open_player, poll, wait_for
from bench.support.server import Server
from tests.e2e.conftest import artifact
from tests.support.audio_check import duration
from tests.support.slow_proxy import SlowProxy

TEXT = (
    "Streaming speech starts playing at once. "
    "The listener hears the first words while the rest is still being made. "
    "Nothing waits for the last byte. This is the final sentence."
)
LONG = "This sentence is one of many, so that the whole text takes minutes to speak. " * 50


@pytest.fixture(scope="module")
def expected_seconds(site: Server) -> float:
    return duration(site.post_speech(input=TEXT, response_format="pcm").content, "pcm")


@pytest.mark.parametrize("path", ["mse", "webcodecs", "pcm", "element"])
def test_plays_from_the_first_chunk(page: Page, slow_site: SlowProxy, expected_seconds: float, path: str) -> None:
    open_player(page, slow_site.url, path)
    page.fill(".sp-text", TEXT)
    ends_before = len(slow_site.ends)
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    events = log(page)

    assert [event for event in events if event["name"] == "error"] == []
    playing, ended = first(events, "playing"), first(events, "ended")
    assert playing["path"] == path
    # The audio decoded and played in full: as long as the server's own rendering (voices vary a little).
    assert expected_seconds * 0.75 < ended["duration"] < expected_seconds * 1.25
    # ... at the speed of speech, from the first sound to the end.
    assert (ended["at"] - playing["at"]) / 1000 > ended["duration"] * 0.8
    # The clock moved while playing.
    played = [event["played"] for event in events if event["name"] == "progress"]
    assert max(played) > ended["duration"] * 0.8
    assert first(events, "firstbyte")["at"] <= playing["at"]
    # Sound began before the response was complete (the proxy held its end back).
    assert len(slow_site.ends) == ends_before + 1
    assert playing["at"] / 1000 < slow_site.ends[-1]
    assert page.text_content(".sp-ttfs") != "—"
    assert "Done" in (page.text_content(".sp-status") or "")


def test_ctrl_enter_speaks_and_download_holds_the_audio(page: Page, site: Server, tmp_path: Path) -> None:
    open_player(page, site.url, "mse")
    page.fill(".sp-text", "Hello there.")
    page.press(".sp-text", "Control+Enter")
    wait_for(page, "ended", "error")
    assert first(log(page), "ended")
    with page.expect_download() as info:
        page.click(".sp-download")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name == "speech.mp3"
    assert 0.5 < duration(saved.read_bytes(), "mp3") < 3


def test_stop_mid_stream_stops_the_server(page: Page, site: Server) -> None:
    open_player(page, site.url, "mse")
    page.fill(".sp-text", LONG)
    page.click(".sp-speak")
    wait_for(page, "playing", "error")
    hang_ups = site.log_text().count("listener gone after")
    page.click(".sp-stop")
    time.sleep(0.5)
    at_stop = site.log_text().count("piece ")
    time.sleep(2.0)  # long enough to synthesise a dozen more pieces had the server not noticed

    assert [event["name"] for event in log(page) if event["name"] in ("ended", "error")] == []
    assert page.evaluate("document.querySelector('.sp-audio').paused")
    assert page.text_content(".sp-status") == "Stopped."
    assert site.log_text().count("listener gone after") == hang_ups + 1
    assert site.log_text().count("piece ") - at_stop <= 1


def test_speaking_again_replaces_what_is_playing(page: Page, site: Server) -> None:
    open_player(page, site.url, "pcm")
    page.fill(".sp-text", LONG)
    page.click(".sp-speak")
    wait_for(page, "playing", "error")
    page.fill(".sp-text", "Something else.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    events = log(page)
    assert [event["name"] for event in events if event["name"] in ("playing", "ended", "error")] == [
        "playing",
        "playing",
        "ended",
    ]
    assert first(events, "ended")["duration"] < 3


@pytest.mark.parametrize("path", ["mse", "element"])
def test_api_errors_are_shown(page: Page, site: Server, path: str) -> None:
    open_player(page, site.url, path)
    page.evaluate("document.querySelector('.sp-voice').add(new Option('nope', 'nope'), 0)")
    page.select_option(".sp-voice", "nope")
    page.click(".sp-speak")
    wait_for(page, "error", "playing")
    error = first(log(page), "error")
    assert error["status"] == 400
    assert error["param"] == "voice"
    status = page.locator(".sp-status")
    assert "Voice 'nope' is not available" in (status.text_content() or "")
    assert "is-error" in (status.get_attribute("class") or "")


def test_page_looks_like_a_product(page: Page, site: Server) -> None:
    open_player(page, site.url)
    page.fill(".sp-text", "Hello there.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=artifact("page-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 740})
    page.screenshot(path=artifact("page-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # Everything is reachable from the keyboard, in reading order.
    page.focus(".sp-text")
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.className"))
    assert order == ["sp-voice", "sp-sample", "sp-speed", "sp-path", "sp-speak", "sp-download"]


# From the third append on, the SourceBuffer says it is full until something already played is removed.
FULL_BUFFER = """(() => {
    const append = SourceBuffer.prototype.appendBuffer;
    const remove = SourceBuffer.prototype.remove;
    window.quota = { appends: 0, refused: 0, removed: [] };
    SourceBuffer.prototype.appendBuffer = function (data) {
        if (++window.quota.appends >= 3 && !window.quota.removed.length) {
            window.quota.refused++;
            throw new DOMException("The SourceBuffer is full.", "QuotaExceededError");
        }
        return append.call(this, data);
    };
    SourceBuffer.prototype.remove = function (start, end) {
        window.quota.removed.push([start, end]);
        return remove.call(this, start, end);
    };
})()"""


def test_full_source_buffer_evicts_played_audio(page: Page, slow_site: SlowProxy, expected_seconds: float) -> None:
    page.add_init_script(FULL_BUFFER)
    open_player(page, slow_site.url, "mse")
    page.fill(".sp-text", TEXT)
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    events = log(page)
    quota = page.evaluate("window.quota")

    assert [event for event in events if event["name"] == "error"] == []
    assert quota["refused"] >= 1
    assert len(quota["removed"]) == 1
    start, end = quota["removed"][0]
    assert start == 0
    assert end > 0
    # Nothing was lost: everything after the refusal was appended once there was room.
    assert expected_seconds * 0.75 < first(events, "ended")["duration"] < expected_seconds * 1.25


# Every object URL the page makes, and every one it frees.
OBJECT_URLS = """(() => {
    const create = URL.createObjectURL;
    const revoke = URL.revokeObjectURL;
    window.objectUrls = { made: [], revoked: [] };
    URL.createObjectURL = (object) => {
        const url = create.call(URL, object);
        window.objectUrls.made.push(url);
        return url;
    };
    URL.revokeObjectURL = (url) => {
        window.objectUrls.revoked.push(url);
        return revoke.call(URL, url);
    };
})()"""
DESTROY = """() => {
    const root = document.querySelector('[data-speech-player]');
    window.destroyed = { ctx: root.speechPlayer.ctx };
    root.speechWidget.destroy();
}"""
AFTER_DESTROY = """() => {
    const root = document.querySelector('[data-speech-player]');
    const audio = root.querySelector('.sp-audio');
    return {
        mounted: 'speechPlayer' in root || 'speechWidget' in root,
        paused: audio.paused,
        src: audio.getAttribute('src'),
        context: window.destroyed.ctx?.state ?? null,
        leaked: window.objectUrls.made.filter((url) => !window.objectUrls.revoked.includes(url)),
        made: window.objectUrls.made.length,
        transcript: root.querySelector('.sp-transcript').childElementCount,
        transcriptHidden: root.querySelector('.sp-transcript').hidden,
        voices: [...root.querySelector('.sp-voice').options].map((option) => option.value),
        status: root.querySelector('.sp-status').textContent,
        download: root.querySelector('.sp-download').getAttribute('href'),
    };
}"""


def destroy_and_check(page: Page) -> None:
    page.evaluate(DESTROY)
    poll(page, "() => window.destroyed.ctx.state === 'closed'")  # close() takes a moment
    state = page.evaluate(AFTER_DESTROY)
    assert state["mounted"] is False
    assert state["paused"] is True
    assert state["src"] is None
    assert state["made"] >= 1
    assert state["leaked"] == []
    assert state["transcript"] == 0
    assert state["transcriptHidden"] is True
    assert state["voices"] == ["alloy"]  # the template's markup, as it was before mounting
    assert state["status"] == ""
    assert state["download"] is None
    # Its listeners are gone: the controls do nothing now.
    logged = len(log(page))
    page.fill(".sp-text", "Hello there.")
    page.click(".sp-speak")
    page.press(".sp-text", "Control+Enter")
    time.sleep(1.0)
    assert page.text_content(".sp-status") == ""
    assert len(log(page)) == logged


def test_destroy_mid_stream_unmounts_the_widget_and_stops_the_server(page: Page, site: Server) -> None:
    page.add_init_script(OBJECT_URLS)
    open_player(page, site.url, "mse")  # plays from an object URL, on an AudioContext made by the click
    page.fill(".sp-text", LONG)
    page.click(".sp-speak")
    wait_for(page, "playing", "error")
    hang_ups = site.log_text().count("listener gone after")
    destroy_and_check(page)
    deadline = time.monotonic() + 10
    while site.log_text().count("listener gone after") == hang_ups and time.monotonic() < deadline:
        time.sleep(0.1)
    assert site.log_text().count("listener gone after") == hang_ups + 1


def test_destroy_after_the_end_frees_the_download(page: Page, site: Server) -> None:
    page.add_init_script(OBJECT_URLS)
    open_player(page, site.url, "pcm")
    page.fill(".sp-text", "Hello there.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    assert page.get_attribute(".sp-download", "href")
    destroy_and_check(page)


def test_pcm_plays_at_the_rate_the_server_names(page: Page, site: Server, expected_seconds: float) -> None:
    def twice_the_rate(route: Route) -> None:
        answer = route.fetch()
        assert answer.headers["x-speech-sample-rate"] == "24000"
        route.fulfill(response=answer, headers={**answer.headers, "x-speech-sample-rate": "48000"})

    page.route("**/audio/speech", twice_the_rate)
    open_player(page, site.url, "pcm")
    page.fill(".sp-text", TEXT)
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    # The same samples at twice the rate last half as long.
    assert expected_seconds * 0.75 / 2 < first(log(page), "ended")["duration"] < expected_seconds * 1.25 / 2
