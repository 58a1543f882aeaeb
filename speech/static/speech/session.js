// One speak() or live() call: what the player and the path playing it share. The path reads `chunks`, sets
// `playback` and reports through `callbacks`; anything it must release goes to `onStop()`.

/**
 * The path's clock, in seconds of audio.
 * @typedef {object} Playback
 * @property {() => number} played  heard so far
 * @property {() => number} buffered  received so far
 * @property {() => void} stop  silence it and let go of the audio
 */

/**
 * How a path reports to the player (each is a no-op once the session has ended).
 * @typedef {object} Callbacks
 * @property {() => void} onFirstByte  the first audio arrived (the element path; the others' bytes pass the player)
 * @property {(bytes: number) => void} onLastByte  all the audio arrived (the fetch paths; reported by the player)
 * @property {() => void} onPlaying  the first sound is heard
 * @property {(duration: number) => void} onEnded  everything played: `duration` seconds
 * @property {(error: Error) => void} onError  playback failed (the error may carry the API's status, code, param)
 */

/**
 * A word as the page sees it: seconds into the audio, JavaScript string indices into the whole input.
 * @typedef {object} Word
 * @property {string} text
 * @property {number} start
 * @property {number} end
 * @property {number} charStart
 * @property {number} charEnd
 */

export class Session {
  /**
   * @param {object} options
   * @param {string} options.path  the playback path: "mse", "webcodecs", "pcm" or "element"
   * @param {AudioContext|null} options.ctx  the player's context (the Web Audio paths play on it)
   * @param {HTMLAudioElement} options.audio  the player's element (the MSE and element paths play in it)
   * @param {number} options.t0  performance.now() at the speak() call
   */
  constructor({ path, ctx, audio, t0 }) {
    this.path = path;
    this.ctx = ctx;
    this.audio = audio;
    this.t0 = t0;
    this.controller = new AbortController();
    /** Aborted when the session ends: cancels its request and its listeners. */
    this.signal = this.controller.signal;
    /** @type {Callbacks|null} set by the player before the path starts */
    this.callbacks = null;
    /** @type {Headers|null} the response's headers (the fetch paths) */
    this.headers = null;
    /** @type {AsyncIterable<Uint8Array|{response: number}>|null} the audio as it arrives (the fetch
     * paths); live text: several responses, each after a marker `{response: k}` */
    this.chunks = null;
    /** @type {Playback|null} set by the path once it plays */
    this.playback = null;
    /** @type {Word[]} in arrival (= spoken) order */
    this.words = [];
    /** @type {number[]|null} code point index in the request's input -> string index in the whole input */
    this.offsets = null;
    /** index in `words` of the word heard now, -1: none yet */
    this.word = -1;
    /** paused by the player (the path does not start playing by itself then) */
    this.paused = false;
    /** @type {((response: number, at: number) => void)|null} live text: where a response's audio starts */
    this.onResponse = null;
  }

  /**
   * Live text: `chunks` holds several responses, each after a marker `{response: k}`; the path
   * calls this once it knows that response k's audio starts `at` seconds into its timeline.
   */
  mark(response, at) {
    this.onResponse?.(response, at);
  }

  /** Milliseconds since the speak() call. */
  ms() {
    return Math.round(performance.now() - this.t0);
  }

  /** Run `fn` when the session ends (at once if it already has); any number may be registered. */
  onStop(fn) {
    if (this.signal.aborted) fn();
    else this.signal.addEventListener("abort", () => fn(), { once: true });
  }

  /** Cancel the request, silence the playback and run the stop handlers. */
  end() {
    if (this.signal.aborted) return;
    this.controller.abort();
    this.playback?.stop();
  }
}
