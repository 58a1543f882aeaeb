// PCM path: raw s16le mono 24 kHz from the fetch reader straight onto the Web Audio clock.

import { Schedule } from "./schedule.js";

const RATE = 24000;

export async function playPcm(session) {
  const schedule = new Schedule(session.ctx, session.callbacks);
  session.playback = schedule;
  let carry = null; // an odd trailing byte, completed by the next chunk
  for await (let chunk of session.chunks) {
    if (carry) {
      chunk = concatBytes(carry, chunk);
      carry = null;
    }
    if (chunk.length % 2) {
      carry = chunk.slice(-1);
      chunk = chunk.subarray(0, -1);
    }
    if (chunk.length) schedule.add(toBuffer(session.ctx, chunk));
  }
  schedule.finish();
}

function toBuffer(ctx, bytes) {
  const samples = bytes.length / 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const buffer = ctx.createBuffer(1, samples, RATE);
  const out = buffer.getChannelData(0);
  for (let i = 0; i < samples; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return buffer;
}

function concatBytes(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
