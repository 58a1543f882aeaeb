// PCM path: raw s16le mono from the fetch reader straight onto the Web Audio clock.

import { concatBytes } from "./bytes.js";
import { Schedule } from "./schedule.js";

// The server names the rate of raw samples in this header; 24 kHz is OpenAI's documented pcm rate,
// assumed when a server sends no header.
const RATE_HEADER = "X-Speech-Sample-Rate";
const OPENAI_RATE = 24000;

/** @param {import("./session.js").Session} session */
export async function playPcm(session) {
  let rate = null; // read at the first chunk: live text's first response may still be on its way now
  const schedule = new Schedule(session.ctx, session.callbacks);
  session.playback = schedule;
  let carry = null; // an odd trailing byte, completed by the next chunk
  for await (let chunk of session.chunks) {
    if (chunk.response !== undefined) {
      carry = null; // a response holds whole samples
      session.mark(chunk.response, schedule.seconds);
      continue;
    }
    if (carry) {
      chunk = concatBytes([carry, chunk]);
      carry = null;
    }
    if (chunk.length % 2) {
      carry = chunk.slice(-1);
      chunk = chunk.subarray(0, -1);
    }
    rate ??= Number(session.headers?.get(RATE_HEADER)) || OPENAI_RATE;
    if (chunk.length) schedule.add(toBuffer(session.ctx, chunk, rate));
  }
  schedule.finish();
}

function toBuffer(ctx, bytes, rate) {
  const samples = bytes.length / 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const buffer = ctx.createBuffer(1, samples, rate);
  const out = buffer.getChannelData(0);
  for (let i = 0; i < samples; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return buffer;
}
