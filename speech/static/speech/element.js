// <audio> element path: the element fetches a GET stream URL itself and plays it progressively.
// No words (no event stream), no download; the fallback when nothing else plays. The MSE path
// plays in the same element and shares its clock and events.

import { apiError } from "./errors.js";

/** @param {import("./session.js").Session} session @param {URL} url the stream URL with the request */
export async function playElement(session, url) {
  const audio = session.audio;
  session.playback = elementPlayback(audio);
  watchElement(audio, session, {
    // The element hides the reason; asking once more returns the API's error JSON.
    onError: async (error) => {
      const response = await fetch(url, { signal: session.signal }).catch(() => null);
      session.callbacks.onError(response && !response.ok ? await apiError(response) : error);
    },
  });
  audio.addEventListener("progress", () => session.callbacks.onFirstByte(), { once: true, signal: session.signal });
  audio.src = url.href;
  await audio.play().catch((error) => {
    // A stream the element cannot play is reported by its error event, with the API's message.
    if (error.name === "NotAllowedError") throw error;
  });
}

/** @returns {import("./session.js").Playback} */
export function elementPlayback(audio) {
  return {
    played: () => audio.currentTime,
    buffered: () => (audio.buffered.length ? audio.buffered.end(audio.buffered.length - 1) : 0),
    stop: () => {
      audio.pause();
      audio.removeAttribute("src");
      audio.load();
    },
  };
}

// Turns the element's media events into the session's callbacks until it ends.
export function watchElement(audio, session, { onError = session.callbacks.onError } = {}) {
  const { onPlaying, onEnded } = session.callbacks;
  const options = { signal: session.signal };
  audio.addEventListener("playing", onPlaying, { ...options, once: true });
  audio.addEventListener("ended", () => onEnded(audio.currentTime), options);
  audio.addEventListener(
    "error",
    () => onError(new Error(`The browser could not play this audio (media error ${audio.error?.code}).`)),
    options,
  );
}
