// SpeechPlayer: plays streamed speech from the first chunk. Plain ES modules, no dependencies.
//   const player = new SpeechPlayer({ endpoint, streamUrl });
//   const off = player.on("playing", ({ ms }) => ...); await player.speak({ input, voice });
// Events: firstbyte, lastbyte, playing, progress {played, buffered}, ended {duration}, error {message, status},
// word {text, start, end, charStart, charEnd, index} when a word becomes audible (offsets into the
// input, in JavaScript string indices; index -1: none yet, a new stream began), pause, resume {ms, played}.
// `ms` in an event counts from the speak() (or live()) call.
//
// Live text (text still arriving, e.g. an AI answer streaming in), one playback session:
//   const live = player.live({ voice, speed, model, path, offset });  // stops what played
//   live.write(delta);        // append text: each sentence is asked for once it is complete
//   live.end();               // no more text: the rest is asked for
//   await live.done;          // all the audio is in (then `ended` once heard); player.stop() cancels every request
//   player.live(options).from(asyncIterableOfStrings)  // writes each string, then end(); returns the live text
// live.text is everything written; `word` events' charStart/charEnd index into it (plus `offset`, default 0),
// their start/end are seconds on the one timeline. A piece goes out only while less than
// LOOKAHEAD_SECONDS (25) of audio lie ahead: a whole page may be written at once. live.requested: the
// text before this index was asked for; live.requests: {from, to, start, end} per request.
// player.pause() / player.resume() / player.paused work for speak() and live() on every path.
// download() has nothing for live text (its audio is not kept: a page may be read for an hour).
// This module chooses a path and runs the session; each path plays in its own module:
// mse.js (MP3 through MediaSource), webcodecs.js (Ogg Opus through WebCodecs), pcm.js (Web Audio),
// element.js (a progressive <audio> on a GET URL).

import { base64Bytes } from "./bytes.js";
import { playElement } from "./element.js";
import { apiError } from "./errors.js";
import { LiveText, pageWord, stringIndices } from "./live.js";
import { MediaSourceClass, mseSupported, playMse } from "./mse.js";
import { playPcm } from "./pcm.js";
import { Session } from "./session.js";
import { opusConfig, playOpus } from "./webcodecs.js";

