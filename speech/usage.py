"""One usage record per synthesis, written when its stream ends, and the stream slot it holds meanwhile."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType

from speech import limits, scheduler
from speech.cancellation import Cancellation, close
from speech.clients import Client
from speech.conf import get_config
from speech.engines.base import SpeechRequest, SpeechStream
from speech.errors import ClientClosed, SpeechError

logger = logging.getLogger(__name__)


@dataclass
class Track:
    """``with Track(client, speech, request_id, engine=alias, local=...) as track: stream = engine.speak(...)``
    then ``track.stream(stream, cancel)``.

    Entering takes a stream slot (429/503 when none is free); the slot is given back and the record
    written when the stream ends, however it ends, or at once when starting the stream fails.
    """

    client: Client  # who authenticate() said this is
    speech: SpeechRequest
    request_id: str  # the request's x-request-id, which the record names
    started: float = field(default_factory=time.monotonic)
    engine: str = ""  # the alias of the model's engine, until the stream names the one that speaks
    local: bool = False  # the engine synthesises on this machine: it takes a global slot
    sent: int = 0
    ttfb: float | None = None
    cached: bool = False
    release: limits.StreamSlots | None = None

    def __enter__(self) -> Track:
        try:
            # A replay holds a thread as long as a synthesis does: it takes a global slot too.
            self.release = limits.acquire_stream(self.client, synthesis=self.cached or self.local)
        except SpeechError as error:
            self.finish(error.status)
            raise
        # Its synthesis shares the cores as its address's: many streams from one address wait for each other.
        scheduler.serve_as(self.client.address or self.client.id)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is not None:
            self.finish(error.status if isinstance(error, SpeechError) else 500)

    def stream(self, stream: SpeechStream, cancel: Cancellation) -> SpeechStream:
        self.engine = stream.engine
        return replace(stream, chunks=self._count(stream.chunks, cancel))

    def _count(self, chunks: Iterator[bytes], cancel: Cancellation) -> Iterator[bytes]:
        status = ClientClosed.status
        try:
            for chunk in chunks:
                if self.ttfb is None:
                    self.ttfb = time.monotonic() - self.started
                self.sent += len(chunk)
                yield chunk
            # Engines end quietly when cancelled: the listener is gone (or the worker stopping).
            status = ClientClosed.status if cancel.cancelled else 200
        except Exception:
            status = 500
            raise
        finally:
            close(chunks)
            self.finish(status)

    def finish(self, status: int) -> None:
        if self.release is not None:
            self.release()
            self.release = None
        record(self, status)


def record(track: Track, status: int) -> None:
    if not get_config()["RECORD_USAGE"]:
        return
    from speech.models import Usage

    speech = track.speech
    try:
        Usage.objects.create(
            client=track.client.id[:80],
            model=speech.model,
            voice=speech.voice,
            engine=track.engine,
            response_format=speech.response_format,
            characters=len(speech.input),
            bytes=track.sent,
            status=status,
            cached=track.cached,
            ttfb_ms=None if track.ttfb is None else track.ttfb * 1000,
            duration_ms=(time.monotonic() - track.started) * 1000,
            request_id=track.request_id,
        )
    except Exception:  # a usage record must never break a stream
        logger.exception("could not write a usage record")
