"""The audio cache: a repeated request replays stored audio instead of synthesising (or paying) again.

A miss streams to the client and into the cache at once (``tee``): each chunk is passed on
first, then appended to 64 KiB parts stored as they fill. The entry becomes visible only when the
stream has ended complete. A hit (``replay``) is a ``SpeechStream`` of the parts read back one by
one, honouring ``Range``: the API renders it like any other stream. The total size is bounded by
``CACHE_MAX_BYTES``: an index, ordered by last use, evicts the least recently used entries. Word
timings (``transcripts``) are kept within the same bound (``keep``).

SSE requests share the entries of plain-audio ones (the key has no ``stream_format``): a miss stores
the raw audio before it is wrapped in events, and a hit is the stored audio with the words of the
synthesis that made it (its ``X-Speech-Id``), which ``responses`` sends as ``speech.word`` events
ahead of the audio. An SSE hit whose words have been evicted is a miss: it is synthesised again rather
than replayed without them. SSE has no byte ranges: its ``Range`` header is ignored.
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

from speech.cancellation import Cancellation, close
from speech.conf import get_config
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import RangeNotSatisfiable
from speech.limits import shared_cache
from speech.timings import Timeline, Word

logger = logging.getLogger(__name__)

PART = 64 * 1024
TIMEOUT = 7 * 86400  # parts of entries lost in a crash expire
INDEX = "speech:audio:index"
LOCK = "speech:audio:lock"
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")  # longer numbers: not a range we can serve, ignored


def enabled(engine: str | None) -> bool:
    setting = get_config()["CACHE_AUDIO"]
    if isinstance(setting, list | tuple):
        return engine in setting
    return bool(setting) and engine is not None


def entry_key(speech: SpeechRequest, scope: str, engine: Engine) -> str | None:
    """Where this request's audio, spoken by ``engine`` (its model's), is stored in this tenant's ``scope``
    (one tenant never learns what another had spoken); None when caching is off for the engine. SSE and
    plain audio share it: the bytes are the same."""
    if not enabled(engine.alias):
        return None
    fields = [
        "" if get_config()["CACHE_SHARED"] else scope,
        engine.alias,  # re-routing a model to another engine starts afresh
        speech.model,
        speech.voice,
        # What the voice speaks as: a site that maps "alloy" to another voice, or installs one that the
        # OpenAI names now spread over, must not replay the old voice.
        engine.speaks_as(speech.voice, speech.language),
        speech.response_format,
        speech.speed,
        speech.instructions,
        speech.input,
        speech.language,
    ]
    return "speech:audio:" + hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _part(key: str, nonce: str, index: int) -> str:
    return f"{key}:{nonce}:{index}"


def words_key(speech_id: str) -> str:
    """Where ``transcripts`` keeps the words of a synthesis (here too: an SSE replay sends them)."""
    return f"speech:words:{speech_id}"


def replay(key: str, speech: SpeechRequest, range_header: str = "") -> SpeechStream | None:
    """The audio stored under ``key`` (``entry_key``) for this request (or the part ``range_header`` asks
    for), or None on a miss.

    For SSE, the stream carries the words of the synthesis it replays (``words``), and ``range_header``
    is ignored (events have no byte ranges): a hit needs those words, else it is a miss.
    Raises ``RangeNotSatisfiable`` for a range outside the stored audio.
    """
    sse, words = speech.stream_format == "sse", None
    try:
        meta: dict[str, Any] | None = shared_cache().get(key)
        if meta is None or not shared_cache().has_key(_part(key, meta["nonce"], meta["parts"] - 1)):
            return None
        speech_id = meta.get("speech_id")  # the synthesis it replays, if its engine timed words
        if sse and speech_id:
            words = _words(speech_id)
            if words is None:  # evicted on their own: synthesise again rather than replay without them
                logger.info("audio cache entry %s has lost its words: synthesising again", key)
                return None
        _touch(key, *([words_key(speech_id)] if speech_id else []))  # the words stay as long as the audio
    except Exception:  # the cache is an optimisation: when it is down, synthesise
        logger.exception("audio cache unavailable")
        return None
    size = meta["size"]
    headers = {"X-Speech-Cache": "hit"}
    if speech_id:  # its word timings, stored when it was made
        headers["X-Speech-Id"] = speech_id
    if sse:  # the whole audio, as events: no length or ranges of the body
        return SpeechStream(
            chunks=_read(key, meta, 0, size - 1),
            content_type=meta["content_type"],
            engine=meta["engine"],
            headers=headers,
            words=words,
        )
    ranged = _range(range_header, size)
    first, last = ranged or (0, size - 1)
    headers.update({"Content-Length": str(last - first + 1), "Accept-Ranges": "bytes"})
    if ranged:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return SpeechStream(
        chunks=_read(key, meta, first, last),
        content_type=meta["content_type"],
        engine=meta["engine"],
        headers=headers,
        status=206 if ranged else 200,
    )


def _words(speech_id: str) -> Timeline | None:
    """The stored words of ``speech_id`` as a finished timeline, or None when they are gone."""
    stored: dict[str, Any] | None = shared_cache().get(words_key(speech_id))
    if stored is None:
        return None
    timeline = Timeline(stored["text"])
    timeline.add([Word(**word) for word in stored["words"]])
    timeline.complete = True
    return timeline


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
        raise RangeNotSatisfiable(
            f"The range '{header}' is outside the {size} bytes of this audio.",
            param="Range",
            code="range_not_satisfiable",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return first, last


def _read(key: str, meta: dict[str, Any], first: int, last: int) -> Iterator[bytes]:
    for index in range(first // PART, last // PART + 1):
        data: bytes | None = shared_cache().get(_part(key, meta["nonce"], index))
        if data is None:  # evicted by the cache backend under us: the client sees a short body
            logger.warning("audio cache part %s of %s is gone", index, key)
            _drop(key, meta)
            return
        offset = index * PART
        yield data[max(0, first - offset) : last - offset + 1]


def tee(key: str, stream: SpeechStream, cancel: Cancellation) -> SpeechStream:
    """Pass the stream through, storing it under ``key`` as it goes (kept only if it ends complete)."""
    if stream.sse or not stream.cacheable:  # an upstream's own events; a body whose cut looks complete
        return stream
    headers = {**stream.headers, "X-Speech-Cache": "miss"}
    return replace(stream, chunks=_store(key, stream, cancel), headers=headers)


def _store(key: str, stream: SpeechStream, cancel: Cancellation) -> Iterator[bytes]:
    store, limit, nonce = shared_cache(), get_config()["CACHE_MAX_ENTRY_BYTES"], uuid.uuid4().hex
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
        complete = storing and size > 0 and not cancel.cancelled
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
    """Make a finished stream's entry visible, replacing (and deleting) one published meanwhile."""
    with _locked() as index:
        if index is None:  # an entry the index does not know would never be evicted: not kept
            _drop(key, meta, keep_meta=True)
            return
        # Under the lock: two streams of one text finishing together must not both see no entry
        # and leave the parts of the one overwritten for no one to delete.
        old = shared_cache().get(key)
        shared_cache().set(key, meta, TIMEOUT)
        if _is_audio(old) and old["nonce"] != meta["nonce"]:
            _drop(key, old, keep_meta=True)
        _admit(index, key, meta["size"])