export const PATHS = { mse: "mp3", webcodecs: "opus", pcm: "pcm", element: "mp3" };
// A primed request (prime()) not taken by a click within this long is cancelled.
const PRIME_MS = 15_000;
const bodyKey = (body) => JSON.stringify(Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1)));
const PLAY = { mse: playMse, webcodecs: playOpus, pcm: playPcm }; // the fetch paths (live text too)
const TYPES = { mp3: "audio/mpeg", opus: "audio/ogg", pcm: "audio/pcm" };
const PROGRESS_EVERY_MS = 200;
const WORD_EVERY_MS = 20;
// A sentence starts after . ! ? … (and closing quotes) and a space, or at a line start.
const SENTENCE_START = /(?:[.!?…]+["'”’)\]]*\s+|\n)/g;
// The server renews a page token past half its age on any answer. The <audio> path reads no
// answer, so before it plays, a token this long without an answer is taken to the voice list.
const TOKEN_CHECK_MS = 30 * 60 * 1000;
const TOKEN_CHECK_TIMEOUT_MS = 3000;

// Probed once, at module load, so the first click does not wait for it.
const opusSupport =
  typeof AudioDecoder === "undefined"
    ? Promise.resolve(false)
    : AudioDecoder.isConfigSupported(opusConfig(1)).then(
        (result) => result.supported,
        () => false,
      );

// What this browser can play, probed once: the first of `paths` is the automatic choice.
// Firefox has no MP3 in MediaSource, so it lands on WebCodecs Opus; WebKit uses ManagedMediaSource.
let probed = null;
export function capabilities() {
  probed ||= opusSupport.then((webcodecsOpus) => {
    const caps = {
      mediaSource: MediaSourceClass()?.name ?? null,
      mseMp3: mseSupported(),
      webcodecsOpus,
      webAudio: Boolean(globalThis.AudioContext),
    };
    const usable = { mse: caps.mseMp3, webcodecs: webcodecsOpus, pcm: caps.webAudio, element: true };
    return Object.freeze({ ...caps, paths: Object.keys(usable).filter((path) => usable[path]) });
  });
  return probed;
}

// The path the player picks by itself, as far as it is known at once (the click's own task): MSE
// when this browser plays MP3 through MediaSource (the first choice), else not yet known (null).
const automaticPath = () => (mseSupported() ? "mse" : null);
// Whether a path plays on the AudioContext (an unknown one may).
const needsContext = (path) => path !== "mse" && path !== "element";

export async function supportedPaths() {
  return (await capabilities()).paths;
}

export class SpeechPlayer {
  #headers;
  #pageToken;
  #answeredAt = Date.now(); // the last answer that could have renewed the page token
  #suspended = false; // pause() suspended the context (a Web Audio path) and nothing resumed it since
  #primed = null; // {key, controller, response, timer}: a request asked for before the click that plays it

  static capabilities() {
    return capabilities();
  }

  static isSupported() {
    return typeof fetch === "function" && typeof Audio === "function";
  }

  constructor({ endpoint, streamUrl = null, voicesUrl = null, pageToken = null, audio = null, path = null } = {}) {
    this.endpoint = endpoint;
    this.streamUrl = streamUrl;
    this.voicesUrl = voicesUrl;
    // The site's own page authenticates with the token the server issued it instead of an API key.
    this.#pageToken = pageToken;
    this.#headers = pageToken ? { "X-Speech-Page": pageToken } : {};
    this.audio = audio || new Audio();
    this.path = path; // null: choose automatically
    this.ctx = null;
    this.listeners = new Map();
    /** @type {Session|null} the one playing now */
    this.session = null;
    this.received = null;
    this.request = null; // the last speak() request, for seek()
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  emit(name, detail = {}) {
    for (const fn of this.listeners.get(name) || []) fn(detail);
  }

  // The server's voices (the API's list: {id, language, speaks_as, ...}), asked with the player's credential.
  async voices({ signal } = {}) {
    if (!this.voicesUrl) throw new Error("This player was given no voicesUrl.");
    const response = await fetch(this.voicesUrl, { headers: this.#headers, signal });
    if (!response.ok) throw await apiError(response);
    this.#takeToken(response);
    return (await response.json()).data;
  }

  // Create and resume the AudioContext early (call from a user gesture such as pointerdown: WebKit
  // keeps a context made outside one suspended), for the path that will play: `path`, else the
  // player's own choice. The MSE and <audio> paths play in the element and need none: creating one
  // takes the main thread up to some 400 ms in Chromium, so then this does nothing.
  warm(path = this.path) {
    if (!globalThis.AudioContext || !needsContext(path ?? automaticPath())) return;
    this.ctx ||= new AudioContext({ latencyHint: "interactive" });
    // After pause() the context may still be suspending (its state still "running"): a resume()
    // queued now runs after that suspend, so the new session plays.
    if (this.ctx.state !== "running" || this.#suspended) this.ctx.resume();
    this.#suspended = false;
  }

  async speak({ input, voice = "alloy", speed = 1, model = "piper", path = null }) {
    this.request = { input, voice, speed, model, path };
    await this.speakFrom(0);
  }

  // Jump to the word at `offset` in the input: within the buffered audio (MSE path), else speak
  // again from the start of its sentence.
  seek(offset) {
    const session = this.session;
    const word = session?.words.find((w) => w.charEnd > offset);
    if (session?.path === "mse" && word && word.start <= session.playback.buffered()) {
      this.audio.currentTime = word.start;
      this.tick(session);
      return;
    }
    if (!this.request) return;
    let from = 0;
    for (const match of this.request.input.matchAll(SENTENCE_START)) {
      if (match.index + match[0].length > offset) break;
      from = match.index + match[0].length;
    }
    this.speakFrom(from);
  }

  async speakFrom(from) {
    const { input: whole, voice, speed, model, path } = this.request;
    const input = whole.slice(from);
    const t0 = performance.now();
    this.warm(path || this.path); // still inside the click: an AudioContext made later may stay suspended
    const paths = await supportedPaths();
    const chosen = path || this.path || paths[0];
    const format = PATHS[chosen] || "mp3";
    const session = this.startSession(t0, chosen, format);
    session.offsets = stringIndices(input, from);
    const body = { model, input, voice, speed, response_format: format };
    try {
      if (!paths.includes(chosen)) throw new Error(`Playback path '${chosen}' is not available in this browser.`);
      if (chosen === "element") {
        if (this.#pageToken && this.voicesUrl && Date.now() - this.#answeredAt > TOKEN_CHECK_MS) {
          // Not AbortSignal.any: this path is the fallback for older browsers.
          const check = new AbortController();
          const timer = setTimeout(() => check.abort(), TOKEN_CHECK_TIMEOUT_MS);
          session.signal.addEventListener("abort", () => check.abort(), { once: true });
          await this.voices({ signal: check.signal }).catch(() => null); // a failure shows on the stream itself
          clearTimeout(timer);
          if (session.signal.aborted) return; // stopped meanwhile
        }
        await playElement(session, this.elementUrl(body));
      } else {
        const response = await this.#post(body, session.signal);
        session.headers = response.headers;
        session.chunks = this.read(session, response);
        await PLAY[chosen](session);
      }
    } catch (error) {
      if (!session.signal.aborted) session.callbacks.onError(error);
    }
  }

  // Live text: speech for text still arriving, in one playback (see live.js and the top of this file).
  live({ voice = "alloy", speed = 1, model = "piper", path = null, offset = 0 } = {}) {
    const t0 = performance.now();
    this.warm(path || (this.path !== "element" && this.path) || null); // still inside the click, if there is one
    const session = this.startSession(t0, null, null);
    this.request = null; // seek() is speak()'s
    this.received = null; // a page read for an hour is not kept: download() has nothing for live text
    let bytes = 0;
    const live = new LiveText({
      session,
      body: { model, voice, speed },
      offset,
      post: async (body) => {
        const response = await (this.#adopt(body, session.signal) ?? this.#post(body, session.signal));
        session.headers ||= response.headers;
        return response;
      },
      read: (response, onWord) =>
        this.read(session, response, {
          onWord,
          onBytes: (count) => {
            if (bytes === 0) session.callbacks.onFirstByte();
            bytes += count;
          },
        }),
    });
    live.done = (async () => {
      const { chosen, usable, format } = await this.#livePath(path);
      try {
        if (!usable) throw new Error(`Playback path '${chosen}' cannot play live text in this browser.`);
        if (session.signal.aborted) return;
        session.path = chosen;
        live.start(format);
        session.chunks = (async function* () {
          yield* live.chunks();
          if (!session.signal.aborted) session.callbacks.onLastByte(bytes);
        })();
        await PLAY[chosen](session);
      } catch (error) {
        if (!session.signal.aborted) session.callbacks.onError(error);
      }
    })();
    return live;
  }

  // The path live text plays on (`path`, the player's, else the browser's best but <audio>) and its format.
  async #livePath(path) {
    const paths = (await supportedPaths()).filter((usable) => usable !== "element");
    const chosen = path || (this.path !== "element" && this.path) || paths[0];
    return { chosen, usable: paths.includes(chosen), format: PATHS[chosen] };
  }

  /** The audio format live text would ask for on `path` (null: that path cannot play it here). */
  async liveFormat(path = null) {
    const { usable, format } = await this.#livePath(path);
    return usable ? format : null;
  }

  /**
   * Ask for one request's audio ahead of the click that will play it (the visitor points at the button):
   * `body` as live text will post it ({model, voice, speed, input, response_format}). A live text whose
   * request has the same body takes this response instead of asking again; unclaimed, it is cancelled
   * after PRIME_MS or when another is primed.
   */
  prime(body) {
    const key = bodyKey(body);
    if (this.#primed?.key === key) return;
    this.#unprime();
    const controller = new AbortController();
    const response = this.#post(body, controller.signal);
    response.catch(() => {}); // a failure is met again by the request that takes it
    const timer = setTimeout(() => this.#unprime(), PRIME_MS);
    this.#primed = { key, controller, response, timer };
  }

  #unprime() {
    if (!this.#primed) return;
    clearTimeout(this.#primed.timer);
    this.#primed.controller.abort();
    this.#primed = null;
  }

  // The primed response for this body, now the session's (its stop cancels it); null: ask afresh.
  #adopt(body, signal) {
    const primed = this.#primed;
    if (!primed) return null;
    if (primed.key !== bodyKey(body)) {
      this.#unprime();
      return null;
    }
    clearTimeout(primed.timer);
    this.#primed = null;
    if (signal.aborted) primed.controller.abort();
    else signal.addEventListener("abort", () => primed.controller.abort(), { once: true });
    return primed.response;
  }

  // Pause what plays (MSE/<audio>: the element; Web Audio paths: the context's clock); resume() goes on.
  pause() {
    const session = this.session;
    if (!session || session.paused) return;
    session.paused = true;
    if (session.path === "mse" || session.path === "element") this.audio.pause();
    else if (this.ctx) {
      this.ctx.suspend();
      this.#suspended = true;
    }
    this.emit("pause", { ms: session.ms(), played: session.playback?.played() ?? 0 });
  }

  resume() {
    const session = this.session;
    if (!session?.paused) return;
    session.paused = false;
    if (session.path === "mse" || session.path === "element") {
      if (this.audio.src) this.audio.play().catch(() => {}); // before the first append, the path plays it
    } else if (this.ctx) {
      this.ctx.resume();
      this.#suspended = false;
    }
    this.emit("resume", { ms: session.ms(), played: session.playback?.played() ?? 0 });
  }

  get paused() {
    return Boolean(this.session?.paused);
  }

  // One request to the API, as server-sent events: they carry the words' times next to the audio that holds them.
  async #post(body, signal) {
    const response = await fetch(this.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...this.#headers },
      body: JSON.stringify({ ...body, stream_format: "sse" }),
      signal,
    });
    if (!response.ok) throw await apiError(response);
    this.#takeToken(response);
    return response;
  }

  // A fresh page token in an answer replaces the old one: a page left open keeps working.
  #takeToken(response) {
    const renewed = response.headers.get("X-Speech-Page");
    if (renewed) this.#headers["X-Speech-Page"] = this.#pageToken = renewed;
    this.#answeredAt = Date.now();
  }

  // The GET URL the <audio> element fetches: the request in its query, with the page's token.
  elementUrl(body) {
    if (!this.streamUrl) throw new Error("This page provides no stream URL for the <audio> fallback.");
    const url = new URL(this.streamUrl, location.href);
    for (const [key, value] of Object.entries(body)) url.searchParams.set(key, value);
    if (this.#pageToken) url.searchParams.set("token", this.#pageToken);
    return url;
  }

  startSession(t0, path, format) {
    this.stop();
    const session = new Session({ path, ctx: this.ctx, audio: this.audio, t0 });
    const current = () => this.session === session;
    let firstByte = false;
    session.callbacks = {
      onFirstByte: () => {
        if (!current() || firstByte) return;
        firstByte = true;
        this.emit("firstbyte", { ms: session.ms() });
      },
      onLastByte: (bytes) => current() && this.emit("lastbyte", { ms: session.ms(), bytes }),
      onPlaying: () => {
        if (!current()) return;
        this.emit("playing", { ms: session.ms(), path: session.path });
        this.#contextLater();
      },
      onEnded: (duration) => {
        if (!current()) return;
        this.progress(session);
        this.end(session);
        this.emit("ended", { duration, ms: session.ms() });
      },
      onError: (error) => {
        if (!current()) return;
        this.end(session);
        this.emit("error", {
          message: error.message,
          status: error.status ?? null,
          code: error.code ?? null,
          param: error.param ?? null,
        });
      },
    };
    const progress = setInterval(() => this.progress(session), PROGRESS_EVERY_MS);
    const words = setInterval(() => this.tick(session), WORD_EVERY_MS);
    session.onStop(() => {
      clearInterval(progress);
      clearInterval(words);
    });
    this.session = session;
    this.received = { chunks: [], format };
    this.emit("word", { index: -1 });
    return session;
  }

  // The MSE and <audio> paths need no AudioContext; one is made once their first sound is out (off
  // the way to it), suspended until a Web Audio path's warm() resumes it, so that path's click need
  // not make one.
  #contextLater() {
    if (this.ctx || !globalThis.AudioContext || needsContext(this.session?.path)) return;
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.ctx.suspend();
  }

  // Reads the event stream: words are kept for the clock, audio is yielded as it arrives. Live text
  // reads each response with its own `onWord` and `onBytes`, and reports the last byte itself.
  async *read(session, response, { onWord = null, onBytes = null } = {}) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let bytes = 0;
    let pending = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        pending += value;
        let end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (!line.startsWith("data: ") || line === "data: [DONE]") continue; // OpenAI's end of stream
          const event = JSON.parse(line.slice(6));
          if (event.type === "speech.word") {
            if (onWord) onWord(event);
            else session.words.push(pageWord(event, session.offsets));
          }
          if (event.type !== "speech.audio.delta") continue;
          const chunk = base64Bytes(event.audio);
          if (onBytes) onBytes(chunk.length);
          else if (bytes === 0) session.callbacks.onFirstByte();
          bytes += chunk.length;
          this.received?.chunks.push(chunk);
          yield chunk;
        }
      }
      if (!onBytes) session.callbacks.onLastByte(bytes);
    } finally {
      reader.releaseLock();
    }
  }

  // The word heard now, by the path's playback clock; a `word` event when it changes.
  tick(session) {
    const words = session.words;
    if (!session.playback || !words.length) return;
    const t = session.playback.played();
    let index = session.word;
    if (index >= 0 && words[index].start > t) index = -1; // sought backwards
    while (index + 1 < words.length && words[index + 1].start <= t) index++;
    if (index === session.word || index < 0) return;
    session.word = index;
    this.emit("word", { ...words[index], index, played: t });
  }

  progress(session) {
    if (!session.playback) return;
    this.emit("progress", { played: session.playback.played(), buffered: session.playback.buffered() });
  }

  end(session) {
    session.end();
    if (this.session === session) this.session = null;
  }

  // Stop playing: cancels the request (the server stops synthesising) and frees the buffers.
  stop() {
    if (this.session) this.end(this.session);
  }

  // What was received so far, as a File (null when nothing was, the <audio> element fetched it,
  // or it was live text: its audio is not kept).
  download() {
    if (!this.received?.chunks.length) return null;
    const { chunks, format } = this.received;
    return new File(chunks, `speech.${format}`, { type: TYPES[format] });
  }

  destroy() {
    this.stop();
    this.#unprime();
    this.listeners.clear();
    this.received = null;
    this.ctx?.close();
    this.ctx = null;
  }
}
