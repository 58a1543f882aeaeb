"""The page highlights the word being heard, by each path's playback clock, in Chromium."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from playwright.sync_api import Page

from bench.support.player import log, open_player, poll, wait_for
from bench.support.server import Server

TEXT = (
    "Dr. Smith paid $5 for the first book. The second sentence follows after a short pause. "
    "Then a third one comes, with a comma or two. And the last sentence ends it all."
)
# The highlight is compared with the words' times on the player's own clock, sampled every 20 ms
# in the page: a highlight within this much of the clock is in step with what is heard.
TOLERANCE = 0.1
# A sample taken this long after the one before shows a page that was stalled (the machine is
# shared and loaded): the player's own timer was held up too, so such a sample is not judged.
STALLED = 0.05

SAMPLER = """() => {
    const root = document.querySelector('[data-speech-player]');
    const player = root.speechPlayer;
    window.wordSamples = [];
    window.wordLists = [];
    let last = performance.now();
    window.wordSampler = setInterval(() => {
        const now = performance.now();
        const gap = (now - last) / 1000;
        last = now;
        const session = player.session;
        if (!session?.playback) return;
        if (!window.wordLists.includes(session.words)) window.wordLists.push(session.words);
        const mark = root.querySelector('.sp-word.is-current');
        window.wordSamples.push({
            t: session.playback.played(),
            list: window.wordLists.indexOf(session.words),
            current: mark ? Number(mark.dataset.start) : null,
            gap,
        });
    }, 20);
}"""


def token_start(source: str, offset: int) -> int:
    """Where the whitespace-separated token holding ``offset`` starts (the page's spans)."""
    return max(source.rfind(" ", 0, offset + 1) + 1, 0)


def heard_at(words: list[dict[str, Any]], t: float) -> int | None:
    """The token of the last word whose start has passed on the clock."""
    started = [word for word in words if word["start"] <= t]
    return token_start(TEXT, started[-1]["charStart"]) if started else None


def check_samples(samples: list[dict[str, Any]], words: list[dict[str, Any]]) -> int:
    checked = 0
    for before, sample in itertools.pairwise(samples):
        t, current = sample["t"], sample["current"]
        if sample["gap"] > STALLED or before["gap"] > STALLED:
            continue
        # Any word heard at some moment since the sample before, within the tolerance (short words all
        # count): the player's last tick read the clock in that span, and a clock that jumped (WebKit's
        # MediaSource time moves in steps under load) may have jumped after it.
        since = min(before["t"], t) - TOLERANCE
        near = [token_start(TEXT, w["charStart"]) for w in words if since <= w["start"] <= t + TOLERANCE]
        allowed = {heard_at(words, since), *near}
        if words and t < words[0]["start"] - TOLERANCE:
            assert current is None, f"a word is highlighted at {t:.3f} s, before the first sound"
        assert current in allowed, f"at {t:.3f} s the page marks {current}, the clock says {allowed}"
        checked += current is not None
    return checked


def first_sound(words: list[dict[str, Any]]) -> float:
    return float(words[0]["start"])


def samples_of(page: Page) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    return page.evaluate("window.wordSamples"), page.evaluate("window.wordLists")


@pytest.mark.parametrize("path", ["mse", "webcodecs", "pcm"])
def test_the_word_heard_is_highlighted_in_step_with_the_clock(page: Page, site: Server, path: str) -> None:
    open_player(page, site.url, path)
    page.fill(".sp-text", TEXT)
    page.evaluate(SAMPLER)
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    assert [event for event in log(page) if event["name"] == "error"] == []
    samples, lists = samples_of(page)

    words = lists[0]
    assert [w["text"] for w in words][:4] == ["Dr.", "Smith", "paid", "$5"]
    assert all(TEXT[w["charStart"] : w["charEnd"]] == w["text"] for w in words)
    assert check_samples(samples, words) > 50
    # Highlighting starts with the first sound: the first marked sample comes once the clock reaches it.
    first_marked = next(sample for sample in samples if sample["current"] is not None)
    assert first_marked["t"] >= words[0]["start"] - TOLERANCE
    assert first_marked["t"] < words[0]["start"] + 0.3


@pytest.mark.parametrize("path", ["mse", "pcm"])
def test_clicking_a_word_goes_there_and_the_highlight_follows(page: Page, site: Server, path: str) -> None:
    open_player(page, site.url, path)
    page.fill(".sp-text", TEXT)
    page.evaluate(SAMPLER)
    page.click(".sp-speak")
    poll(page, "() => window.wordSamples.some((s) => s.current !== null)", timeout=60)
    target = TEXT.index("third")
    if path == "mse":  # wait until its audio is buffered: the click then moves the element's clock
        buffered = """(target) => {
            const session = document.querySelector('[data-speech-player]').speechPlayer.session;
            const word = session.words.find((w) => w.charStart === target);
            return word && word.start < session.playback.buffered();
        }"""
        poll(page, buffered, target, timeout=60)
    else:
        time.sleep(0.5)
    page.click(f".sp-word[data-start='{target}']")
    poll(page, f"() => window.wordSamples.some((s) => s.current === {target})", timeout=60)
    time.sleep(1.0)
    page.click(".sp-stop")
    samples, lists = samples_of(page)

    for index, words in enumerate(lists):
        check_samples([sample for sample in samples if sample["list"] == index], words)
    if path == "mse":  # buffered audio: the same stream, the clock jumped forward
        assert len(lists) == 1
    else:  # a new stream from the start of the sentence, its offsets still in the whole text
        assert len(lists) == 2
        assert lists[1][0]["charStart"] == TEXT.index("Then a third")
