"""Text as it arrives -> one continuous audio stream: sentences spoken as soon as they are complete.

``Reader`` turns the source's fragments into parts (sentences) as they become final, or after a
bounded wait when a sentence is slow to end. Two ways to speak them:

- ``local``: a local voice (piper), through the same scheduler, piece sizing and encoder as the REST
  pipeline (``pipeline.py``), one encoder for the whole stream, word timings into the whole text.
- ``proxied``: any other engine (an upstream server), one request per sentence, the next opened as
  soon as its sentence is known, at most ``AHEAD`` at once. Each is asked for raw PCM and the samples
  are encoded here, so every format (also Ogg, FLAC, WAV, whose containers cannot be joined byte for
  byte) comes out as one stream with one header.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from speech import audio
from speech.cancellation import Cancellation, Cancelled, close
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import ClientClosed
from speech.live.source import WAKE, Ended, Source
from speech.live.text import Part, Splitter
from speech.pipeline import OPENING_SECONDS, Listener, Voice, _Words, encode, next_piece
from speech.scheduler import scheduler
from speech.timings import Timeline

logger = logging.getLogger("speech.live")

# How long an unfinished sentence may keep a listener who has run out of audio waiting for its end.
WAIT = 0.75
# How long text that ends as a sentence would ("sea.") waits for the character that settles it when
# the listener has run out of audio: an LLM's next token is usually there well before this.
SETTLE = 0.05
AHEAD = 2  # upstream requests open at once: the one playing and the next
_opening = ThreadPoolExecutor(max_workers=64, thread_name_prefix="speech-live-upstream")


class Reader:
    """Parts of the source's text, as they become final. Used by one thread."""

    def __init__(self, source: Source, cancel: Cancellation, wait: float, listener: Listener) -> None:
        self.source, self.cancel, self.wait, self.listener = source, cancel, wait, listener
        self.splitter = Splitter()
        self.ended: Ended | None = None
        self._since = 0.0  # when the unfinished text began to wait
        self._last = 0.0  # when the last fragment came

    @property
    def text(self) -> str:
        return self.splitter.text

    def next_part(self) -> Part | None:
        """The next sentences to speak; None once the source has ended (or the listener has gone)."""
        self.source.start(self.cancel)
        while not self.cancel.cancelled:
            self._drain()
            if part := self._taken(self.splitter.take()):
                return part
            if self.ended is not None:
                # A source that failed ends at its last complete sentence; one that ended, with all it sent.
                part = self.splitter.complete() if self.ended.error else self.splitter.flush()
                return self._taken(part)
            timeout = None
            if self.splitter.pending:
                # A sentence slow to end is cut when the listener is about to run dry (or never had audio).
                runs_dry = self.listener.runs_dry
                wait = self._since + self.wait
                if self.splitter.ends_sentence():
                    wait = min(wait, self._last + SETTLE)
                deadline = max(wait, (runs_dry or 0.0) - self.wait)
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    if part := self._taken(self.splitter.cut()):
                        return part
                    timeout = None
            self._receive(timeout)
        return None

    def _taken(self, part: Part | None) -> Part | None:
        if part is not None:
            self._since = time.monotonic()  # what is left began with the last fragment at the latest
        return part

    def _drain(self) -> None:
        while True:
            try:
                item = self.source.items.get_nowait()
            except queue.Empty:
                return
            self._add(item)

    def _receive(self, timeout: float | None) -> None:
        try:
            item = self.source.items.get(timeout=timeout)
        except queue.Empty:
            return
        self._add(item)

    def _add(self, item: str | Ended) -> None:
        if item is WAKE:
            return
        if isinstance(item, Ended):
            self.ended = item
            return
        self._last = time.monotonic()
        if not self.splitter.pending:
            self._since = self._last
        self.splitter.feed(item)


def local(
    voice: Voice, reader: Reader, fmt: str, speed: float, cancel: Cancellation, timeline: Timeline | None
) -> Iterator[bytes]:
    """The REST pipeline's loop (``pipeline.stream``) over sentences that arrive while it speaks."""
    yield from encode(_voiced(voice, reader, speed, cancel, timeline), fmt, voice.rate, cancel, timeline)