def keep(key: str, value: object, size: int) -> None:
    """Store ``value`` (about ``size`` bytes) within the cache's bound, evicted with the audio when least used."""
    with _locked() as index:
        if index is not None:
            shared_cache().set(key, value, TIMEOUT)
            _admit(index, key, size)


def _admit(index: dict[str, int], key: str, size: int) -> None:
    """Put ``key`` at the young end of the LRU index and evict the oldest entries beyond ``CACHE_MAX_BYTES``."""
    index.pop(key, None)
    index[key] = size
    total = sum(index.values())
    while total > get_config()["CACHE_MAX_BYTES"] and index:
        victim = next(iter(index))
        total -= index.pop(victim)
        _drop(victim, shared_cache().get(victim))


def _touch(*keys: str) -> None:
    """Move ``keys`` to the young end of the LRU index (those it holds), in one round under the lock."""
    with _locked() as index:
        for key in keys:
            if index is not None and key in index:
                index[key] = index.pop(key)


def _drop(key: str, meta: Any, keep_meta: bool = False) -> None:
    """Delete an entry: audio's meta and parts (``meta`` is its meta), or any other value kept here."""
    parts = [_part(key, meta["nonce"], index) for index in range(meta["parts"])] if _is_audio(meta) else []
    shared_cache().delete_many(parts if keep_meta else [key, *parts])


def _is_audio(meta: Any) -> bool:
    return isinstance(meta, dict) and "nonce" in meta


class _locked:
    """The LRU index, read and written back under a short lock; None when the lock stays busy."""

    index: dict[str, int] | None = None

    def __enter__(self) -> dict[str, int] | None:
        deadline = time.monotonic() + 1.0
        while not shared_cache().add(LOCK, 1, 5):
            if time.monotonic() > deadline:
                self.index = None
                return None
            time.sleep(0.01)
        self.index = shared_cache().get(INDEX) or {}
        return self.index

    def __exit__(self, *exc: object) -> None:
        if self.index is not None:
            shared_cache().set(INDEX, self.index, TIMEOUT)
            shared_cache().delete(LOCK)
