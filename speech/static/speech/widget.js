// Wires the {% speech_player %} markup to a SpeechPlayer. URLs come from the template's JSON.
// Every such root on the page is mounted on load: `root.speechPlayer` is its SpeechPlayer, and
// `root.speechWidget.destroy()` unmounts it (stops playing, removes its listeners and what it added
// to the page, frees its object URL and AudioContext).
//
// `mount` wires small parts, each owning a piece of the markup: the download link, the progress
// bars, the transcript, the status line.

import { SpeechPlayer, supportedPaths } from "./player.js";
import { fillVoices, followVoice, sampleText } from "./voices.js";

// A slow speaking rate: the expected length is rather too long than too short (see the progress bars).
const CHARACTERS_PER_SECOND = 12;
const FIGURES = [".sp-ttfb", ".sp-ttfs", ".sp-time", ".sp-path-used"];

for (const root of document.querySelectorAll("[data-speech-player]")) mount(root);

function mount(root) {
  const config = JSON.parse(root.querySelector("#speech-player-config").textContent);
  const $ = (selector) => root.querySelector(selector);
  $(".sp-load-error").hidden = true; // the code did load: the page's warning that it did not never shows
  const [text, voice, speed, path] = [".sp-text", ".sp-voice", ".sp-speed", ".sp-path"].map($);
  const show = (selector, value) => {
    $(selector).textContent = value;
  };
  const player = new SpeechPlayer({ ...config, audio: $(".sp-audio") });
  const unmount = new AbortController(); // removes every listener added here
  const signal = unmount.signal;
  const markup = { voices: [...voice.children], paths: [...path.options].map((option) => option.cloneNode(true)) };
  if (config.path) path.value = config.path;

  const download = downloadLink($(".sp-download"));
  const bars = progressBars($, show);
  const transcript = wordTranscript($(".sp-transcript"), player, signal);
  const say = statusLine($(".sp-status"));
  const busy = (on) => {
    $(".sp-stop").disabled = !on;
    root.classList.toggle("is-playing", on);
  };
  const finish = (message, isError = false) => {
    busy(false);
    say(message, isError);
    download.offer(player.download());
  };

  offerPaths(path, signal);
  let voices = new Map();
  player
    .voices({ signal })
    .then((data) => {
      voices = fillVoices(voice, data);
      followVoice(voice, text, signal);
    })
    .catch((error) => signal.aborted || say(`Could not load the voices: ${error.message}`, true));

  // Warm up before the click: the AudioContext needs a user gesture to run.
  for (const type of ["pointerdown", "keydown"]) text.addEventListener(type, () => player.warm(), { once: true, signal });
  speed.addEventListener("input", () => show(".sp-speed-value", `${Number(speed.value).toFixed(2)}×`), { signal });

  player.on("firstbyte", ({ ms }) => show(".sp-ttfb", `${ms} ms`));
  player.on("playing", ({ ms, path: used }) => {
    busy(true); // also when a click on a word started it again
    show(".sp-ttfs", `${ms} ms`);
    show(".sp-path-used", used);
    say("Playing…");
  });
  player.on("progress", bars.draw);
  player.on("lastbyte", bars.complete);
  player.on("ended", ({ duration }) => finish(`Done: ${duration.toFixed(1)} s of speech.`));
  player.on("error", ({ message }) => finish(message, true));

  const start = (input = text.value) => {
    if (!input.trim()) {
      say("Type something to speak first.", true);
      text.focus();
      return;
    }
    for (const selector of FIGURES) show(selector, "—");
    download.offer(null);
    bars.reset(text.value.length / CHARACTERS_PER_SECOND / Number(speed.value));
    busy(true);
    transcript.show(text.value);
    say("Starting…");
    // A voice of a second local engine (Kokoro) is spoken by its own model; every other by piper, as before.
    const model = voices.get(voice.value)?.engine === "kokoro" ? "kokoro" : "piper";
    player.speak({ input, voice: voice.value, speed: Number(speed.value), model, path: path.value || null });
  };
  const halt = () => {
    player.stop();
    finish("Stopped.");
  };
  $(".sp-speak").addEventListener("click", () => start(), { signal });
  $(".sp-sample").addEventListener("click", () => start(sampleText(voices.get(voice.value))), { signal });
  $(".sp-stop").addEventListener("click", halt, { signal });
  text.addEventListener("keydown", (event) => shortcut(event, start, halt), { signal });

  const destroy = () => {
    unmount.abort();
    player.destroy(); // stops playing, drops its listeners, closes its AudioContext
    download.offer(null);
    busy(false);
    say("");
    transcript.clear();
    voice.replaceChildren(...markup.voices);
    path.replaceChildren(...markup.paths);
    delete root.speechPlayer;
    delete root.speechWidget;
  };
  root.speechPlayer = player;
  root.speechWidget = { player, destroy };
}

