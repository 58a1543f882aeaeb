// Opus path: Ogg pages demuxed in JS, decoded by WebCodecs, played on the Web Audio clock.
// Several responses (live text) are chained Ogg streams decoded on one timeline.

import { isOpusHead, isOpusTags, OggDemuxer, opusPacketSamples, parseOpusHead } from "./ogg.js";
import { Schedule } from "./schedule.js";

const OPUS_RATE = 48000;

export function opusConfig(channels, opusHead = null) {
  // No `description` (OpusHead) for mono/stereo (channel mapping family 0), where it is optional:
  // WebKit's decoder crashes on the first decode() when given one. Pre-skip is applied here instead.
  // Multichannel streams (family 1+) cannot be decoded without their channel mapping: pass it then.
  const config = { codec: "opus", sampleRate: OPUS_RATE, numberOfChannels: channels };
  if (opusHead && opusHead[18] !== 0) config.description = opusHead;
  return config;
}

export async function playOpus(session) {
  const ctx = session.ctx;
  const schedule = new Schedule(ctx, session.callbacks);
  session.playback = schedule;
  let demuxer = new OggDemuxer();
  let skip = 0; // pre-skip samples still to drop from the decoded output
  // Each Ogg stream's first packet: its timestamp, pre-skip, and (live text) the response it opens.
  const streams = [];
  let response = null; // the marker of the response whose stream comes next
  let channels = 0; // as configured
  let decodeError = null;
  const decoder = new AudioDecoder({
    output: (data) => {
      while (streams.length && data.timestamp >= streams[0].timestamp - 1) {
        const stream = streams.shift();
        skip = stream.preSkip;
        if (stream.response !== null) session.mark(stream.response, schedule.seconds);
      }
      const frames = data.numberOfFrames - Math.min(skip, data.numberOfFrames);
      const from = data.numberOfFrames - frames;
      skip -= from;
      if (frames > 0 && !session.signal.aborted) {
        const buffer = ctx.createBuffer(data.numberOfChannels, frames, data.sampleRate);
        for (let ch = 0; ch < data.numberOfChannels; ch++) {
          const plane = new Float32Array(data.numberOfFrames);
          data.copyTo(plane, { planeIndex: ch, format: "f32-planar" });
          buffer.copyToChannel(plane.subarray(from), ch);
        }
        schedule.add(buffer);
      }
      data.close();
    },
    error: (error) => {
      decodeError = error;
    },
  });
  session.onStop(() => decoder.state !== "closed" && decoder.close());
  let timestamp = 0; // microseconds
  try {
    for await (const chunk of session.chunks) {
      if (chunk.response !== undefined) {
        // Live text: the next response is a new Ogg stream (chained: new BOS page, new serial).
        response = chunk.response;
        demuxer = new OggDemuxer();
        continue;
      }
      for (const packet of demuxer.push(chunk)) {
        if (isOpusHead(packet.data)) {
          const head = parseOpusHead(packet.data);
          streams.push({ timestamp, preSkip: head.preSkip, response });
          response = null;
          // The same configuration for each stream: the decoder goes on (its queue keeps the order).
          if (head.channels !== channels || head.mappingFamily !== 0) {
            decoder.configure(opusConfig(head.channels, packet.data));
            channels = head.channels;
          }
        } else if (!isOpusTags(packet.data)) {
          const duration = (opusPacketSamples(packet.data) * 1e6) / OPUS_RATE;
          decoder.decode(new EncodedAudioChunk({ type: "key", timestamp, duration, data: packet.data }));
          timestamp += duration;
        }
        if (decodeError) throw decodeError;
      }
    }
    await decoder.flush();
    if (decodeError) throw decodeError;
  } finally {
    if (decoder.state !== "closed") decoder.close();
  }
  schedule.finish();
}
