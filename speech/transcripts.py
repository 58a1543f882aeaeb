"""Word timings kept after a synthesis ends, under the id its response named (``X-Speech-Id``).

Plain-audio clients read them, or subtitles made from them, once the audio has ended; SSE clients
get the same words live, interleaved with the audio. Kept in the app's cache (shared between
servers when it is Redis) within the audio cache's bound, ``CACHE_MAX_BYTES``: the least recently
used go first.
"""

from __future__ import annotations

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


def _key(speech_id: str) -> str:
    return f"speech:words:{speech_id}"


def keep(stream: SpeechStream) -> SpeechStream:
    """Name the stream (``X-Speech-Id``) and store its words when it ends complete; a no-op without words."""
    if stream.words is None:
        return stream
    speech_id = uuid.uuid4().hex
    headers = {**stream.headers, HEADER: speech_id}
    return replace(stream, chunks=_store_at_end(speech_id, stream.chunks, stream.words), headers=headers)


def _store_at_end(speech_id: str, chunks: Iterator[bytes], words: Timeline) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        getattr(chunks, "close", lambda: None)()
        if words.complete:
            try:
                stored = [asdict(word) for word in words.words]
                audio_cache.keep(_key(speech_id), stored, len(json.dumps(stored)))
            except Exception:  # the audio has been sent: a failing cache only loses the subtitles
                logger.exception("could not store word timings")


def load(speech_id: str) -> list[Word] | None:
    """The words of a finished synthesis, or None when the id is unknown (or still speaking)."""
    if not _ID.match(speech_id):
        return None
    stored: list[dict[str, Any]] | None = cache().get(_key(speech_id))
    return None if stored is None else [Word(**word) for word in stored]
