"""The audio cache: a repeated request replays stored audio instead of synthesising (or paying) again.

A miss streams to the client and into the cache at once (``tee``): each chunk is written to the
client first, then appended to 64 KiB parts stored as they fill. The entry becomes visible only
when the stream has ended complete. A hit (``replay``) streams the parts back one by one and honours
``Range``. The total size is bounded by ``CACHE_MAX_BYTES``: an index, ordered by last use, evicts
the least recently used entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from speech.conf import get_config
from speech.engines.base import SpeechRequest, SpeechStream
from speech.hangup import Cancellation
from speech.limits import cache
from speech.usage import Track, client_gone, close

logger = logging.getLogger(__name__)

PART = 64 * 1024
TIMEOUT = 7 * 86400  # parts of entries lost in a crash expire
INDEX = "speech:audio:index"
LOCK = "speech:audio:lock"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def enabled(engine: str | None) -> bool:
    setting = get_config()["CACHE_AUDIO"]
    if isinstance(setting, list | tuple):
        return engine in setting
    return bool(setting) and engine is not None


def entry_key(speech: SpeechRequest) -> str:
    engine = get_config()["MODELS"].get(speech.model)  # re-routing a model to another engine starts afresh
    fields = [
        engine,
        speech.model,
        speech.voice,
        speech.response_format,
        speech.speed,
        speech.instructions,
        speech.input,
    ]
    return "speech:audio:" + hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _part(key: str, nonce: str, index: int) -> str:
    return f"{key}:{nonce}:{index}"


def replay(request: HttpRequest, speech: SpeechRequest) -> HttpResponseBase | None:
    """A response replaying the stored audio for this request, or None on a miss."""
    if speech.stream_format != "audio" or not enabled(get_config()["MODELS"].get(speech.model)):
        return None
    key = entry_key(speech)
    try:
        meta: dict[str, Any] | None = cache().get(key)
        if meta is None or not cache().has_key(_part(key, meta["nonce"], meta["parts"] - 1)):
            return None
        _touch(key, meta)
    except Exception:  # the cache is an optimisation: when it is down, synthesise
        logger.exception("audio cache unavailable")
        return None
    size = meta["size"]
    response: HttpResponseBase
    try:
        ranged = _range(request.headers.get("Range", ""), size)
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = ranged or (0, size - 1)
    track = Track(request, speech, engine=meta["engine"], cached=True)
    chunks = track.count(_read(key, meta, first, last))
    response = StreamingHttpResponse(chunks, content_type=meta["content_type"], status=206 if ranged else 200)
    if ranged:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    response["X-Speech-Engine"] = meta["engine"]
    response["X-Speech-Cache"] = "hit"
    if meta.get("speech_id"):  # its word timings, stored when it was made
        response["X-Speech-Id"] = meta["speech_id"]
    return response


class Unsatisfiable(Exception):
    pass


def _range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of one byte range; None when there is none (or several: then the whole is sent)."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    start, end = match.groups()
    if not start:  # the last N bytes
        first, last = max(0, size - int(end)), size - 1
    else:
        first, last = int(start), min(int(end), size - 1) if end else size - 1
    if first >= size or first > last or (not start and int(end) == 0):
        raise Unsatisfiable
    return first, last


def _read(key: str, meta: dict[str, Any], first: int, last: int) -> Iterator[bytes]:
    for index in range(first // PART, last // PART + 1):
        data: bytes | None = cache().get(_part(key, meta["nonce"], index))
        if data is None:  # evicted by the cache backend under us: the client sees a short body
            logger.warning("audio cache part %s of %s is gone", index, key)
            cache().delete(key)
            return
        offset = index * PART
        yield data[max(0, first - offset) : last - offset + 1]


def tee(request: HttpRequest, speech: SpeechRequest, stream: SpeechStream, cancel: Cancellation) -> SpeechStream:
    """Pass the stream through, storing it as it goes; a no-op when this stream is not cacheable."""
    if speech.stream_format != "audio" or stream.sse or not enabled(stream.engine):
        return stream
    headers = {**stream.headers, "X-Speech-Cache": "miss"}
    return replace(stream, chunks=_store(request, entry_key(speech), stream, cancel), headers=headers)


def _store(request: HttpRequest, key: str, stream: SpeechStream, cancel: Cancellation) -> Iterator[bytes]:
    store, limit, nonce = cache(), get_config()["CACHE_MAX_ENTRY_BYTES"], uuid.uuid4().hex
    pending, parts, size, storing, complete = bytearray(), 0, 0, True, False
    try:
        for chunk in stream.chunks:
            yield chunk
            size += len(chunk)
            storing = storing and size <= limit  # too big to keep: what was stored is removed below
            if storing:
                pending += chunk
                while storing and len(pending) >= PART:
                    storing = _safely(store.set, _part(key, nonce, parts), bytes(pending[:PART]), TIMEOUT)
                    del pending[:PART]
                    parts += 1
        # Engines end quietly when cancelled (listener gone, worker shutting down): that audio is partial.
        complete = storing and size > 0 and not cancel.cancelled and not client_gone(request)
    finally:
        close(stream.chunks)
        if complete and (not pending or _safely(store.set, _part(key, nonce, parts), bytes(pending), TIMEOUT)):
            meta = {"nonce": nonce, "parts": parts + bool(pending), "size": size, "content_type": stream.content_type}
            _safely(_publish, key, {**meta, "engine": stream.engine, "speech_id": stream.headers.get("X-Speech-Id")})
        else:
            _safely(store.delete_many, [_part(key, nonce, index) for index in range(parts + 1)])


def _safely(action: Callable[..., object], *args: object) -> bool:
    """Run a cache write; a failing cache must never break the stream passing through."""
    try:
        action(*args)
    except Exception:
        logger.exception("audio cache write failed")
        return False
    return True


def _publish(key: str, meta: dict[str, Any]) -> None:
    store = cache()
    old: dict[str, Any] | None = store.get(key)
    store.set(key, meta, TIMEOUT)
    if old and old["nonce"] != meta["nonce"]:
        _drop(key, old, keep_meta=True)
    with _locked() as index:
        if index is None:
            return
        index.pop(key, None)
        index[key] = meta["size"]
        total = sum(index.values())
        while total > get_config()["CACHE_MAX_BYTES"] and index:
            victim = next(iter(index))
            total -= index.pop(victim)
            victim_meta = store.get(victim)
            if victim_meta:
                _drop(victim, victim_meta)


def _touch(key: str, meta: dict[str, Any]) -> None:
    with _locked() as index:
        if index is not None and key in index:
            index[key] = index.pop(key)


def _drop(key: str, meta: dict[str, Any], keep_meta: bool = False) -> None:
    keys = [_part(key, meta["nonce"], index) for index in range(meta["parts"])]
    cache().delete_many(keys if keep_meta else [key, *keys])


class _locked:
    """The LRU index, read and written back under a short lock; None when the lock stays busy."""

    index: dict[str, int] | None = None

    def __enter__(self) -> dict[str, int] | None:
        deadline = time.monotonic() + 1.0
        while not cache().add(LOCK, 1, 5):
            if time.monotonic() > deadline:
                self.index = None
                return None
            time.sleep(0.01)
        self.index = cache().get(INDEX) or {}
        return self.index

    def __exit__(self, *exc: object) -> None:
        if self.index is not None:
            cache().set(INDEX, self.index, TIMEOUT)
            cache().delete(LOCK)
