"""Text -> pieces -> local voice -> encoder -> byte chunks, paced by how far ahead the listener is."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from typing import Protocol

from speech import audio, text
from speech.cancellation import Cancellation, Cancelled
from speech.scheduler import Grant, scheduler

logger = logging.getLogger(__name__)

FIRST_PIECE_WORDS = 3
# A piece may hold this many words per second of audio the listener has in hand. With ~2.5 words
# per second of speech, a piece then lasts about twice the lead, so the lead grows geometrically
# while each piece stays small enough to finish before the listener runs dry, even under load.
WORDS_PER_SECOND_OF_LEAD = 5


class Voice(Protocol):
    @property
    def rate(self) -> int: ...

    def synthesize(self, text: str, speed: float, grant: Grant, cancel: Cancellation) -> bytes: ...


class Listener:
    """Tracks when a listener playing at 1x will run out of audio."""

    def __init__(self) -> None:
        self.arrived = time.monotonic()
        self.runs_dry: float | None = None  # None until the first audio leaves

    @property
    def deadline(self) -> float:
        return self.arrived if self.runs_dry is None else self.runs_dry

    def lead(self) -> float:
        return 0.0 if self.runs_dry is None else max(0.0, self.runs_dry - time.monotonic())

    def received(self, seconds: float) -> None:
        now = time.monotonic()
        self.runs_dry = max(self.runs_dry or now, now) + seconds


def next_piece(pending: deque[str], lead: float) -> str:
    """Take the next piece: a short head when the listener is close to silence, else a sentence."""
    max_words = max(FIRST_PIECE_WORDS, int(lead * WORDS_PER_SECOND_OF_LEAD))
    piece, rest = text.head(pending.popleft(), max_words)
    if rest:
        pending.appendleft(rest)
    return piece


def stream(voice: Voice, input_text: str, fmt: str, speed: float, cancel: Cancellation) -> Iterator[bytes]:
    pending = deque(text.sentences(text.normalize(input_text)))
    encoder = audio.encoder(fmt, voice.rate)
    listener = Listener()
    finished = False
    pieces = voiced = 0
    try:
        while pending and not cancel.cancelled:
            with scheduler.slot(listener.deadline, cancel) as grant:
                # Sized now, not before the wait: the lead has shrunk while other listeners ran.
                piece = next_piece(pending, listener.lead())
                pieces += 1
                logger.debug("piece %d: %d characters, lead %.2f s", pieces, len(piece), listener.lead())
                pcm = voice.synthesize(piece, speed, grant, cancel)
            voiced += len(pcm)
            data = encoder.write(pcm)
            listener.received(len(pcm) / 2 / voice.rate)
            if data:
                yield data
        if not cancel.cancelled:
            if not voiced:  # nothing the voice could say (";"): a moment of silence is still valid audio
                yield encoder.write(bytes(voice.rate // 5 * 2))
            finished = True
            yield encoder.close()
    except Cancelled:
        return
    finally:
        if not finished:  # cut short: nothing may go on running for this listener
            cancel.cancel()
            logger.info("listener gone after %d pieces; synthesis stopped", pieces)
            with contextlib.suppress(Exception):
                encoder.close()
