"""`SpeechPlayer.live()`: text written while it arrives is spoken sentence by sentence, in one gapless
playback, in Chromium, Firefox ESR and WebKitGTK (each on the path it chooses by itself)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, Request

from bench.support.browsers import ENGINES, Browser, BrowserPage, ChromiumPage, launch, wait_for
from bench.support.server import Server

FIRST = "Live speech begins with this first sentence. "
MIDDLE = [
    "The second one was written while the first was still being spoken. ",
    "A third sentence follows right after it. ",
    "And the fourth keeps the voice going without a pause. ",
]
LAST = "The last sentence ends the answer."
AUTOMATIC = {"chromium": "mse", "firefox": "webcodecs", "webkit": "mse"}
# Seconds between sentences where nothing is heard that should be (a stall or a hole in the timeline).
MAX_GAP = 0.05

# A button whose (trusted) click starts a live session: the AudioContext and the media element need
# a user gesture. The page's events and the writer's steps are logged with performance.now().
HARNESS = """(async () => {
  const { SpeechPlayer } = await import('/static/speech/player.js');
  const config = JSON.parse(document.querySelector('#speech-player-config').textContent);
  const player = new SpeechPlayer({ ...config, audio: new Audio(), path: null });
  window.livePlayer = player;
  window.liveLog = [];
  const log = (name, detail = {}) => window.liveLog.push({ name, at: performance.now(), ...detail });
  for (const name of ['firstbyte', 'lastbyte', 'playing', 'ended', 'error', 'word']) {
    player.on(name, (detail) => log(name, detail));
  }
  const audio = player.audio;
  audio.addEventListener('waiting', () => log('waiting', { t: audio.currentTime }));
  const ranges = () =>
    [...Array(audio.buffered.length).keys()].map((i) => [audio.buffered.start(i), audio.buffered.end(i)]);
  audio.addEventListener('ended', () => log('audio ended', { ranges: ranges() }));
  window.buffersStarted = [];
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (when = 0, ...rest) {
    window.buffersStarted.push({ when, duration: this.buffer.duration });
    return start.call(this, when, ...rest);
  };
  const button = document.createElement('button');
  button.id = 'live-go';
  button.textContent = 'Live';
  button.style.cssText = 'position: fixed; top: 0; left: 0; z-index: 99; width: 80px; height: 40px';
  button.addEventListener('click', () => {
    window.live = player.live({ path: window.livePath || null });
    log('started');
    window.livePlan?.(window.live, log);
  });
  document.body.append(button);
  return true;
})()"""

# The first sentence word by word, three more at once, then (once sound has begun, or after 20 s)
# the last one and the end.
WRITER = """((first, middle, last) => {
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  window.livePlan = async (live, log) => {
    for (const word of first.split(/(?<= )/)) {
      live.write(word);
      await pause(40);
    }
    log('first sentence written');
    for (const sentence of middle) {
      for (const word of sentence.split(/(?<= )/)) live.write(word);
      await pause(20);
    }
    const deadline = performance.now() + 20000;
    while (!window.liveLog.some((e) => e.name === 'playing' || e.name === 'error') && performance.now() < deadline) {
      await pause(20);
    }
    live.write(last);
    live.end();
    log('last written');
  };
  return true;
})"""


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Browser]:
    started = launch(request.param, playwright)
    yield started
    started.close()


@pytest.fixture
def live_page(engine: Browser, site: Server) -> Iterator[BrowserPage]:
    page = engine.new_page()
    page.goto(f"{site.url}/")
    wait_for(lambda: page.evaluate("Boolean(document.querySelector('#speech-player-config'))"), 30, "the page")
    assert page.evaluate(HARNESS)
    yield page
    page.evaluate("window.livePlayer?.destroy()")
    page.close()


def logged(page: BrowserPage, name: str | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = page.evaluate("window.liveLog")
    return [entry for entry in entries if name is None or entry["name"] == name]


def wait_logged(page: BrowserPage, *names: str, timeout: float = 90) -> None:
    try:
        wait_for(lambda: any(entry["name"] in names for entry in logged(page)), timeout, f"one of {names}")
    except Exception:
        assert not page.crashed(), f"the {page.engine} page crashed"
        raise


@pytest.mark.parametrize("forced", [None, "webcodecs", "pcm"])
def test_speaks_text_as_it_arrives_in_one_gapless_playback(live_page: BrowserPage, forced: str | None) -> None:
    """The path this browser chooses, and the two Web Audio paths forced (in Firefox, forcing webcodecs
    is its own choice again: run all the same, so that nothing is skipped)."""
    page = live_page
    page.evaluate(f"window.livePath = {json.dumps(forced)}")
    page.evaluate(f"({WRITER})({json.dumps(FIRST)}, {json.dumps(MIDDLE)}, {json.dumps(LAST)})")
    page.click("#live-go")
    wait_logged(page, "ended", "error")
    assert logged(page, "error") == []
    text = FIRST + "".join(MIDDLE) + LAST
    assert page.evaluate("window.live.text") == text

    # Causality: sound after the first sentence was complete, and before the last text was written.
    first_written = logged(page, "first sentence written")[0]["at"]
    playing = logged(page, "playing")[0]
    assert first_written < playing["at"] <= logged(page, "last written")[0]["at"]
    requests = page.evaluate("window.live.requests.map(({from, to, start, end}) => ({from, to, start, end}))")
    assert text[requests[0]["from"] : requests[0]["to"]] == FIRST  # the first piece is the first sentence
    assert len(requests) >= 3  # the rest came in more pieces, as it arrived
    assert requests[-1]["to"] == len(text)
    # Each response starts where the one before ended on the path's timeline.
    starts = [request["start"] for request in requests]
    assert starts[0] == 0
    assert starts == sorted(starts)
    duration = logged(page, "ended")[0]["duration"]

    path = playing["path"]
    assert path == (forced or AUTOMATIC[page.engine])
    # Between sentences, nothing stands still: where one response ends the next is already there.
    # (A stall inside a response, on a machine too loaded to keep up, is not this test's business.)
    boundaries = starts[1:]
    if path == "mse":
        ranges = logged(page, "audio ended")[0]["ranges"]
        assert len(ranges) == 1, f"holes in the buffered audio: {ranges}"
        assert ranges[0][0] <= MAX_GAP
        assert abs(ranges[0][1] - duration) <= MAX_GAP
        stalls = [entry["t"] for entry in logged(page, "waiting") if entry["at"] > playing["at"]]
        assert not [t for t in stalls if any(abs(t - at) <= MAX_GAP for at in boundaries)], (stalls, boundaries)
    else:
        buffers = page.evaluate("window.buffersStarted")
        assert abs(sum(b["duration"] for b in buffers) - duration) < 0.01
        position, gaps = 0.0, {}
        for a, b in itertools.pairwise(buffers):
            position += a["duration"]
            gaps[position] = b["when"] - (a["when"] + a["duration"])
        for at in boundaries:
            joined = min(gaps, key=lambda p: abs(p - at))
            assert abs(joined - at) < 1e-3, f"no buffer starts at the response's start {at}"
            assert gaps[joined] <= MAX_GAP, f"a gap of {gaps[joined]:.3f} s at {at:.3f} s"

    # Words: in order over the whole text, on the one timeline, each within its response.
    words = [entry for entry in logged(page, "word") if entry["index"] >= 0]
    assert len(words) > 20
    assert [w["index"] for w in words] == sorted(w["index"] for w in words)
    assert [w["charStart"] for w in words] == sorted(w["charStart"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert sum(text[w["charStart"] : w["charEnd"]] == w["text"] for w in words) > len(words) * 0.8
    for word in words:
        k = max(i for i, request in enumerate(requests) if request["from"] <= word["charStart"])
        assert word["start"] >= requests[k]["start"] - 1e-6
    assert words[-1]["charStart"] >= len(text) - len("answer.")
    assert page.console_errors() == []
    assert not page.crashed()


def test_stop_cancels_every_request_in_flight(live_page: BrowserPage, site: Server) -> None:
    page = live_page
    long_sentence = "This sentence is one of many, so that the whole text takes a while to speak. "
    page.evaluate(
        """((sentence) => { window.livePlan = (live) => { live.write(sentence.repeat(30)); }; return true; })"""
        f"({json.dumps(long_sentence)})"
    )
    page.click("#live-go")
    wait_logged(page, "playing", "error")
    assert logged(page, "error") == []
    # Two requests open: the one playing and the next.
    wait_for(lambda: page.evaluate("window.live.requests.length") >= 2, 30, "the second request")
    open_requests = page.evaluate("window.live.requests.filter((r) => !r.received).length")
    assert open_requests >= 1
    hang_ups = site.log_text().count("listener gone after")
    page.evaluate("window.livePlayer.stop()")
    wait_for(
        lambda: site.log_text().count("listener gone after") >= hang_ups + open_requests,
        10,
        f"the server to notice {open_requests} hang-ups",
    )
    assert page.evaluate("window.live.stopped")
    assert page.evaluate("window.live.write('More text. ').requests.length") == page.evaluate(
        "window.live.requests.length"
    )
    assert [entry["name"] for entry in logged(page) if entry["name"] in ("ended", "error")] == []
    assert page.console_errors() == []
    assert not page.crashed()


def test_a_whole_page_is_asked_for_a_piece_at_a_time_and_pauses(live_page: BrowserPage) -> None:
    """10,000 words written at once: the first piece is the first sentence, later ones are bigger,
    and only while less than the look-ahead lies ahead; pause() holds the clock, resume() goes on."""
    page = live_page
    page.evaluate(
        """(() => {
        window.livePage = Array.from({ length: 1250 }, (_, i) => `This is sentence ${i + 1} of a long page.`).join(' ');
        window.livePlan = (live) => live.write(window.livePage).end();
        return true;
    })()"""
    )
    page.click("#live-go")
    wait_logged(page, "playing", "error")
    assert logged(page, "error") == []
    time.sleep(3)  # the look-ahead allows three pieces (about 3 + 20 + 55 s) until some 55 s have played
    text = page.evaluate("window.livePage")
    assert len(text.split()) == 10_000
    requests = page.evaluate("window.live.requests.map(({from, to}) => [from, to])")
    lengths = [to - start for start, to in requests]
    assert text[: requests[0][1]] == "This is sentence 1 of a long page. "
    assert 2 <= len(requests) <= 3, requests
    assert lengths == sorted(lengths)
    assert page.evaluate("window.live.requested") < 1200

    played = "window.livePlayer.session.playback.played()"
    page.evaluate("window.livePlayer.pause()")
    assert page.evaluate("window.livePlayer.paused")
    # The clock comes to rest (a context's suspend() and WebKit's pipeline take a moment), then stays.
    held = page.evaluate(played)
    for _ in range(25):
        time.sleep(0.2)
        before, held = held, page.evaluate(played)
        if abs(held - before) < 0.005:
            break
    time.sleep(1)
    assert abs(page.evaluate(played) - held) < 0.05  # playing, it would have moved on by a second
    page.evaluate("window.livePlayer.resume()")
    time.sleep(1.5)
    assert page.evaluate(played) > held + 0.5
    assert not page.evaluate("window.livePlayer.paused")
    assert [entry["name"] for entry in logged(page) if entry["name"] in ("ended", "error")] == []
    assert page.console_errors() == []
    assert not page.crashed()


def test_the_second_request_waits_for_the_first_ones_audio(live_page: BrowserPage) -> None:
    """Written all at once, the second piece is ready at once, but it is asked for only once the first
    response's audio has begun to arrive: the first synthesis has the server to itself. Request start
    times: the page's Resource Timing (the log's clock), and in Chromium Playwright's request events."""
    page = live_page
    requests: list[Request] = []
    if isinstance(page, ChromiumPage):
        page.page.on(
            "request", lambda request: requests.extend([request] if request.url.endswith("/audio/speech") else [])
        )
    text = FIRST + "".join(MIDDLE) + LAST
    page.evaluate(
        "((text) => { window.livePlan = (live) => live.write(text).end(); window.livePlayer.on('firstbyte', () =>"
        " window.liveLog.push({ name: 'requests at first byte', count: window.live.requests.length })); return true; })"
        f"({json.dumps(text)})"
    )
    page.click("#live-go")
    wait_logged(page, "ended", "error")
    assert logged(page, "error") == []
    assert [entry["count"] for entry in logged(page, "requests at first byte")] == [1]
    first_byte = logged(page, "firstbyte")[0]["at"]
    starts = page.evaluate(
        "performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/audio/speech'))"
        ".map((e) => e.startTime).sort((a, b) => a - b)"
    )
    assert len(starts) >= 3
    assert starts[0] < first_byte <= starts[1], (first_byte, starts)  # (Firefox: whole milliseconds)
    if requests:  # Playwright's start times are wall-clock milliseconds
        origin = page.evaluate("performance.timeOrigin")
        assert json.loads(requests[0].post_data or "{}")["input"] == FIRST
        began = [request.timing["startTime"] for request in requests]
        assert len(began) == len(starts)
        assert began[0] < origin + first_byte
        assert began[1] >= origin + first_byte - 20, f"{origin + first_byte - began[1]:.0f} ms before the first byte"
    assert page.console_errors() == []
    assert not page.crashed()


