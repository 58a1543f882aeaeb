/* global document, performance, setTimeout, clearTimeout */
// The site's "Live answer" demo: a canned answer "streams in" word by word at a chosen rate (a
// stand-in for an AI model: nothing is asked of one) and SpeechPlayer.live() speaks it as it
// arrives; the word heard is marked. The player's URLs and page token are the widget's.

import { SpeechPlayer } from "./speech/player.js";

const ANSWER =
  "Streaming speech works like a good reader who starts before the page is finished. " +
  "As soon as the first sentence of the answer is complete, it is sent to the server, and its sound begins a moment later. " +
  "Meanwhile the model keeps writing: every sentence that completes is asked for while the one before is still being spoken. " +
  "The pieces are played back to back on one timeline, so the voice runs on without a pause. " +
  "When the model writes faster than anyone speaks, later pieces grow to several sentences, and only about half a minute is fetched ahead.";

const root = document.querySelector("[data-live-demo]");
if (root) mount(root);

function mount(root) {
  const $ = (selector) => root.querySelector(selector);
  const rate = $(".live-rate");
  const ask = $(".live-ask");
  const pause = $(".live-pause");
  const stop = $(".live-stop");
  const answer = $(".live-answer");
  const status = $(".live-status");
  const config = JSON.parse(document.querySelector("#speech-player-config").textContent);
  const player = new SpeechPlayer({ ...config, audio: $(".live-audio") });
  const widgetVoice = document.querySelector("[data-speech-player] .sp-voice");

  let spans = []; // {span, start, end} per word written, in order
  let current = -1;
  let run = null; // {live, cancelled, firstSentenceAt}

  const say = (message, isError = false) => {
    status.textContent = message;
    status.classList.toggle("is-error", isError);
  };
  const busy = (on) => {
    ask.disabled = on;
    pause.disabled = !on;
    stop.disabled = !on;
    pause.textContent = "Pause";
  };

  // The "model": yields the answer a word (and its space) at a time, `perSecond` words a second.
  async function* stream(perSecond, state) {
    for (const match of ANSWER.matchAll(/\S+\s*/g)) {
      if (state.cancelled) return;
      await new Promise((resolve) => {
        state.timer = setTimeout(resolve, 1000 / perSecond);
      });
      if (state.cancelled) return;
      show(match[0], match.index);
      yield match[0];
      if (state.firstSentenceAt === null && state.live?.requests.length) state.firstSentenceAt = performance.now();
    }
  }

  const show = (word, start) => {
    const text = word.trimEnd();
    const span = document.createElement("span");
    span.className = "live-word";
    span.textContent = text;
    spans.push({ span, start, end: start + text.length });
    answer.append(span, word.slice(text.length));
  };

  player.on("word", ({ charStart, index }) => {
    let next = -1;
    if (index >= 0) {
      next = Math.max(current, 0);
      while (next + 1 < spans.length && spans[next + 1].start <= charStart) next++;
    }
    if (next === current) return;
    spans[current]?.span.classList.remove("is-current");
    current = next;
    spans[current]?.span.classList.add("is-current");
  });
  player.on("playing", ({ path }) => {
    const after = run?.firstSentenceAt === null ? "" : ` ${Math.round(performance.now() - run.firstSentenceAt)} ms after the first sentence was complete`;
    say(`Speaking (${path}): first sound${after}.`);
  });
  player.on("ended", ({ duration }) => {
    busy(false);
    say(`Done: ${duration.toFixed(1)} s of speech in ${run.live.requests.length} requests.`);
  });
  player.on("error", ({ message }) => {
    busy(false);
    say(message, true);
  });

  const halt = () => {
    if (run) {
      run.cancelled = true;
      clearTimeout(run.timer);
    }
    player.stop();
    busy(false);
  };

  ask.addEventListener("click", () => {
    halt();
    spans = [];
    current = -1;
    answer.replaceChildren();
    const state = { cancelled: false, timer: null, firstSentenceAt: null, live: null };
    run = state;
    const voice = widgetVoice?.value || "alloy";
    state.live = player.live({ voice }).from(stream(Number(rate.value), state));
    busy(true);
    say("The answer is streaming in…");
  });
  pause.addEventListener("click", () => {
    if (player.paused) player.resume();
    else player.pause();
    pause.textContent = player.paused ? "Resume" : "Pause";
  });
  stop.addEventListener("click", () => {
    halt();
    say("Stopped.");
  });
  root.liveDemo = { player, answer: ANSWER };
}