// Ctrl/Cmd+Enter speaks, Escape stops.
function shortcut(event, start, halt) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    start();
  } else if (event.key === "Escape") {
    halt();
  }
}

// The paths this browser cannot play are disabled; "Automatic" names the one it would choose.
function offerPaths(path, signal) {
  supportedPaths().then((paths) => {
    if (signal.aborted) return;
    for (const option of path.options) option.disabled = option.value !== "" && !paths.includes(option.value);
    path.options[0].textContent = `Automatic (${paths[0]})`;
  });
}

function statusLine(status) {
  return (message, isError = false) => {
    status.textContent = message;
    status.classList.toggle("is-error", isError);
  };
}

// The link to the audio heard so far, as a file; its object URL is freed when replaced.
function downloadLink(anchor) {
  let url = null;
  return {
    offer(file) {
      if (url) URL.revokeObjectURL(url);
      url = file ? URL.createObjectURL(file) : null;
      if (file) {
        anchor.href = url;
        anchor.download = file.name;
      } else {
        anchor.removeAttribute("href");
      }
      anchor.setAttribute("aria-disabled", String(!file));
    },
  };
}

// The bars measure against the expected length (from the text) until the last byte gives the real one,
// so a growing buffer does not pull the played bar back; the scale only ever shrinks to the truth.
function progressBars($, show) {
  let bars = { expected: 0, complete: false, played: 0 };
  return {
    reset(expected) {
      bars = { expected, complete: false, played: 0 };
      for (const selector of [".sp-buffered", ".sp-played"]) $(selector).style.width = "0%";
    },
    complete() {
      bars.complete = true;
    },
    draw({ played, buffered }) {
      const scale = Math.max(bars.complete ? buffered : Math.max(buffered, bars.expected), played, 0.001);
      bars.played = Math.max(bars.played, Math.min(1, played / scale)); // never backwards within one play
      $(".sp-buffered").style.width = `${Math.min(100, (buffered / scale) * 100)}%`;
      $(".sp-played").style.width = `${bars.played * 100}%`;
      show(".sp-time", `${played.toFixed(1)} s / ${buffered.toFixed(1)} s`);
    },
  };
}

// The typed text, one span per word: the word heard now is marked; clicking one goes there.
function wordTranscript(transcript, player, signal) {
  let spans = [];
  let current = null;
  transcript.addEventListener(
    "click",
    (event) => {
      const span = event.target.closest(".sp-word");
      if (span) player.seek(Number(span.dataset.start));
    },
    { signal },
  );
  player.on("word", ({ charStart, index }) => {
    const hit = index < 0 ? null : spans.find(({ start, end }) => start <= charStart && charStart < end);
    if (hit?.span === current) return;
    current?.classList.remove("is-current");
    current = hit?.span ?? null;
    current?.classList.add("is-current");
    current?.scrollIntoView({ block: "nearest" });
  });
  return {
    show(value) {
      spans = [];
      current = null;
      const parts = [];
      for (const match of value.matchAll(/\S+|\s+/g)) {
        if (/^\s/.test(match[0])) {
          parts.push(match[0]);
          continue;
        }
        const span = document.createElement("span");
        span.className = "sp-word";
        span.textContent = match[0];
        span.dataset.start = match.index;
        spans.push({ span, start: match.index, end: match.index + match[0].length });
        parts.push(span);
      }
      transcript.replaceChildren(...parts);
      transcript.hidden = false;
    },
    clear() {
      transcript.replaceChildren();
      transcript.hidden = true;
    },
  };
}