@pytest.mark.parametrize("forced", [None, "pcm"])
def test_a_new_live_text_after_pause_plays(live_page: BrowserPage, forced: str | None) -> None:
    """pause() then, in the same click, a new live(): on a Web Audio path the context may still be
    suspending when the new session starts; the new session plays all the same."""
    page = live_page
    page.evaluate(f"window.livePath = {json.dumps(forced)}")
    long_sentence = "This sentence is one of many, so that the whole text takes a while to speak. "
    page.evaluate(
        """((text) => {
        window.livePlan = (live) => live.write(text).end();
        const button = document.createElement('button');
        button.id = 'live-again';
        button.textContent = 'Again';
        button.style.cssText = 'position: fixed; top: 50px; left: 0; z-index: 99; width: 80px; height: 40px';
        button.addEventListener('click', () => {
          window.livePlayer.pause();
          window.liveLog.push({ name: 'again', at: performance.now() });
          window.live = window.livePlayer.live({ path: window.livePath || null }).write(text).end();
        });
        document.body.append(button);
        return true;
    })"""
        f"({json.dumps(long_sentence * 5)})"
    )
    page.click("#live-go")
    wait_logged(page, "playing", "error")
    assert logged(page, "error") == []
    time.sleep(0.5)
    page.click("#live-again")
    again = logged(page, "again")[0]["at"]
    wait_for(lambda: any(entry["at"] > again for entry in logged(page, "playing")), 30, "the new session's sound")
    played = "window.livePlayer.session.playback.played()"
    before = page.evaluate(played)
    time.sleep(1.5)
    assert page.evaluate(played) > before + 0.5  # its clock runs
    assert not page.evaluate("window.livePlayer.paused")
    path = logged(page, "playing")[-1]["path"]
    assert path == (forced or AUTOMATIC[page.engine])
    if path != "mse":
        assert page.evaluate("window.livePlayer.ctx.state") == "running"
    assert logged(page, "error") == []
    assert page.console_errors() == []
    assert not page.crashed()


