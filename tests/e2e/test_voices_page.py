"""The page's voice picker in Chromium: grouped by language in its own name, the text box turns
right to left for Arabic, Farsi and Hebrew, the choice survives a reload, a sample plays on request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Request

from bench.support.fake_hub import HubVoice, add_voice, language
from bench.support.player import first, log, open_player, poll, wait_for
from bench.support.server import Server, start_server, stop_server

ARABIC = "ar_JO-kareem-low"
FARSI = "fa_IR-amir-medium"
HEBREW = "he_IL-motek-medium"
GERMAN = "de_DE-thorsten-medium"


@pytest.fixture(scope="module")
def voices_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("voices-site")
    store = root / "voices"
    add_voice(store, HubVoice(ARABIC, language("ar_JO", "Arabic", "العربية")))
    add_voice(store, HubVoice(FARSI, language("fa_IR", "Farsi", "فارسی")))
    add_voice(store, HubVoice(HEBREW, language("he_IL", "Hebrew", "עברית")))
    add_voice(store, HubVoice(GERMAN, language("de_DE", "German", "Deutsch"), sample_rate=16_000))
    env = {"DJANGO_SETTINGS_MODULE": "ttsproject.settings", "SPEECH_VOICES_DIR": str(store)}
    srv = start_server(root, env)
    yield srv
    stop_server(srv)


def text_direction(page: Page) -> list[str]:
    script = (
        "() => { const t = document.querySelector('.sp-text'); return [t.dir, t.lang, getComputedStyle(t).direction]; }"
    )
    return list(page.evaluate(script))


def choose(page: Page, voice: str) -> None:
    page.select_option(".sp-voice", voice)


def test_voices_grouped_by_language_and_text_direction(page: Page, voices_site: Server) -> None:
    open_player(page, voices_site.url)
    groups = page.evaluate("() => [...document.querySelectorAll('.sp-voice optgroup')].map((g) => g.label)")
    assert {"العربية", "فارسی", "עברית", "Deutsch", "English", "OpenAI names"} <= set(groups)
    assert groups[-1] == "OpenAI names"
    label = page.evaluate(f"() => document.querySelector('.sp-voice option[value=\"{GERMAN}\"]').textContent")
    assert label == "thorsten · medium · DE"

    for voice, code in [(ARABIC, "ar-JO"), (FARSI, "fa-IR"), (HEBREW, "he-IL")]:
        choose(page, voice)
        assert text_direction(page) == ["rtl", code, "rtl"]
    choose(page, GERMAN)
    assert text_direction(page) == ["ltr", "de-DE", "ltr"]
    choose(page, HEBREW)

    page.reload()
    open_player(page, voices_site.url)
    assert page.input_value(".sp-voice") == HEBREW  # remembered
    assert text_direction(page) == ["rtl", "he-IL", "rtl"]


def test_a_sample_plays_in_the_voice_and_its_language(page: Page, voices_site: Server) -> None:
    open_player(page, voices_site.url, "pcm")
    choose(page, GERMAN)
    bodies: list[dict[str, str]] = []

    def sent(request: Request) -> None:
        if request.method == "POST":
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", sent)
    page.click(".sp-sample")
    wait_for(page, "ended", "error")
    assert [event for event in log(page) if event["name"] == "error"] == []
    assert first(log(page), "ended")["duration"] > 0.5
    assert bodies[-1]["voice"] == GERMAN
    assert bodies[-1]["input"] == "Hallo, das ist meine Stimme."
    assert page.input_value(".sp-text").startswith("Hello!")  # the listener's text is left alone
    poll(page, "() => document.querySelector('.sp-status').textContent.startsWith('Done')")
