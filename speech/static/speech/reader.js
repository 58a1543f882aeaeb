// SpeechReader: reads an element of the host's page aloud, marking the word and the sentence heard.
// {% speech_reader "SELECTOR" %} mounts one per control on load (`control.speechReader`); from
// JavaScript:
//   const reader = new SpeechReader({ root: control, target: "#article", player: { endpoint, voicesUrl, pageToken } });
//   reader.start(); reader.pause(); reader.resume(); reader.next(); reader.previous(); reader.stop();
//   reader.destroy();   // stops, removes every listener, observer and highlight
// The text comes from reader-text.js (a walk of the DOM, never a change to it), the marks from
// reader-highlight.js (CSS Custom Highlights), the control from reader-controls.js. Sound comes
// from the player's live text (player.live()): the text from the sentence read on, in one session;
// going to another sentence stops it and starts another from there.

import { firstCut } from "./live.js";
import { SpeechPlayer } from "./player.js";
import { mountControls } from "./reader-controls.js";
import { Highlighter, SENTENCE, WORD } from "./reader-highlight.js";
import { readText } from "./reader-text.js";

// Speech runs at about this many characters a second at speed 1, until the words heard tell better.
const CHARACTERS_PER_SECOND = 14;
const STORAGE_PREFIX = "speech.reader:";
const SNIPPET = 40; // characters of the sentence kept with the position, to find it again if the page changed
// Keys that scroll the page: pressed outside the control while reading, the page stops following.
const SCROLL_KEYS = new Set(["PageUp", "PageDown", "Home", "End", "ArrowUp", "ArrowDown", " "]);
const INTERACTIVE = "a, button, input, select, textarea, label, summary, [contenteditable], [tabindex]";

export class SpeechReader {
  #signal;
  #unmount = new AbortController();
  #page = null; // the PageText read from target; null: read again before the next start
  #live = null;
  #base = 0; // where the live session's text starts in the page's text
  #sentence = -1;
  #word = null; // {start, end} of the word heard, in the page's text
  #rate = null; // {at, offset}: the clock and the text at the first word of this session, for the speaking rate
  #following = true;
  #idle = null; // the idle callback that will read the page