def test_the_live_answer_demo_speaks_as_the_answer_streams_in(engine: Browser, site: Server) -> None:
    """The site's demo: the answer appears word by word, sound starts, the word heard is marked (in
    order), and Stop stops it."""
    page = engine.new_page()
    try:
        page.goto(f"{site.url}/")
        wait_for(lambda: page.evaluate("Boolean(document.querySelector('[data-live-demo]')?.liveDemo)"), 30, "demo")
        page.evaluate(
            """(() => {
            const root = document.querySelector('[data-live-demo]');
            root.querySelector('.live-rate').value = '12';
            window.marked = [];
            setInterval(() => {
                const words = [...root.querySelectorAll('.live-word')];
                const at = words.findIndex((span) => span.classList.contains('is-current'));
                if (at >= 0 && window.marked.at(-1) !== at) window.marked.push(at);
            }, 20);
            return true;
        })()"""
        )
        page.click(".live-ask")
        wait_for(lambda: len(page.evaluate("window.marked")) >= 6, 60, "six words marked as heard")
        marked = page.evaluate("window.marked")
        assert marked == sorted(marked)
        assert page.evaluate("document.querySelector('.live-status').textContent").startswith("Speaking")
        written = page.evaluate("document.querySelector('.live-answer').textContent")
        assert page.evaluate("document.querySelector('[data-live-demo]').liveDemo.answer").startswith(written)
        page.click(".live-stop")
        assert page.evaluate("document.querySelector('.live-status').textContent") == "Stopped."
        assert page.evaluate("document.querySelector('[data-live-demo]').liveDemo.player.session === null")
        assert page.console_errors() == []
        assert not page.crashed()
    finally:
        page.close()


