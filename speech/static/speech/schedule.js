// Gapless playback of AudioBuffers on one AudioContext clock, shared by the PCM and Opus paths.

// Lead given to the first buffer (and after an underrun) so it is never scheduled in the past.
const START_MARGIN = 0.02;

export class Schedule {
  constructor(ctx, { onPlaying, onEnded }) {
    this.ctx = ctx;
    this.onPlaying = onPlaying;
    this.onEnded = onEnded;
    this.next = 0; // context time at which the next buffer starts
    this.seconds = 0; // audio scheduled so far
    this.sources = new Set();
    this.finished = false;
    this.timer = null;
  }

  add(buffer) {
    const ctx = this.ctx;
    const earliest = ctx.currentTime + START_MARGIN;
    if (this.next < earliest) this.next = earliest;
    if (this.seconds === 0) this.announce(this.next);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    source.onended = () => {
      this.sources.delete(source);
      source.disconnect();
      this.checkEnded();
    };
    source.start(this.next);
    this.sources.add(source);
    this.next += buffer.duration;
    this.seconds += buffer.duration;
  }

  // `onPlaying` when the first buffer is heard: its start time on a running clock. Firefox's
  // context can still be starting after the click; its clock stands still until then.
  announce(at) {
    const ctx = this.ctx;
    if (ctx.state === "running") {
      this.timer = setTimeout(this.onPlaying, Math.max(0, at - ctx.currentTime) * 1000);
      return;
    }
    const wait = () => {
      if (ctx.state !== "running") return;
      ctx.removeEventListener("statechange", wait);
      if (this.sources.size) this.announce(at);
    };
    ctx.addEventListener("statechange", wait);
  }

  // No more buffers will come: `onEnded` fires once the last one has played.
  finish() {
    this.finished = true;
    this.checkEnded();
  }

  checkEnded() {
    if (this.finished && this.sources.size === 0) this.onEnded(this.seconds);
  }

  buffered() {
    return this.seconds;
  }

  played() {
    return this.seconds - Math.max(0, this.next - this.ctx.currentTime);
  }

  stop() {
    clearTimeout(this.timer);
    this.finished = false;
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
      source.disconnect();
    }
    this.sources.clear();
  }
}
