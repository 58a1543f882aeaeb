// Live text: speech for text that is still arriving (an AI answer streaming in), in one playback.
// The text is cut into pieces at sentence ends as it completes; each piece is one request, asked
// while the one before plays (at most IN_FLIGHT open at once; the second only once the first one's
// audio has begun to arrive, so the first has the server to itself), and only while less than
// LOOKAHEAD_SECONDS of audio lie ahead of the listener: a whole page written at once is asked for a
// piece at a time. The responses reach the playback path as one stream of chunks, each response
// announced by a marker `{response: k}`; the path calls `session.mark(k, at)` once it knows where
// that response's audio starts on its timeline, and the response's words are placed there.

export const LOOKAHEAD_SECONDS = 25;
// The server refuses more than 4,096 characters (code points) in one input: a JavaScript string of
// this length has at most as many.
export const MAX_PIECE = 4000;
// The first piece is the first sentence (sound starts soonest); later ones take the complete
// sentences there are, up to these lengths (the last repeats).
const PIECE_LIMITS = [0, 300, 800, 1500];
const IN_FLIGHT = 2;
// A clause with no sentence end yet is asked for after this wait, cut after its last comma (or
// semicolon, colon, dash) at least CLAUSE_MIN characters in; with no such break, a tail of
// LONG_TAIL characters is cut at its last space.
const CLAUSE_WAIT_MS = 1000;
const CLAUSE_MIN = 40;
const LONG_TAIL = 250;
// ... and only while less than this much audio is ahead of the listener (else the sentence end is awaited).
const CLAUSE_AHEAD_SECONDS = 2;
// Seconds of audio in a piece not yet received, estimated from its length (speed 1).
const CHARACTERS_PER_SECOND = 14;
const CHECK_EVERY_MS = 250;