def _voiced(
    voice: Voice, reader: Reader, speed: float, cancel: Cancellation, timeline: Timeline | None
) -> Iterator[tuple[bytes, int]]:
    """The voice's PCM piece by piece as the text arrives, with how much of each goes out on its own."""
    listener = reader.listener
    pending: deque[str] = deque()
    words: _Words | None = None
    spoken_all = False
    pieces = voiced = 0
    try:
        while not cancel.cancelled:
            if not pending:
                part = reader.next_part()
                if part is None:
                    break
                pending.extend(part.sentences)
                words = _Words(reader.text, part.normalized, part.origins, voice.rate)
            with scheduler.slot(listener.deadline, cancel, first=not voiced) as grant:
                lead = listener.lead()
                piece = next_piece(pending, lead, phonemes=getattr(voice, "phonemes", None), speed=speed)
                pieces += 1
                logger.debug("live piece %d: %d characters, lead %.2f s", pieces, len(piece), lead)
                spoken = voice.synthesize(piece, speed, grant, cancel)
            if timeline is not None and words is not None:  # before the audio: a word never comes after its sound
                timeline.add(words.of(piece, spoken, voiced // 2))
            pcm = spoken.pcm
            listener.received(len(pcm) / 2 / voice.rate)
            # A listener who had run dry (text slow to come) hears the piece's opening before the rest is encoded.
            opening = int(OPENING_SECONDS * voice.rate) * 2 if lead < OPENING_SECONDS else 0
            voiced += len(pcm)
            yield pcm, opening
        spoken_all = not cancel.cancelled
    finally:
        if not spoken_all:
            logger.info("live: listener gone after %d pieces; synthesis stopped", pieces)


def proxied(engine: Engine, speech: SpeechRequest, reader: Reader, cancel: Cancellation) -> Iterator[bytes]:
    """One upstream request per sentence, pipelined; their PCM encoded here into one stream."""
    pcm = _relayed(engine, speech, reader, cancel)
    yield from encode(pcm, speech.response_format, audio.OUTPUT_RATE, cancel, None, (Cancelled, ClientClosed))


def _relayed(
    engine: Engine, speech: SpeechRequest, reader: Reader, cancel: Cancellation
) -> Iterator[tuple[bytes, int]]:
    """The upstream's PCM, sentence by sentence, in whole samples (none goes out on its own)."""
    opened: queue.SimpleQueue[Future[SpeechStream] | Ended] = queue.SimpleQueue()
    room = threading.Semaphore(AHEAD)
    one = replace(speech, response_format="pcm", stream_format="audio")
    run = contextvars.copy_context().run
    threading.Thread(
        target=run,
        args=(_dispatch, engine, one, reader, cancel, opened, room),
        name="speech-live-dispatch",
        daemon=True,
    ).start()
    relayed_all = False
    sentences = 0
    odd = b""  # a sample split between two upstream chunks
    try:
        while not cancel.cancelled:
            item = _wait(opened, cancel)
            if isinstance(item, Ended):
                if item.error is not None:
                    raise item.error
                break
            stream = _opened(item, cancel)
            sentences += 1
            try:
                for chunk in stream.chunks:
                    pcm, odd = odd + chunk, b""
                    if len(pcm) % 2:
                        pcm, odd = pcm[:-1], pcm[-1:]
                    reader.listener.received(len(pcm) / 2 / audio.OUTPUT_RATE)
                    yield pcm, 0
            finally:
                close(stream.chunks)
                room.release()
        relayed_all = not cancel.cancelled
    finally:
        if not relayed_all:
            cancel.cancel()
            logger.info("live: listener gone after %d sentences; upstream requests stopped", sentences)
            while True:  # requests opened ahead: closed now, or when they arrive
                try:
                    left = opened.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(left, Ended):
                    left.add_done_callback(_close_opened)


def _dispatch(
    engine: Engine,
    speech: SpeechRequest,
    reader: Reader,
    cancel: Cancellation,
    opened: queue.SimpleQueue[Future[SpeechStream] | Ended],
    room: threading.Semaphore,
) -> None:
    """Open a request for each sentence as soon as it is known and there is room."""
    error: BaseException | None = None
    try:
        while not cancel.cancelled:
            part = reader.next_part()
            if part is None:
                break
            for sentence in part.sentences:
                while not room.acquire(timeout=0.05):
                    if cancel.cancelled:
                        return
                one = replace(speech, input=sentence)
                opened.put(_opening.submit(contextvars.copy_context().run, engine.speak, one, cancel))
    except Exception as exc:
        error = exc
    finally:
        opened.put(Ended(error))


def _wait(
    opened: queue.SimpleQueue[Future[SpeechStream] | Ended], cancel: Cancellation
) -> Future[SpeechStream] | Ended:
    while True:
        try:
            return opened.get(timeout=0.05)
        except queue.Empty:
            if cancel.cancelled:
                raise Cancelled from None


def _opened(future: Future[SpeechStream], cancel: Cancellation) -> SpeechStream:
    """The request's stream once its first byte is in, or ``Cancelled`` as soon as the listener hangs up."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    with cancel.on_cancel(done.set):
        done.wait()
    if cancel.cancelled:
        future.add_done_callback(_close_opened)
        raise Cancelled
    return future.result()


def _close_opened(future: Future[SpeechStream]) -> None:
    if not future.cancelled() and future.exception() is None:
        close(future.result().chunks)
