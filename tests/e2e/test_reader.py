"""`{% speech_reader %}` reads a page of the site aloud, in Chromium, Firefox ESR and WebKitGTK: the DOM walk
(what is read, what is skipped, offsets back to the page), sound through the player's live text, the word
heard marked with CSS highlights in step and in document order, clicks on words, the keys, the position
kept for a return visit, destroy(), and the tag in a host site under a prefix. The demo page (/read/) runs
under the site's Content-Security-Policy with its nonce.

Nothing here waits a fixed time for something to happen: each step waits for the event that shows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Playwright

from bench.support.browsers import ENGINES, Browser, BrowserPage, launch, wait_for
from bench.support.server import Server
from speech.text import sentences as server_sentences
from tests.host_site.server import PREFIX, host_site

READER = "document.querySelector('[data-speech-reader]').speechReader"
# Everything the reader reports, recorded after the reader's own listeners (so each word's highlight is
# already set when it is read here), every request body the page sends, and every change to the article.
RECORD = """(() => {
  const reader = document.querySelector('[data-speech-reader]').speechReader;
  window.readerLog = [];
  window.wordRanges = [];
  window.requestsSent = [];
  window.mutations = [];
  const player = reader.player;
  for (const name of ['playing', 'ended', 'error']) {
    player.on(name, (detail) => window.readerLog.push({ ...detail, name, state: reader.state }));
  }
  const first = (name) => (globalThis.CSS?.highlights?.get(name) ? [...CSS.highlights.get(name)][0] : null);
  player.on('word', (word) => {
    if (word.index < 0) return window.readerLog.push({ name: 'stream' });
    const range = first('speech-word');
    window.wordRanges.push(range ? range.cloneRange() : null);
    window.readerLog.push({
      name: 'word', text: word.text, offset: reader.offset + word.charStart, end: reader.offset + word.charEnd,
      highlight: range ? range.toString() : null, sentence: first('speech-sentence')?.toString() ?? null,
      index: reader.sentence, played: player.session?.playback?.played() ?? null,
    });
  });
  const original = window.fetch;
  window.fetch = function (url, init) {
    window.requestsSent.push({ url: String(url), body: init?.body ? String(init.body) : null });
    return original.apply(this, arguments);
  };
  const article = document.querySelector(reader.selector);
  new MutationObserver((records) => window.mutations.push(...records.map((r) => r.type))).observe(
    article, { subtree: true, childList: true, characterData: true, attributes: true, attributeOldValue: true });
  return reader.text.length;
})()"""


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Browser]:
    started = launch(request.param, playwright)
    yield started
    started.close()


@pytest.fixture
def engine_page(engine: Browser) -> Iterator[BrowserPage]:
    opened = engine.new_page()
    yield opened
    opened.close()


def open_reader(page: BrowserPage, url: str) -> int:
    page.goto(url)
    page.evaluate("localStorage.clear()")
    page.goto(url)
    # Mounted, and its voice chosen from the server's list (by the page's language).
    wait_for(
        lambda: page.evaluate(f"Boolean({READER.replace('.speechReader', '?.speechReader')}?.voice)"), 30, "the reader"
    )
    length: int = page.evaluate(RECORD)
    return length


def log(page: BrowserPage, name: str | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = page.evaluate("window.readerLog")
    return [entry for entry in entries if name is None or entry["name"] == name]


def wait_log(page: BrowserPage, check: Any, what: str, timeout: float = 90) -> None:
    def done() -> bool:
        errors = log(page, "error")
        assert errors == [], errors
        return bool(check(log(page)))

    try:
        wait_for(done, timeout, what)
    except TimeoutError:
        assert not page.crashed(), f"the {page.engine} page crashed"
        raise


def words(page: BrowserPage) -> list[dict[str, Any]]:
    return log(page, "word")


def highlights_supported(page: BrowserPage) -> bool:
    return bool(page.evaluate("typeof Highlight === 'function' && Boolean(globalThis.CSS?.highlights)"))


def press(page: BrowserPage, key: str) -> None:
    """A trusted key press on what has the focus (names as in Playwright: Tab, Space, ArrowRight, Escape)."""
    if page.engine == "chromium":
        page.page.keyboard.press(key)  # type: ignore[attr-defined]
        return
    codes = {"Tab": "\ue004", "Space": "\ue00d", "ArrowLeft": "\ue012", "ArrowRight": "\ue014", "Escape": "\ue00c"}
    if page.engine == "firefox":
        actions = [{"type": kind, "value": codes[key]} for kind in ("keyDown", "keyUp")]
        page._actions({"type": "key", "id": "keyboard", "actions": actions})  # type: ignore[attr-defined]
        return
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(page.driver).send_keys(codes[key]).perform()  # type: ignore[attr-defined]


# --- What is read -------------------------------------------------------------------------------------

WALK_HTML = """
<h2>Title   here</h2>
<p>First <em>para</em>graph, with a <a href="#x">link</a>.</p>
<pre>skipped pre</pre>
<p>Code <code>skipped()</code> inline is read.</p>
<figure><svg width="10" height="10"></svg><figcaption>skipped caption</figcaption></figure>
<aside>skipped aside</aside>
<nav>skipped nav</nav>
<form><label>skipped label <input value="skipped value"></label><button>skipped button</button></form>
<ul><li>One</li><li>Two</li></ul>
<blockquote>Quoted words.</blockquote>
<table><tr><td>Cell A</td><td>Cell B</td></tr></table>
<p hidden>skipped hidden</p>
<p aria-hidden="true">skipped aria</p>
<p class="gone">skipped display none</p>
<p>Seen <span class="invisible">skipped invisible</span>here.</p>
<p data-speech-skip>skipped by attribute</p>
<pre data-speech-read>forced <code>in</code></pre>
<svg width="10" height="10"><text>skipped svg</text></svg>
<script type="application/json">"skipped script"</script>
<p>Line one<br>line two</p>
<p>Soft\u00adhyphen and\u00a0space.</p>
<div dir="rtl" lang="he"><p>שלום עולם. זה משפט שני.</p></div>
"""
WALK_TEXT = (
    "Title here\nFirst paragraph, with a link.\nCode inline is read.\nOne\nTwo\nQuoted words.\nCell A\nCell B\n"
    "Seen here.\nforced in\nLine one\nline two\nSofthyphen and space.\nשלום עולם. זה משפט שני."
)
SENTENCES = [
    "Dr. Smith paid $5 for the book. Then e.g. this one! And a third? Yes.",
    'He said "stop." Then he left. Mr. and Mrs. Bennet stayed…  Next one',
    "J. R. R. Tolkien wrote it. St. Albans is a town. It ends here",
]

WALK = """(async ([html, sentences]) => {
  const { readText, splitSentences } = await import(%s);
  const box = document.createElement('section');
  box.innerHTML = html;
  document.body.append(box);
  box.querySelector('.gone').style.display = 'none';  // CSSOM: the page's CSP allows no style attribute
  box.querySelector('.invisible').style.visibility = 'hidden';
  const page = readText(box);
  const words = [...page.text.matchAll(/\\S+/g)].map((m) => ({
    word: m[0], range: page.range(m.index, m.index + m[0].length)?.toString().replace(/\\u00ad/g, ''),
  }));
  const roundTrip = page.segments.every((s) => page.offsetAt(s.node, s.offset) === s.start);
  const sentenceTexts = page.sentences.map(({ start, end }) => page.text.slice(start, end));
  const split = sentences.map((text) => splitSentences(text).map(({ start, end }) => text.slice(start, end)));
  box.remove();
  return { text: page.text, words, roundTrip, sentenceTexts, split };
})"""


def test_the_walk_reads_blocks_in_order_and_skips_what_is_not_prose(engine_page: BrowserPage, site: Server) -> None:
    """No sound: the DOM walk, the offset map both ways, and sentences as the server splits them."""
    page = engine_page
    page.goto(f"{site.url}/read/")
    url = json.dumps(f"{site.url}/static/speech/reader-text.js")
    result = page.evaluate(f"({WALK % url})({json.dumps([WALK_HTML, SENTENCES])})")

    assert result["text"] == WALK_TEXT
    assert all(word["range"] == word["word"] for word in result["words"]), result["words"]
    assert result["roundTrip"]
    assert "skipped" not in result["text"]
    assert result["sentenceTexts"][-2:] == ["שלום עולם.", "זה משפט שני."]
    assert result["split"] == [server_sentences(text) for text in SENTENCES]
    assert page.console_errors() == []


# --- Reading aloud --------------------------------------------------------------------------------------

SKIPPED = ["speech_reader", "load speech", "Figure 1", "Chapter 1\nChapter 2", "This page shows", "never read"]


def test_reads_aloud_marking_each_word_heard_in_document_order(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    text: str = page.evaluate(f"{READER}.text")
    page.click(".sr-play")
    wait_log(page, lambda entries: sum(e["name"] == "word" for e in entries) >= 25, "25 words heard")
    page.evaluate(f"{READER}.stop()")

    playing = log(page, "playing")
    assert playing, "no sound started"
    heard = words(page)
    assert max(word["played"] or 0 for word in heard) > 1.0  # the clock ran: it was heard
    offsets = [word["offset"] for word in heard]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    assert text.startswith("Pride and Prejudice\n")
    for word in heard:
        assert text[word["offset"] : word["end"]] == word["text"], word
    if highlights_supported(page):
        for word in heard:  # the mark is on the word heard, and on its sentence
            assert word["highlight"] == word["text"], word
            assert word["text"] in word["sentence"]
        in_order = """window.wordRanges.every((range, i, all) =>
            i === 0 || all[i - 1].compareBoundaryPoints(Range.START_TO_START, range) < 0)"""
        assert page.evaluate(in_order)
        # Stopped: nothing is marked any more.
        assert (
            page.evaluate(
                "[...CSS.highlights.get('speech-word')].length + [...CSS.highlights.get('speech-sentence')].length"
            )
            == 0
        )
    else:
        assert all(word["highlight"] is None for word in heard)
    # The article was never changed, and what was skipped never left the page.
    assert page.evaluate("window.mutations") == []
    bodies = [json.loads(r["body"]) for r in page.evaluate("window.requestsSent") if r["body"]]
    assert bodies
    assert all(body["input"] in text for body in bodies)
    for skipped in SKIPPED:
        assert skipped not in text
        assert all(skipped not in body["input"] for body in bodies)
    assert page.evaluate(f"{READER}.state") == "idle"
    assert page.console_errors() == []


def first_pieces(page: BrowserPage, url: str) -> list[dict[str, Any]]:
    open_reader(page, url)
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    page.evaluate(f"{READER}.stop()")
    sent = [json.loads(r["body"]) for r in page.evaluate("window.requestsSent") if r["body"]]
    return sent[:2]  # asked for at once: the first sentence, then whole sentences up to the look-ahead


def test_every_visitor_asks_for_the_same_pieces(engine: Browser, site: Server) -> None:
    """The audio cache keys on the whole request: a popular page can only hit it if the text is cut the
    same way for everyone (here: two visits, each from the top)."""
    pieces = []
    for _ in range(2):
        page = engine.new_page()
        try:
            pieces.append(first_pieces(page, f"{site.url}/read/"))
            assert page.console_errors() == []
        finally:
            page.close()

    assert len(pieces[0]) == 2
    assert pieces[0] == pieces[1]
    assert pieces[0][0]["input"] == "Pride and Prejudice\n"
    assert {body["stream_format"] for body in pieces[0]} == {"sse"}


def test_pointing_at_listen_asks_for_the_first_sentence_and_the_click_plays_it(
    engine_page: BrowserPage, site: Server
) -> None:
    """The visitor's pointer reaches Listen some hundreds of ms before the click: the first sentence is asked
    for then, and the click plays that response instead of asking again."""
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    page.hover(".sr-play")
    wait_for(lambda: page.evaluate("window.requestsSent.length") == 1, 30, "the first sentence asked for")
    primed = json.loads(page.evaluate("window.requestsSent[0].body"))
    assert primed["input"] == "Pride and Prejudice\n"
    assert page.evaluate(f"{READER}.state") == "idle"  # nothing plays before the click

    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    bodies = [json.loads(r["body"]) for r in page.evaluate("window.requestsSent") if r["body"]]
    page.evaluate(f"{READER}.stop()")
    assert [body["input"] for body in bodies].count(primed["input"]) == 1
    assert bodies[0] == primed
    assert log(page, "word")[0]["text"] == "Pride"
    assert page.console_errors() == []


def test_clicking_a_word_reads_on_from_its_sentence_and_links_stay_links(
    engine_page: BrowserPage, site: Server
) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    text: str = page.evaluate(f"{READER}.text")
    target = text.index("Mr. Bennet made no answer.")
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")

    # A link in the article is followed, and reading goes on where it was.
    before = page.evaluate(f"{READER}.offset")
    page.click(".demo-toc a[href='#chapter-2']")
    wait_for(lambda: page.evaluate("location.hash") == "#chapter-2", 10, "the link to be followed")
    assert page.evaluate(f"{READER}.offset") == before
    # The visitor scrolls away to a later paragraph and clicks in it.
    page.evaluate("window.dispatchEvent(new WheelEvent('wheel', { deltaY: 100 }))")
    page.click("#no-answer")
    wait_log(
        page, lambda entries: any(e["name"] == "word" and e["offset"] >= target for e in entries), "the word clicked"
    )
    page.evaluate(f"{READER}.stop()")

    after = [word for word in words(page) if word["offset"] >= target]
    assert after[0]["offset"] == target  # from the start of the sentence clicked
    assert page.evaluate(f"{READER}.offset") == target
    if highlights_supported(page):
        assert after[0]["sentence"] == "Mr. Bennet made no answer."
    assert page.evaluate("window.mutations") == []
    assert page.console_errors() == []


def test_the_control_works_from_the_keyboard(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    for _ in range(6):
        press(page, "Tab")
        if page.evaluate("document.activeElement.classList.contains('sr-play')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('sr-play')"), "Listen is not reachable by Tab"

    press(page, "Space")  # Listen
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    assert page.evaluate(f"{READER}.state") == "playing"
    # Each arrow is pressed while paused, so that the sentence it starts from is known.
    for key, step in (("ArrowRight", 1), ("ArrowRight", 1), ("ArrowLeft", -1)):
        press(page, "Space")  # pause
        assert page.evaluate(f"{READER}.state") == "paused"
        assert page.evaluate(f"{READER}.player.paused")
        sentence = page.evaluate(f"{READER}.sentence")
        press(page, key)  # a sentence forward or back, reading again
        assert page.evaluate(f"{READER}.sentence") == sentence + step
        assert page.evaluate(f"{READER}.state") in ("starting", "playing")
        start = page.evaluate(f"{READER}.page.sentences[{sentence + step}].start")
        assert page.evaluate(f"{READER}.offset") == start
        wait_log(page, lambda entries, at=start: any(e["name"] == "word" and e["offset"] == at for e in entries), key)
    press(page, "Space")  # pause
    assert page.evaluate(f"{READER}.state") == "paused"
    press(page, "Space")  # resume
    assert page.evaluate(f"{READER}.state") in ("playing", "starting")
    assert not page.evaluate(f"{READER}.player.paused")
    press(page, "Escape")  # stop
    assert page.evaluate(f"{READER}.state") == "idle"
    assert page.evaluate(f"{READER}.player.session") is None
    assert page.evaluate("document.querySelector('.sr-play-label').textContent") == "Continue"
    assert page.console_errors() == []


IN_VIEW = f"""(() => {{
  const reader = {READER};
  const {{ start, end }} = reader.page.sentences[reader.sentence];
  const rect = reader.page.range(start, end).getBoundingClientRect();
  return rect.top >= 0 && rect.bottom <= innerHeight;
}})()"""
FOLLOW_HIDDEN = "document.querySelector('.sr-follow').hidden"
FLOATING = "document.querySelector('[data-speech-reader]').classList.contains('is-floating')"


def test_scrolling_away_stops_following_and_the_bar_floats(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    assert page.evaluate(IN_VIEW)
    assert page.evaluate(FOLLOW_HIDDEN)
    assert not page.evaluate(FLOATING)

    # The visitor scrolls to the end of the page (a wheel turned, then the page moved).
    page.evaluate("(dispatchEvent(new WheelEvent('wheel', { deltaY: 500 })), scrollTo(0, document.body.scrollHeight))")
    wait_for(lambda: not page.evaluate(FOLLOW_HIDDEN), 10, "'back to reading'")
    wait_for(lambda: page.evaluate(FLOATING), 10, "the floating bar")
    assert not page.evaluate(IN_VIEW)
    page.click(".sr-follow")
    wait_for(lambda: page.evaluate(IN_VIEW), 10, "the sentence read back in view")
    assert page.evaluate(FOLLOW_HIDDEN)
    # Following again: reading on far down the page brings that sentence into view.
    page.evaluate(f"{READER}.jump({READER}.text.indexOf('Mr. Bingley was good-looking'))")
    wait_for(lambda: page.evaluate(IN_VIEW), 10, "the far sentence in view")
    page.evaluate(f"{READER}.stop()")
    assert not page.evaluate(FLOATING)
    assert page.evaluate("window.mutations") == []
    assert page.console_errors() == []


def test_a_return_visit_continues_where_the_last_one_stopped(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    page.evaluate(f"({READER}.next(), {READER}.next())")
    there = page.evaluate(f"{READER}.offset")
    wait_log(page, lambda entries: any(e["name"] == "word" and e["offset"] == there for e in entries), "a word there")
    page.evaluate(f"{READER}.pause()")  # the sentence stays put while it is read here
    left_at = page.evaluate(f"{READER}.page.sentences[{READER}.sentence].start")
    assert left_at >= there
    page.evaluate(f"{READER}.stop()")

    page.goto(f"{site.url}/read/")  # the same URL again: no localStorage.clear()
    wait_for(
        lambda: page.evaluate(f"Boolean({READER.replace('.speechReader', '?.speechReader')}?.voice)"), 30, "the reader"
    )
    page.evaluate(RECORD)
    assert page.evaluate("document.querySelector('.sr-play-label').textContent") == "Continue"
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    page.evaluate(f"{READER}.stop()")
    assert words(page)[0]["offset"] == left_at
    assert page.console_errors() == []


# Records each listener added while a reader is made and used: destroy() must abort every one's signal.
LISTENERS = """(async () => {
  const old = document.querySelector('[data-speech-reader]').speechReader;
  const config = { selector: old.selector, player: { endpoint: old.player.endpoint, voicesUrl: old.player.voicesUrl } };
  old.destroy();
  const { SpeechReader } = await import(%s);
  const added = [];
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, fn, options) {
    added.push({ target: this, type, signal: typeof options === 'object' ? options.signal : undefined });
    return add.call(this, type, fn, options);
  };
  const root = document.querySelector('[data-speech-reader]');
  try {
    window.fresh = new SpeechReader({ root, target: config.selector, voice: 'alloy', player: config.player });
  } finally {
    EventTarget.prototype.addEventListener = add;
  }
  window.addedListeners = added;
  return added.length;
})()"""


# Listeners still live: neither removed through their signal nor on a signal that has fired (its "abort").
LIVE_LISTENERS = """window.addedListeners
  .filter((l) => !l.signal?.aborted && !(l.target instanceof AbortSignal && l.target.aborted))
  .map((l) => l.type)"""


def test_destroy_removes_every_highlight_and_listener(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    page.click(".sr-play")
    wait_log(page, lambda entries: any(e["name"] == "word" for e in entries), "the first word")
    page.evaluate(f"(window.oldReader = {READER}, true)")
    url = json.dumps(f"{site.url}/static/speech/reader.js")
    assert page.evaluate(LISTENERS % url) > 5

    # The first reader is gone: no marks, no player, nothing answers a click, a key or a word.
    assert page.evaluate("window.oldReader.state") == "idle"
    assert page.evaluate("window.oldReader.player.listeners.size") == 0
    assert page.evaluate("window.oldReader.player.session") is None
    if highlights_supported(page):
        assert page.evaluate("CSS.highlights.has('speech-word') || CSS.highlights.has('speech-sentence')") is False
    assert page.evaluate("document.querySelector('[data-speech-reader]').speechReader") is None

    # A fresh one on the same control reads (the old one's listeners would start a second session) ...
    count = "(w) => w.index >= 0 && (window.freshWords = (window.freshWords || 0) + 1)"
    page.evaluate(f"window.fresh.player.on('word', {count}), true")
    requests = len(page.evaluate("window.requestsSent"))
    page.click(".sr-play")
    wait_for(lambda: (page.evaluate("window.freshWords") or 0) >= 3, 60, "the fresh reader's words")
    assert page.evaluate("window.oldReader.state") == "idle"
    # ... and its destroy() aborts every listener it added.
    page.evaluate("window.fresh.destroy()")
    assert page.evaluate(LIVE_LISTENERS) == []
    assert page.evaluate("window.fresh.player.listeners.size") == 0
    if highlights_supported(page):
        assert page.evaluate("CSS.highlights.has('speech-word') || CSS.highlights.has('speech-sentence')") is False
    posted = len(page.evaluate("window.requestsSent"))
    page.click(".sr-play")  # nothing listens any more
    page.evaluate("new Promise((resolve) => setTimeout(resolve, 300))")
    assert len(page.evaluate("window.requestsSent")) == posted > requests
    assert page.evaluate("window.mutations") == []
    assert page.console_errors() == []


WITHOUT_HIGHLIGHTS = """(async () => {
  const old = document.querySelector('[data-speech-reader]').speechReader;
  const player = { endpoint: old.player.endpoint, voicesUrl: old.player.voicesUrl };
  old.destroy();
  const { SpeechReader } = await import(%s);
  const Highlight = window.Highlight;
  window.Highlight = undefined;  // as in a browser without the API
  const root = document.querySelector('[data-speech-reader]');
  window.bare = new SpeechReader({ root, target: old.selector, voice: 'alloy', player });
  window.Highlight = Highlight;
  window.bareWords = [];
  window.bare.player.on('word', (w) => w.index >= 0 && window.bareWords.push(CSS.highlights.has('speech-word')));
  return window.bare.highlighter.supported;
})()"""


def test_reads_without_marks_where_the_highlight_api_is_missing(engine_page: BrowserPage, site: Server) -> None:
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    assert page.evaluate(WITHOUT_HIGHLIGHTS % json.dumps(f"{site.url}/static/speech/reader.js")) is False
    page.click(".sr-play")
    wait_for(lambda: len(page.evaluate("window.bareWords")) >= 3, 60, "three words")
    assert page.evaluate("window.bare.state") == "playing"
    marks = page.evaluate("window.bareWords")  # for each word heard: was anything marked?
    assert not any(marks)
    page.evaluate("window.bare.destroy()")
    assert page.evaluate("window.mutations") == []
    assert page.console_errors() == []


JAPANESE_TEXT = "今日はとても良い天気ですね。散歩に行きましょう。"
IN_JAPANESE = """(async ([url, text]) => {
  const old = document.querySelector('[data-speech-reader]').speechReader;
  const player = { endpoint: old.player.endpoint, voicesUrl: old.player.voicesUrl };
  old.destroy();
  const { SpeechReader } = await import(url);
  const article = document.createElement('article');
  article.lang = 'ja';
  article.append(Object.assign(document.createElement('p'), { textContent: text }));
  document.body.append(article);
  const root = document.querySelector('[data-speech-reader]');
  window.japanese = new SpeechReader({ root, target: article, player });
  await window.japanese.voiceChosen;
  window.japaneseWords = [];
  window.japanese.player.on('word', (w) => w.index >= 0 && window.japaneseWords.push(w.text));
  window.japanese.player.on('error', (e) => window.japaneseWords.push('error: ' + e.message));
  return { voice: window.japanese.voice, model: window.japanese.model };
})"""


def test_an_element_in_japanese_is_read_by_a_japanese_voice(engine_page: BrowserPage, site: Server) -> None:
    """The element's `lang` picks a voice of its language from the server's list, whatever engine has it
    (here Kokoro's, as piper has no Japanese voice), and the reader asks that voice's model."""
    page = engine_page
    open_reader(page, f"{site.url}/read/")
    url = f"{site.url}/static/speech/reader.js"
    chosen = page.evaluate(f"({IN_JAPANESE})({json.dumps([url, JAPANESE_TEXT])})")
    assert chosen["model"] == "kokoro"
    assert chosen["voice"].startswith(("jf_", "jm_"))
    page.click(".sr-play")
    wait_for(lambda: len(page.evaluate("window.japaneseWords")) >= 2, 120, "two words heard")
    page.evaluate("window.japanese.destroy()")

    heard = page.evaluate("window.japaneseWords")
    assert not any(word.startswith("error") for word in heard), heard
    assert all(word in JAPANESE_TEXT for word in heard)
    bodies = [json.loads(r["body"]) for r in page.evaluate("window.requestsSent") if r["body"]]
    assert bodies
    assert {(body["model"], body["voice"]) for body in bodies} == {("kokoro", chosen["voice"])}
    assert page.console_errors() == []


def test_the_page_under_the_site_csp_carries_the_nonce(site: Server) -> None:
    import requests

    response = requests.get(f"{site.url}/read/", timeout=10)
    nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script type="importmap" nonce="{nonce}">' in response.text
    assert response.text.count('type="importmap"') == 1
    assert 'src="/static/speech/reader' in response.text


# --- In a host site, under a prefix -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with host_site(tmp_path_factory.mktemp("host-reader")) as servers:
        yield servers["gunicorn"]


def test_reads_a_host_page_under_its_prefix(engine_page: BrowserPage, host: Server) -> None:
    page = engine_page
    open_reader(page, f"{host.url}/article/")
    page.click(".sr-play")
    wait_log(page, lambda entries: sum(e["name"] == "word" for e in entries) >= 3, "three words")
    page.evaluate(f"{READER}.stop()")

    sent = page.evaluate("window.requestsSent")
    assert sent
    assert all(request["url"].startswith(f"{PREFIX}/tts/") for request in sent)
    assert words(page)[0]["text"] == "A"
    assert page.evaluate("window.mutations") == []
    assert page.console_errors() == []