CUTS = """async (cases) => {
    const { nextCut } = await import('/static/speech/live.js');
    return cases.map(([text, from, limit, ended, waited]) => nextCut(text, from, { limit, ended, waited }));
}"""


def test_pieces_are_cut_at_sentence_ends(page: Page, site: Server) -> None:
    """live.js's nextCut, in Chromium: where the next piece of the written text ends (-1: not yet)."""
    page.goto(f"{site.url}/")
    text = "Dr. Smith paid $5, e.g. for a book. The second one follows! Third? Yes"
    clause = "This clause runs on for quite a while without an end, and then it goes on"
    tail = "word " * 60 + "unfinish"
    huge = "a " * 3000
    cases = [
        (text, 0, 0, False, False),  # the first sentence only ("Dr." and "e.g." end none)
        (text, 36, 300, False, False),  # the complete sentences there are, up to the limit
        (text, 36, 10, False, False),  # one sentence at least, whatever the limit
        (text, 67, 300, False, False),  # an unended tail waits
        (text, 67, 300, True, False),  # ... until end()
        (clause, 0, 0, False, False),  # a long clause waits
        (clause, 0, 0, False, True),  # ... until the wait is over: cut after its comma
        (tail, 0, 0, False, True),  # no comma: a long tail goes to its last whole word
        (huge + ".", 0, 0, False, False),  # never more than 4,000 characters, cut at a space
        ("Line one\nLine two", 0, 0, False, False),  # a line break ends a sentence
    ]
    cuts = page.evaluate(CUTS, [list(case) for case in cases])
    assert cuts[0] == text.index("The second")
    assert cuts[1] == text.index("Yes")
    assert cuts[2] == text.index("Third")
    assert cuts[3] == -1
    assert cuts[4] == len(text)
    assert cuts[5] == -1
    assert clause[: cuts[6]] == "This clause runs on for quite a while without an end, "
    assert tail[: cuts[7]] == "word " * 60
    assert cuts[8] == 4000
    assert cuts[9] == len("Line one\n")