// A sentence ends at . ! ? … (with closing quotes or brackets) followed by white space, or at a line end.
const SENTENCE_END = /[.!?…]+["'”’)\]]*\s+|\n\s*/g;
const CLAUSE_END = /[,;:—–]\s+/g;
// A period after these (or after one letter: "J. Smith", "e.g.") does not end a sentence.
const ABBREVIATION = /(?:^|[\s("'])(?:[A-Za-z]|Dr|Mr|Mrs|Ms|Mx|Prof|Sr|Jr|St|Mt|vs|e\.g|i\.e|Fig|cf)\.$/;

/**
 * Where the next piece of `text` from `from` ends (a string index), or -1 when none is ready.
 * @param {string} text  all the text written so far
 * @param {number} from  where the piece starts
 * @param {object} options
 * @param {number} options.limit  the longest piece wanted, in characters (0: one sentence)
 * @param {boolean} options.ended  no more text will come: the rest is a piece
 * @param {boolean} options.waited  the tail waited long enough: a long clause may go alone
 */
export function nextCut(text, from, { limit, ended, waited }) {
  const window = text.slice(from, from + MAX_PIECE);
  let cut = -1;
  for (const match of window.matchAll(SENTENCE_END)) {
    const end = match.index + match[0].length;
    if (match[0][0] === "." && ABBREVIATION.test(window.slice(Math.max(0, match.index - 6), match.index + 1))) continue;
    if (cut >= 0 && end > limit) break;
    cut = end;
    if (limit === 0) break;
  }
  if (cut >= 0) return from + cut;
  if (ended && text.length - from <= MAX_PIECE) return text.length;
  if (ended || window.length === MAX_PIECE) return from + lastSpace(window, window.length);
  if (!waited) return -1;
  let clause = -1;
  for (const match of window.matchAll(CLAUSE_END)) {
    if (match.index >= CLAUSE_MIN) clause = match.index + match[0].length;
  }
  if (clause >= 0) return from + clause;
  return window.length >= LONG_TAIL ? from + lastSpace(window, window.length) : -1;
}

/** Where live text cuts its first request from `from` once all of `text` is written and ended. */
export function firstCut(text, from) {
  return nextCut(text, from, { limit: PIECE_LIMITS[0], ended: true, waited: false });
}

function lastSpace(window, fallback) {
  const at = window.search(/\s\S*$/);
  return at > 0 ? at + 1 : fallback;
}

// Code point offsets (the API's) -> JavaScript string indices, `from` onwards.
export function stringIndices(input, from) {
  const indices = [];
  let at = from;
  for (const ch of input) {
    indices.push(at);
    at += ch.length;
  }
  indices.push(at);
  return indices;
}

export function pageWord({ text, start, end, char_start, char_end }, offsets) {
  return { text, start, end, charStart: offsets[char_start], charEnd: offsets[char_end] };
}

/**
 * One live text: `write()` text as it comes, `end()` it, `await done`. Made by `SpeechPlayer.live()`.
 */
export class LiveText {
  #session;
  #body;
  #post;
  #read;
  #offset;
  #text = "";
  #sent = 0; // text before this index was asked for
  #ended = false;
  #waitingSince = null; // when a tail first waited for its sentence end
  #timer = null;
  #wake = null; // resumes the chunk stream waiting for a request
  #format = null; // set once the path is chosen: requests start then

  /**
   * @param {object} options
   * @param {import("./session.js").Session} options.session
   * @param {object} options.body  voice, speed, model of every request
   * @param {(body: object) => Promise<Response>} options.post  sends one request (the session's signal)
   * @param {(response: Response, onWord: (event: object) => void) => AsyncIterable<Uint8Array>} options.read
   * @param {number} options.offset  added to every word's charStart/charEnd
   */
  constructor({ session, body, post, read, offset = 0 }) {
    this.#session = session;
    this.#body = body;
    this.#post = post;
    this.#read = read;
    this.#offset = offset;
    /** Each request: {from, to} (string indices into `text`), `start`/`end` on the timeline once known. */
    this.requests = [];
    /** @type {Promise<void>} resolves once all the audio is in, or the session stopped */
    this.done = null;
    session.onResponse = (k, at) => this.#placed(k, at);
    const check = setInterval(() => this.#pump(), CHECK_EVERY_MS);
    session.onStop(() => {
      clearInterval(check);
      clearTimeout(this.#timer);
      this.#wake?.();
    });
  }

  /** All the text written so far. */
  get text() {
    return this.#text;
  }

  /** The text before this index has been asked for. */
  get requested() {
    return this.#sent;
  }

  get ended() {
    return this.#ended;
  }

  get stopped() {
    return this.#session.signal.aborted;
  }

  /** Append text; each sentence is asked for once complete (and the look-ahead allows). */
  write(delta) {
    if (this.#ended) throw new Error("This live text has ended: write() after end().");
    if (this.stopped || !delta) return this;
    this.#text += delta;
    this.#pump();
    return this;
  }

  /** No more text: the rest is asked for. */
  end() {
    if (this.#ended) return this;
    this.#ended = true;
    this.#pump();
    return this;
  }

  /** Write each string `iterable` yields, then end(). Returns this live text at once. */
  from(iterable) {
    (async () => {
      for await (const delta of iterable) {
        if (this.stopped) return;
        this.write(delta);
      }
      this.end();
    })().catch((error) => this.#session.callbacks.onError(error));
    return this;
  }

  /** Called by the player once the path is chosen. */
  start(format) {
    this.#format = format;
    this.#pump();
  }

  /** The audio of every response, in order, each after its marker `{response: k}`. */
  async *chunks() {
    const signal = this.#session.signal;
    for (let k = 0; ; k++) {
      while (k >= this.requests.length) {
        if (signal.aborted || (this.#ended && this.#sent >= this.#text.length)) return;
        await new Promise((resolve) => {
          this.#wake = resolve;
        });
      }
      const request = this.requests[k];
      const response = await request.response;
      const offsets = stringIndices(this.#text.slice(request.from, request.to), request.from + this.#offset);
      yield { response: k };
      for await (const chunk of this.#read(response, (event) => this.#word(k, pageWord(event, offsets)))) {
        if (!request.sounded) {
          request.sounded = true;
          if (k === 0) this.#pump(); // the second request may go now (see #pump)
        }
        yield chunk;
      }
      request.received = true;
      this.#pump();
    }
  }

  // Audio seconds ahead of the listener: what is on the timeline, and an estimate of the rest.
  #ahead() {
    const playback = this.#session.playback;
    const speed = this.#body.speed || 1;
    let total = 0;
    for (const request of this.requests) {
      const estimate = (request.to - request.from) / CHARACTERS_PER_SECOND / speed;
      if (request.end !== undefined) total += request.end - request.start;
      else if (request.start === undefined) total += estimate;
      else total += Math.max(estimate, (playback?.buffered() ?? 0) - request.start);
    }
    return total - (playback?.played() ?? 0);
  }

  #pump() {
    if (this.stopped || this.#format === null) return;
    while (this.#sent < this.#text.length) {
      // The second request waits for the first one's first audio (or its end): two syntheses at once
      // share the server's cores, and would delay the first sound.
      const first = this.requests[0];
      if (first && !(first.sounded || first.received || first.failed)) break;
      const open = this.requests.filter((request) => !request.received).length;
      const ahead = this.#ahead();
      if (open >= IN_FLIGHT || ahead >= LOOKAHEAD_SECONDS) break;
      const k = this.requests.length;
      const limit = PIECE_LIMITS[Math.min(k, PIECE_LIMITS.length - 1)];
      const waited =
        this.#waitingSince !== null &&
        performance.now() - this.#waitingSince >= CLAUSE_WAIT_MS &&
        ahead < CLAUSE_AHEAD_SECONDS;
      const to = nextCut(this.#text, this.#sent, { limit, ended: this.#ended, waited });
      if (to < 0) {
        if (this.#waitingSince === null) {
          this.#waitingSince = performance.now();
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => this.#pump(), CLAUSE_WAIT_MS);
        }
        break;
      }
      this.#waitingSince = null;
      const from = this.#sent;
      this.#sent = to;
      if (this.#text.slice(from, to).trim()) this.#request(from, to);
    }
    this.#wake?.();
  }

  #request(from, to) {
    const input = this.#text.slice(from, to);
    const body = { ...this.#body, input, response_format: this.#format };
    const request = { from, to, start: undefined, end: undefined, received: false, sounded: false, words: [] };
    request.response = this.#post(body);
    // A failure is thrown where the stream reaches this request.
    request.response.catch(() => {
      request.failed = true;
      this.#pump();
    });
    this.requests.push(request);
  }

  #word(k, word) {
    const request = this.requests[k];
    if (request.start === undefined) request.words.push(word);
    else this.#session.words.push(shift(word, request.start));
  }

  // Response k's audio starts at `at` seconds on the path's timeline.
  #placed(k, at) {
    const request = this.requests[k];
    if (!request) return;
    request.start = at;
    if (k > 0) this.requests[k - 1].end = at;
    for (const word of request.words) this.#session.words.push(shift(word, at));
    request.words = [];
    this.#pump();
  }
}

const shift = (word, at) => ({ ...word, start: word.start + at, end: word.end + at });