  /**
   * @param {object} options
   * @param {HTMLElement} options.root  the control ({% speech_reader %}'s markup)
   * @param {HTMLElement|string} options.target  the element read, or a selector for it
   * @param {string} options.voice  a voice id; "" picks one of the target's language (its `lang`)
   * @param {number} options.speed
   * @param {object} options.player  SpeechPlayer options (endpoint, voicesUrl, pageToken, …)
   */
  constructor({ root, target, voice = "", speed = 1, model = null, path = null, player = {} }) {
    this.root = root;
    const warning = root.querySelector(".sr-load-error");
    if (warning) warning.hidden = true; // the code did load: the page's warning that it did not never shows
    this.selector = typeof target === "string" ? target : null;
    this.target = typeof target === "string" ? document.querySelector(target) : target;
    this.model = model || "piper"; // with none given, the model of the voice chosen for the page's language
    this.path = path;
    this.voice = voice;
    this.state = "idle";
    this.#signal = this.#unmount.signal;
    this.player = new SpeechPlayer({ ...player, audio: player.audio || root.querySelector("audio") || undefined });
    this.highlighter = new Highlighter();
    this.controls = mountControls(
      root,
      {
        toggle: () => this.toggle(),
        back: () => this.previous(),
        forward: () => this.next(),
        stop: () => this.stop(),
        follow: () => this.follow(),
        speed: (value) => this.setSpeed(value),
      },
      this.#signal,
    );
    this.speed = this.controls.speed(speed);
    this.language = this.target?.closest("[lang]")?.lang || document.documentElement.lang || "";
    this.storageKey = `${STORAGE_PREFIX}${location.pathname}${location.search}|${this.selector ?? ""}`;
    if (!this.target) {
      this.controls.say(`Nothing to read: no element matches ${this.selector}.`, true);
      root.querySelector(".sr-play").disabled = true;
      return;
    }
    this.voiceChosen = (voice ? Promise.resolve({ id: voice }) : this.#voiceFor(this.language)).then((chosen) => {
      this.voice = chosen.id;
      if (!model && chosen.model) this.model = chosen.model;
      return chosen.id;
    });
    this.#listen();
    this.controls.render("idle", { remembered: this.#recall() !== null });
    // The text is read from the page while the browser is idle, so that a click does not wait for it; a
    // change to the page has it read again (observing changes nothing).
    const observer = new MutationObserver(() => {
      if (this.state !== "idle") return;
      this.#page = null;
      this.#prepare();
    });
    observer.observe(this.target, { subtree: true, childList: true, characterData: true, attributes: true });
    this.#signal.addEventListener("abort", () => {
      observer.disconnect();
      if (this.#idle === null) return;
      if (typeof cancelIdleCallback === "function") cancelIdleCallback(this.#idle);
      else clearTimeout(this.#idle);
    });
    this.#prepare();
  }

  #prepare() {
    if (this.#idle !== null || this.#page) return;
    const run = () => {
      this.#idle = null;
      if (!this.#signal.aborted && !this.#page) this.#page = readText(this.target);
    };
    this.#idle =
      typeof requestIdleCallback === "function" ? requestIdleCallback(run, { timeout: 1000 }) : setTimeout(run, 200);
  }

  /** The page's text has been read (a start need not read it first). */
  get prepared() {
    return this.#page !== null;
  }

  /** The text read, walked from the page now if it has changed since. */
  get page() {
    this.#page ||= readText(this.target);
    return this.#page;
  }

  get text() {
    return this.page.text;
  }

  /** Where the live session playing now starts in `text` (its words' offsets count from here). */
  get offset() {
    return this.#base;
  }

  /** The index in `page.sentences` of the sentence read now; -1: none. */
  get sentence() {
    return this.#sentence;
  }

  // --- Playing ----------------------------------------------------------------------------------

  /** Start reading at `offset` in the text (its sentence), or where the last visit left off. */
  start(offset = null) {
    if (!this.target) return;
    const page = this.page;
    if (!page.sentences.length) {
      this.controls.say("There is nothing to read here.", true);
      return;
    }
    const from = offset ?? this.#recall() ?? 0;
    this.#following = true;
    this.#play(page.sentenceAt(from));
  }

  toggle() {
    if (this.state === "idle") this.start();
    else if (this.state === "paused") this.resume();
    else this.pause();
  }

  pause() {
    if (this.state !== "playing" && this.state !== "starting") return;
    this.player.pause();
    this.#render("paused");
  }

  resume() {
    if (this.state !== "paused") return;
    this.player.resume();
    this.#render(this.#word ? "playing" : "starting");
  }

  next() {
    if (this.state === "idle") return;
    if (this.#sentence + 1 < this.page.sentences.length) this.#play(this.#sentence + 1);
  }

  previous() {
    if (this.state === "idle") return;
    this.#play(Math.max(0, this.#sentence - 1));
  }

  /** Go to the sentence holding `offset` (in `text`) and read on from there. */
  jump(offset) {
    this.#play(this.page.sentenceAt(offset));
  }

  stop() {
    if (this.state === "idle") return;
    this.#live = null;
    this.player.stop();
    this.highlighter.clear();
    this.#word = null;
    this.#render("idle");
    this.controls.time(null);
    this.controls.say("Stopped.");
  }

  setSpeed(value) {
    this.speed = value;
    if (this.state !== "idle") this.#play(Math.max(0, this.#sentence)); // the rest at the new speed
  }

  /** Scroll back to the sentence read and keep it in view again. */
  follow() {
    this.#following = true;
    this.controls.following(true);
    this.#scrollTo(this.#sentence, true);
  }

  // Ask for the first piece that start() would ask for, before the click (see SpeechPlayer.prime).
  async #prime() {
    if (this.state !== "idle" || !this.target) return;
    const voice = (await this.voiceChosen) || "alloy";
    const format = await this.player.liveFormat(this.path);
    const page = this.page;
    if (this.state !== "idle" || !format || !page.sentences.length) return;
    const { start } = page.sentences[page.sentenceAt(this.#recall() ?? 0)];
    const end = firstCut(page.text, start);
    const input = page.text.slice(start, end);
    if (!input.trim()) return;
    this.player.prime({ model: this.model, voice, speed: this.speed, input, response_format: format });
  }

  // One live session: the text from sentence `index` on.
  #play(index) {
    const page = this.page;
    const sentence = page.sentences[index];
    // Paused, the player's clock is stopped (Web Audio paths: its context suspended, perhaps not yet done):
    // resume() queues the context's resume after that suspend, where warm() would see it still running.
    if (this.player.paused) this.player.resume();
    this.player.warm(); // inside the click: the AudioContext may run
    this.#live = null;
    this.player.stop();
    this.#base = sentence.start;
    this.#word = null;
    this.#rate = null;
    this.#sentence = -1;
    this.#setSentence(index);
    this.#render("starting");
    this.controls.say("");
    const voice = this.voice || "alloy"; // the language's voice, once the list has come
    const live = this.player.live({ voice, speed: this.speed, model: this.model, path: this.path });
    this.#live = live;
    live.write(page.text.slice(this.#base));
    live.end();
    live.done?.then(
      () => null,
      (error) => this.#live === live && this.#failed(error.message),
    );
  }

  #listen() {
    const player = this.player;
    const current = () => this.#live !== null && this.state !== "idle";
    player.on("playing", () => current() && this.state === "starting" && this.#render("playing"));
    // Paused, the marks stay where the voice stopped (a path's clock may still tick once as it stops).
    player.on("word", (word) => current() && this.state !== "paused" && word.index >= 0 && this.#heard(word));
    player.on("ended", () => {
      if (!current()) return;
      this.#live = null;
      this.highlighter.clear();
      this.#forget();
      this.#render("idle");
      this.controls.time(null);
      this.controls.say("Finished.");
    });
    player.on("error", ({ message }) => current() && this.#failed(message));

    const on = (target, type, fn, options = {}) => target.addEventListener(type, fn, { ...options, signal: this.#signal });
    // The AudioContext is made as the button goes down: a person's click comes some 100 ms later.
    on(this.root, "pointerdown", () => player.warm());
    // Pointing at Listen (or tabbing to it) asks for the first sentence's audio: the click plays it at once.
    const play = this.root.querySelector(".sr-play");
    on(play, "pointerenter", () => this.#prime());
    on(play, "focus", () => this.#prime());
    // A click on a word while reading goes to its sentence; links, controls and selections stay the page's.
    on(this.target, "click", (event) => {
      if (this.state === "idle" || event.button !== 0 || event.defaultPrevented) return;
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (event.target.closest?.(INTERACTIVE)) return;
      if (!document.getSelection()?.isCollapsed) return;
      const caret = caretAt(event.clientX, event.clientY);
      const offset = caret && this.page.offsetAt(caret.node, caret.offset);
      if (offset === null || offset === undefined) return;
      this.#following = true; // the visitor is looking there
      this.controls.following(true);
      this.jump(offset);
    });
    // The visitor scrolls: the page stops following the sentence read until "back to reading".
    const away = () => {
      if (this.state === "idle" || !this.#following) return;
      this.#following = false;
      this.controls.following(false);
    };
    on(window, "wheel", away, { passive: true });
    on(window, "touchmove", away, { passive: true });
    on(document, "keydown", (event) => {
      if (SCROLL_KEYS.has(event.key) && !this.root.contains(event.target) && !event.target.closest?.(INTERACTIVE)) away();
    });
    on(document, "pointerdown", (event) => {
      if (event.target === document.documentElement) away(); // the scroll bar
    });
    this.#signal.addEventListener("abort", () => {
      this.#live = null;
      player.destroy();
      this.highlighter.destroy();
    });
  }

  // The word `word` is heard now (its offsets count from the live session's start).
  #heard({ charStart, charEnd }) {
    const start = this.#base + charStart;
    const end = this.#base + charEnd;
    this.#word = { start, end };
    const page = this.page;
    this.highlighter.show(WORD, page.range(start, end));
    const index = page.sentenceAt(start);
    if (index !== this.#sentence) this.#setSentence(index);
    if (this.state === "starting") this.#render("playing");
    this.#timeLeft(start);
  }

  #setSentence(index) {
    this.#sentence = index;
    const { start, end } = this.page.sentences[index];
    this.highlighter.show(SENTENCE, this.page.range(start, end));
    this.#remember(start);
    this.#scrollTo(index);
  }

  // Seconds left, at the speaking rate heard so far in this session.
  #timeLeft(offset) {
    const played = this.player.session?.playback?.played?.() ?? null;
    let rate = CHARACTERS_PER_SECOND * this.speed;
    if (played !== null) {
      this.#rate ||= { at: played, offset };
      if (played - this.#rate.at > 3 && offset > this.#rate.offset) {
        rate = (offset - this.#rate.offset) / (played - this.#rate.at);
      }
    }
    this.controls.time((this.page.text.length - offset) / rate);
  }

  #scrollTo(index, force = false) {
    if (index < 0 || (!this.#following && !force)) return;
    const { start, end } = this.page.sentences[index];
    const range = this.page.range(start, end);
    if (!range) return;
    const rect = range.getBoundingClientRect();
    const margin = innerHeight * 0.15;
    if (!force && rect.top >= margin && rect.bottom <= innerHeight - margin) return;
    const reduce = matchMedia("(prefers-reduced-motion: reduce)").matches;
    scrollBy({ top: rect.top - innerHeight * 0.3, behavior: reduce ? "instant" : "smooth" });
  }

  #failed(message) {
    this.#live = null;
    this.player.stop();
    this.highlighter.clear();
    this.#render("idle");
    this.controls.say(message, true);
  }

  #render(state) {
    this.state = state;
    this.controls.render(state, { remembered: this.#recall() !== null });
    this.root.dispatchEvent(new CustomEvent("speech-reader-state", { detail: { state } }));
  }

  // --- The position, for a return visit -----------------------------------------------------------

  #remember(offset) {
    try {
      localStorage.setItem(this.storageKey, JSON.stringify({ offset, snippet: this.page.text.slice(offset, offset + SNIPPET) }));
    } catch {
      // storage is off: nothing is remembered
    }
  }

  #forget() {
    try {
      localStorage.removeItem(this.storageKey);
    } catch {
      // nothing to forget
    }
  }

  // Where the last visit left off (an offset in the text), found by its words if the page moved; null: none.
  #recall() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(this.storageKey) || "null");
    } catch {
      return null;
    }
    if (!saved || typeof saved.snippet !== "string" || !this.target) return null;
    if (!this.#page) return saved.offset ?? null; // checked against the text when it is read
    const text = this.#page.text;
    if (text.startsWith(saved.snippet, saved.offset)) return saved.offset;
    const found = text.indexOf(saved.snippet);
    return found >= 0 ? found : null;
  }

  // --- Voices ---------------------------------------------------------------------------------------

  // A voice of the page's language, {id, model}: the site's default ("alloy") if it speaks it, else an
  // installed voice of the exact tag, else of its family, whatever its engine; "alloy" when none does.
  async #voiceFor(language) {
    const fallback = { id: "alloy" };
    if (!language || !this.player.voicesUrl) return fallback;
    let voices = [];
    try {
      voices = await this.player.voices({ signal: this.#signal });
    } catch {
      return fallback;
    }
    const wanted = language.toLowerCase().replace("_", "-");
    const family = wanted.split("-")[0];
    const tag = (voice) => (voice.language || "").toLowerCase().replace("_", "-");
    const own = voices.filter((voice) => voice.speaks_as === voice.id || !voice.speaks_as);
    const alloy = voices.find((voice) => voice.id === "alloy");
    const pick =
      (alloy && tag(alloy).split("-")[0] === family && alloy) || // the site's own default speaks it
      own.find((voice) => tag(voice) === wanted) ||
      voices.find((voice) => tag(voice) === wanted) ||
      own.find((voice) => tag(voice).split("-")[0] === family) ||
      voices.find((voice) => tag(voice).split("-")[0] === family);
    return pick || fallback;
  }

  destroy() {
    this.stop();
    this.#unmount.abort();
    this.controls.say("");
    this.controls.time(null);
    if (this.root.speechReader === this) delete this.root.speechReader;
  }
}

function caretAt(x, y) {
  if (document.caretPositionFromPoint) {
    const position = document.caretPositionFromPoint(x, y);
    return position && { node: position.offsetNode, offset: position.offset };
  }
  const range = document.caretRangeFromPoint?.(x, y);
  return range && { node: range.startContainer, offset: range.startOffset };
}

// Every control on the page, from its template's JSON.
for (const root of document.querySelectorAll("[data-speech-reader]")) {
  if (root.speechReader) continue;
  const config = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
  const { selector, voice, speed, ...player } = config;
  root.speechReader = new SpeechReader({ root, target: selector, voice, speed, path: player.path, player });
}
