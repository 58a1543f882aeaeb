// Ogg page demuxer for streamed Ogg Opus: bytes in (any split), whole packets out.

import { concatBytes } from "./bytes.js";

const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"

export class OggDemuxer {
  constructor() {
    this.buffer = new Uint8Array(0);
    this.partial = []; // pieces of a packet that continues on the next page
  }

  // Feed bytes; returns the packets completed by them, each {data, granule, serial}.
  push(bytes) {
    this.buffer = this.buffer.length ? concatBytes([this.buffer, bytes]) : bytes;
    const packets = [];
    let offset = 0;
    for (;;) {
      const page = readPage(this.buffer, offset);
      if (!page) break;
      offset = page.end;
      if (!page.continued) this.partial = [];
      let start = page.bodyStart;
      let end = start;
      for (const value of page.lacing) {
        end += value;
        if (value < 255) {
          this.partial.push(this.buffer.subarray(start, end));
          packets.push({ data: concatBytes(this.partial), granule: page.granule, serial: page.serial });
          this.partial = [];
          start = end;
        }
      }
      // Lacing that ends in 255 means the last packet continues on the next page.
      if (end > start) this.partial.push(this.buffer.subarray(start, end));
    }
    this.buffer = this.buffer.slice(offset);
    return packets;
  }
}

function readPage(buf, at) {
  if (buf.length - at < 27) return null;
  for (let i = 0; i < 4; i++) {
    if (buf[at + i] !== CAPTURE[i]) throw new Error("Not an Ogg stream: bad page capture pattern");
  }
  const count = buf[at + 26];
  const bodyStart = at + 27 + count;
  if (buf.length < bodyStart) return null;
  const lacing = buf.subarray(at + 27, bodyStart);
  let size = 0;
  for (const value of lacing) size += value;
  if (buf.length < bodyStart + size) return null;
  const view = new DataView(buf.buffer, buf.byteOffset + at);
  return {
    continued: (buf[at + 5] & 1) === 1,
    granule: view.getBigInt64(6, true),
    serial: view.getUint32(14, true),
    lacing,
    bodyStart,
    end: bodyStart + size,
  };
}

const ascii = (data, from, to) => String.fromCharCode(...data.subarray(from, to));

export const isOpusHead = (data) => data.length >= 19 && ascii(data, 0, 8) === "OpusHead";
export const isOpusTags = (data) => data.length >= 8 && ascii(data, 0, 8) === "OpusTags";

export function parseOpusHead(data) {
  if (!isOpusHead(data)) throw new Error("Not an OpusHead packet");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    channels: data[9],
    preSkip: view.getUint16(10, true),
    inputSampleRate: view.getUint32(12, true),
    mappingFamily: data[18],
  };
}

// Samples at 48 kHz in one Opus packet, from its TOC byte (RFC 6716, section 3.1).
export function opusPacketSamples(data) {
  const config = data[0] >> 3;
  let frameSamples;
  if (config < 12) frameSamples = [480, 960, 1920, 2880][config % 4];
  else if (config < 16) frameSamples = [480, 960][config % 2];
  else frameSamples = [120, 240, 480, 960][config % 4];
  const code = data[0] & 3;
  const frames = code === 0 ? 1 : code === 3 ? data[1] & 0x3f : 2;
  return frameSamples * frames;
}
