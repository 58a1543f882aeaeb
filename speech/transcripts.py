"""Word timings kept after a synthesis ends, under the id its response named (``X-Speech-Id``).

Plain-audio clients read them, or subtitles made from them, once the audio has ended; SSE clients
get the same words live, interleaved with the audio. Kept in the app's cache (shared between
servers when it is Redis) within the audio cache's bound, ``CACHE_MAX_BYTES``: the least recently
used go first.

Only the client that made a synthesis (or replayed it from the cache) may read its words: each one
holds a grant, keyed by its owner (``Client.resource_owner``) and the id; anyone else gets 404.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

from speech import audio_cache
from speech.engines.base import SpeechStream
from speech.limits import shared_cache as cache
from speech.timings import Timeline, Word

logger = logging.getLogger(__name__)

HEADER = "X-Speech-Id"
_ID = re.compile(r"^[0-9a-f]{32}$")


GRANT_TIMEOUT = audio_cache.TIMEOUT


def _key(speech_id: str) -> str:
    return audio_cache.words_key(speech_id)  # an SSE replay of the cache reads them there


def _grant_key(speech_id: str, owner: str) -> str:
    return f"speech:words:{speech_id}:owner:{hashlib.sha256(owner.encode()).hexdigest()[:32]}"


def keep(stream: SpeechStream, owner: str) -> SpeechStream:
    """Name the stream (``X-Speech-Id``) and store its words, readable by ``owner``, when it ends complete;
    a no-op without words."""
    if stream.words is None:
        return stream
    speech_id = uuid.uuid4().hex
    headers = {**stream.headers, HEADER: speech_id}
    return replace(stream, chunks=_store_at_end(speech_id, owner, stream.chunks, stream.words), headers=headers)


def _store_at_end(speech_id: str, owner: str, chunks: Iterator[bytes], words: Timeline) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        getattr(chunks, "close", lambda: None)()
        if words.complete:
            try:
                stored = {"text": words.text, "words": [asdict(word) for word in words.words]}
                audio_cache.keep(_key(speech_id), stored, len(json.dumps(stored)))
                grant(speech_id, owner)
            except Exception:  # the audio has been sent: a failing cache only loses the subtitles
                logger.exception("could not store word timings")


def grant(speech_id: str, owner: str) -> None:
    """Let ``owner`` read the words of ``speech_id`` (its maker, or a client whose request replays it)."""
    if _ID.match(speech_id):
        cache().set(_grant_key(speech_id, owner), 1, GRANT_TIMEOUT)


def load(speech_id: str, owner: str) -> list[Word] | None:
    """The words of a finished synthesis, or None when the id is unknown, still speaking, or not ``owner``'s."""
    found = load_transcript(speech_id, owner)
    return None if found is None else found[0]


def load_transcript(speech_id: str, owner: str) -> tuple[list[Word], str | None] | None:
    """The words and the input they point into (None when not kept), as :func:`load` finds them."""
    if not _ID.match(speech_id) or not cache().get(_grant_key(speech_id, owner)):
        return None
    stored: dict[str, Any] | None = cache().get(_key(speech_id))
    return None if stored is None else ([Word(**word) for word in stored["words"]], stored["text"])
