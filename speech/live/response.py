"""``SpeechResponse``: a host's own view answers with speech of text that is still arriving.

::

    def answer(request):
        return SpeechResponse(llm_deltas(request), request=request, voice="nova")

Like the REST endpoint, the response takes a stream slot and is counted against the rate limit of
the request's client (the signed-in user, else the address, with ``SPEECH["PAGE_LIMITS"]``, as the
site's own page is), writes one usage record (the whole text as its input), and, for a voice with
word timings, names itself in ``X-Speech-Id`` for ``/v1/audio/speech/{id}/words`` and ``/subtitles``.
A request the limits refuse, or an unknown model or voice, gets an OpenAI-shaped error with its
status (429, 503, 400) instead of audio, and the source is closed unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from speech import asgi, audio, keys, limits, requestid, transcripts
from speech.cancellation import Cancellation, close
from speech.clients import Client, client_address
from speech.engines.base import Engine, SpeechRequest, SpeechStream, engine_for_model
from speech.errors import ClientClosed, InvalidRequest, SpeechError
from speech.hangup import drop_stalled, limit_stalls, watcher
from speech.live import synthesis
from speech.live.source import Source, Text
from speech.page_tokens import page_client
from speech.pipeline import Listener
from speech.responses import PCM_RATE_HEADER, sse_events
from speech.timings import Timeline
from speech.usage import Track

logger = logging.getLogger("speech.live")

# Where an async view's response looks up its client and takes its slot (Django's ORM is sync-only).
_admitting = ThreadPoolExecutor(max_workers=8, thread_name_prefix="speech-live-admit")
MIN_SPEED, MAX_SPEED = 0.25, 4.0
STREAM_FORMATS = ("audio", "sse")


class SpeechResponse(StreamingHttpResponse):
    """Speech of ``text_or_chunks`` (a ``str``, or an iterable or async iterable of ``str`` fragments),
    streamed from its first complete sentence while later text still arrives.

    ``request`` is the view's request: it names the client (limits, usage) and, under gunicorn,
    is how a hang-up is noticed while nothing is being sent. ``wait`` is how long (seconds) a
    listener who has run out of audio waits for an unfinished sentence to end before its words so
    far are spoken.
    """

    def __init__(
        self,
        text_or_chunks: Text,
        *,
        request: HttpRequest,
        voice: str = "alloy",
        model: str = "tts-1",
        response_format: str = "mp3",
        speed: float = 1.0,
        instructions: str | None = None,
        language: str | None = None,
        stream_format: str = "audio",
        wait: float = synthesis.WAIT,
    ) -> None:
        self.speech_id: str | None = None  # X-Speech-Id, when the voice times its words
        self._source = source = Source(text_or_chunks)
        self._cancel = cancel = Cancellation()
        self._started = False
        self._track: Track | None = None
        request_id = requestid.assign(request)
        try:
            speech = _speech_request(model, voice, response_format, speed, instructions, language, stream_format)
            opening = functools.partial(_admit, request, request_id, speech, source, cancel, wait)
            if _in_event_loop():  # an async view: the session, the user and usage records are the database's
                client, track, stream, reader = _admitting.submit(contextvars.copy_context().run, opening).result()
            else:
                client, track, stream, reader = opening()
        except SpeechError as error:
            source.discard()
            super().__init__(iter([json.dumps(error.body()).encode()]), content_type="application/json")
            self.status_code = error.status
            for name, value in error.headers.items():
                self[name] = value
            self[requestid.HEADER] = request_id
            return
        limit_stalls(request)
        self._track = track
        stream = replace(stream, chunks=_noting_text(stream.chunks, track, stream.words, reader))
        stream = track.stream(transcripts.keep(stream, client.resource_owner), cancel)
        chunks, content_type = stream.chunks, stream.content_type
        if speech.stream_format == "sse":
            chunks, content_type = sse_events(chunks, stream.words, lambda: reader.text), "text/event-stream"
        if isinstance(request, ASGIRequest):
            super().__init__(self._async_body(chunks, request), content_type=content_type)
        else:
            super().__init__(self._body(chunks, request), content_type=content_type)
        for name, value in stream.headers.items():
            self[name] = value
        self.speech_id = stream.headers.get(transcripts.HEADER)
        if self.speech_id and not keys.api_keys():  # an open API: words are the address's, as for REST
            transcripts.grant(self.speech_id, client_address(request))
        self["Cache-Control"] = "no-store"
        self["X-Accel-Buffering"] = "no"
        self["X-Speech-Engine"] = stream.engine
        self[requestid.HEADER] = request_id
        if response_format == "pcm":
            self[PCM_RATE_HEADER] = str(audio.OUTPUT_RATE)

    def _body(self, chunks: Iterator[bytes], request: HttpRequest) -> Iterator[bytes]:
        """Under WSGI: the work runs in the server's thread; gunicorn's socket is watched for a hang-up,
        and a listener who stops reading is dropped (``STALL_TIMEOUT``), lending its slot meanwhile."""
        self._started = True
        slots = self._track.release if self._track is not None else None
        with watcher.watch(request, self._cancel):
            yield from drop_stalled(chunks, request, self._cancel, slots)

    async def _async_body(self, chunks: Iterator[bytes], request: HttpRequest) -> AsyncIterator[bytes]:
        """Under ASGI: the work runs in a thread (``asgi.stream``); an async source is read on this loop.
        A listener who stops reading is dropped there too."""
        self._started = True
        reading = self._source.start_on_loop(self._cancel)
        try:
            slots = self._track.release if self._track is not None else None
            async for chunk in asgi.stream(chunks, self._cancel, request, slots):
                yield chunk
        finally:
            if reading is not None and not reading.done():
                reading.cancel()
                with contextlib.suppress(BaseException):  # it logs its own errors; ending it is all that matters
                    await reading

    def close(self) -> None:
        if not self._started and self._track is not None:
            # Closed without being read (a HEAD, a middleware that replaced it): give the slot back, close the source.
            self._started = True
            self._cancel.cancel()
            self._track.finish(ClientClosed.status)
            if not self._source.started:
                self._source.discard()
        super().close()


def _admit(
    request: HttpRequest, request_id: str, speech: SpeechRequest, source: Source, cancel: Cancellation, wait: float
) -> tuple[Client, Track, SpeechStream, synthesis.Reader]:
    """Who is listening, within their limits (a stream slot taken), and the stream, not started yet."""
    engine = engine_for_model(speech.model)  # 400 for an unknown model: before limits and slots
    client = live_client(request)
    limits.check_rate(client)
    with Track(client, speech, request_id, engine=engine.alias, local=engine.synthesises_locally) as track:
        stream, reader = _open(engine, speech, source, cancel, wait)
    return client, track, stream, reader


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def live_client(request: HttpRequest) -> Client:
    """A host view's listener, counted as the site's page counts its visitors (``PAGE_LIMITS``). Its
    words are the page session's (read with the page's token), or, on an open API, the address's too.
    The host chose the model: an upstream engine is not refused to anonymous visitors here."""
    return replace(page_client(request, client_address(request)), upstream=True)


def _speech_request(
    model: str,
    voice: str,
    response_format: str,
    speed: float,
    instructions: str | None,
    language: str | None,
    stream_format: str,
) -> SpeechRequest:
    if response_format not in audio.FORMATS:
        raise InvalidRequest(
            f"response_format must be one of {', '.join(audio.FORMATS)}, not {response_format!r}.",
            param="response_format",
        )
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, not {speed}.", param="speed")
    if stream_format not in STREAM_FORMATS:
        raise InvalidRequest(f"stream_format must be 'audio' or 'sse', not {stream_format!r}.", param="stream_format")
    return SpeechRequest(
        model=model,
        input="",  # the text is not known yet; the usage record gets all of it at the end
        voice=voice,
        response_format=response_format,
        speed=speed,
        instructions=instructions,
        stream_format=stream_format,
        language=language,
    )


def _open(
    engine: Engine, speech: SpeechRequest, source: Source, cancel: Cancellation, wait: float
) -> tuple[SpeechStream, synthesis.Reader]:
    reader = synthesis.Reader(source, cancel, wait, Listener())
    content_type = audio.CONTENT_TYPES[speech.response_format]
    voice = _local_voice(engine, speech)
    if voice is None:
        chunks = synthesis.proxied(engine, speech, reader, cancel)
        return SpeechStream(chunks=chunks, content_type=content_type, engine=engine.alias), reader
    words = Timeline()
    chunks = synthesis.local(voice, reader, speech.response_format, speech.speed, cancel, words)
    return SpeechStream(chunks=chunks, content_type=content_type, engine=engine.alias, words=words), reader


def _local_voice(engine: Engine, speech: SpeechRequest) -> Any:
    """The piper voice that speaks for ``speech.voice`` (400 when there is none), or None for other engines."""
    try:
        from speech.engines.piper import PiperEngine
    except ImportError:  # pragma: no cover - a proxy-only site without the piper extra
        return None
    if isinstance(engine, PiperEngine):
        return engine.resolve(speech.voice, speech.language)
    return None


def _noting_text(
    chunks: Iterator[bytes], track: Track, words: Timeline | None, reader: synthesis.Reader
) -> Iterator[bytes]:
    """The chunks; when they end, the usage record's input (and the words' text) is all the text that arrived."""
    try:
        yield from chunks
    finally:
        close(chunks)
        track.speech = replace(track.speech, input=reader.text)
        if words is not None:
            words.text = reader.text
