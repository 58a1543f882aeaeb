"""The one response path: every stream (synthesis, replay, SSE) is opened, tracked and rendered here.

``speech_response`` resolves the model's engine first (an unknown model is refused before anything
else), then opens the stream (a cache hit, else the engine), takes a stream slot
and keeps the usage record (``Track``), stores a miss as it streams (``audio_cache.tee``) and hands
the stream to ``render``, which makes the HTTP response for the server in use: a synchronous body
under WSGI, watched for hang-ups on the client socket; an asynchronous one under ASGI (``asgi.py``).
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from speech import asgi, audio, audio_cache, keys, requestid, timings, transcripts
from speech.cancellation import Cancellation
from speech.clients import client_of
from speech.engines.base import Engine, SpeechRequest, SpeechStream, engine_for_model
from speech.hangup import drop_stalled, limit_stalls, watcher
from speech.limits import StreamSlots
from speech.usage import Track

PCM_RATE_HEADER = "X-Speech-Sample-Rate"
# What ends OpenAI's speech SSE after speech.audio.done (recorded from api.openai.com in openai-dotnet's
# tests, GenerateSpeechTests/StreamingSpeechWorks.json); clients that stop at it stop here too.
SSE_DONE = b"data: [DONE]\n\n"


def speech_response(request: HttpRequest, speech: SpeechRequest) -> StreamingHttpResponse:
    engine = engine_for_model(speech.model)  # 400 for an unknown model: before permissions, cache and slots
    client = client_of(request)
    keys.check_engine(client, engine)
    limit_stalls(request)
    key = audio_cache.entry_key(speech, client.scope, engine)
    # SSE shares plain audio's entries: its hit carries the words it replays (a miss if they are gone), no range.
    hit = audio_cache.replay(key, speech, request.headers.get("Range", "")) if key is not None else None
    cancel = Cancellation()
    # Track: a stream slot (429/503) and the usage record. Watch for a hang-up from the start: an
    # upstream may take seconds to send its first byte.
    local, cached = engine.synthesises_locally, hit is not None
    track = Track(client, speech, requestid.current(), engine=engine.alias, local=local, cached=cached)
    with track, watcher.watch(request, cancel):
        stream = hit or _start(request, engine, speech, cancel, client.resource_owner)
    if hit is not None and (speech_id := hit.headers.get(transcripts.HEADER)):
        transcripts.grant(speech_id, client.resource_owner)  # the replay names its words: they are its client's too
    if hit is None and key is not None:
        stream = audio_cache.tee(key, stream, cancel)  # stored as it streams, kept if it ends complete
    return render(request, speech, track.stream(stream, cancel), cancel, track.release)


def render(
    request: HttpRequest,
    speech: SpeechRequest,
    stream: SpeechStream,
    cancel: Cancellation,
    slots: StreamSlots | None = None,
) -> StreamingHttpResponse:
    chunks, content_type = stream.chunks, stream.content_type
    if speech.stream_format == "sse":
        content_type = "text/event-stream"
        if not stream.sse:
            chunks = sse_events(chunks, stream.words, lambda: speech.input)
    asynchronous = isinstance(request, ASGIRequest)
    body = asgi.stream(chunks, cancel, request, slots) if asynchronous else _watched(chunks, request, cancel, slots)
    response = StreamingHttpResponse(body, content_type=content_type, status=stream.status)
    for name, value in stream.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    response["X-Speech-Engine"] = stream.engine
    if speech.response_format == "pcm":  # raw samples name no rate; the player reads it here (also under SSE)
        response[PCM_RATE_HEADER] = str(audio.OUTPUT_RATE)
    return response


def _start(
    request: HttpRequest, engine: Engine, speech: SpeechRequest, cancel: Cancellation, owner: str
) -> SpeechStream:
    start = functools.partial(engine.speak, speech, cancel)
    # Named (X-Speech-Id) so that its client (and no one else) can fetch its words once it has ended.
    return transcripts.keep(asgi.opened(start, cancel) if isinstance(request, ASGIRequest) else start(), owner)


def _watched(
    chunks: Iterator[bytes], request: HttpRequest, cancel: Cancellation, slots: StreamSlots | None
) -> Iterator[bytes]:
    with watcher.watch(request, cancel):
        yield from drop_stalled(chunks, request, cancel, slots)


def sse_events(chunks: Iterator[bytes], words: timings.Timeline | None, spoken: Callable[[], str]) -> Iterator[bytes]:
    """OpenAI's speech events for ``chunks``; ``spoken()`` is the input, asked once the audio has ended
    (live text is whole only then), for the usage in ``speech.audio.done``."""
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        # The engine adds a piece's words before yielding its audio: each word comes before its sound.
        # A cache replay's words are all there at the start: they all come before its first audio.
        for word in words.take() if words else ():
            yield _sse(word.event())
        yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
    for word in words.take() if words else ():
        yield _sse(word.event())
    input_tokens = math.ceil(len(spoken()) / 4)
    output_tokens = math.ceil(sent / 1000)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage})
    yield SSE_DONE  # as OpenAI's own stream ends


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()
