// MP3 path: the fetch reader feeds a SourceBuffer (MediaSource, or ManagedMediaSource on iOS Safari);
// the <audio> element plays from the first append. Several responses (live text) are appended
// back to back: "sequence" mode places each after the one before.

import { elementPlayback, watchElement } from "./element.js";

const TYPE = "audio/mpeg";
// Audio kept behind the playhead when the browser asks us to free space.
const KEEP_BEHIND = 1;

export const MediaSourceClass = () => globalThis.ManagedMediaSource || globalThis.MediaSource;

export const mseSupported = () => Boolean(MediaSourceClass()?.isTypeSupported(TYPE));

export async function playMse(session) {
  const audio = session.audio;
  const Source = MediaSourceClass();
  const source = new Source();
  // ManagedMediaSource (iOS Safari) only opens when remote playback is disabled or has an alternative.
  if (Source === globalThis.ManagedMediaSource) audio.disableRemotePlayback = true;
  const url = URL.createObjectURL(source);
  session.onStop(() => URL.revokeObjectURL(url));
  session.playback = elementPlayback(audio);
  watchElement(audio, session);
  audio.src = url;
  // stop() before the source opens removes the src, and "sourceopen" never comes: end on abort too.
  await new Promise((resolve, reject) => {
    source.addEventListener("sourceopen", resolve, { once: true });
    session.onStop(() => reject(session.signal.reason));
  });
  const buffer = source.addSourceBuffer(TYPE);
  buffer.mode = "sequence";

  const queue = [];
  let done = false;
  let started = false;
  let failed = null;
  let wake = null; // resolves the wait for the queue to drain
  const pump = () => {
    if (buffer.updating) return;
    if (failed || source.readyState !== "open") return wake?.();
    // Live text: a response's marker is reached once everything before it is appended; in sequence
    // mode its audio follows on at the end of what is buffered.
    while (queue.length && queue[0].response !== undefined) session.mark(queue.shift().response, bufferedEnd(buffer));
    if (!queue.length) {
      if (done) source.endOfStream();
      wake?.();
      return;
    }
    try {
      buffer.appendBuffer(queue[0]);
      queue.shift();
    } catch (error) {
      if (error.name !== "QuotaExceededError") {
        failed = error;
        wake?.();
      } else if (audio.currentTime > KEEP_BEHIND) {
        buffer.remove(0, audio.currentTime - KEEP_BEHIND); // its updateend pumps again
      } // else: nothing played yet to evict; the next timeupdate retries
    }
  };
  buffer.addEventListener("updateend", () => {
    if (!started && !session.paused) {
      started = true;
      audio.play().catch(session.callbacks.onError);
    }
    pump();
  });
  audio.addEventListener("timeupdate", pump, { signal: session.signal });

  for await (const chunk of session.chunks) {
    queue.push(chunk);
    pump();
    if (failed) throw failed;
  }
  done = true;
  await new Promise((resolve) => {
    wake = resolve;
    pump();
  });
  if (failed) throw failed;
}

const bufferedEnd = (buffer) => (buffer.buffered.length ? buffer.buffered.end(buffer.buffered.length - 1) : 0);
