"""Only a stream that ended complete is kept: a cut-short one must never be replayed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from speech import audio_cache
from speech.cancellation import Cancellation
from speech.engines.base import SpeechRequest, SpeechStream


def cached_after(cut_short: bool) -> bool:
    speech = SpeechRequest(model="piper", voice="alloy", input=f"cut short: {cut_short}")
    cancel = Cancellation()

    def chunks() -> Iterator[bytes]:
        yield b"\xff\xf3" * 500
        if cut_short:  # e.g. the worker shutting down: the engine ends its stream quietly
            cancel.cancel()

    stream = SpeechStream(chunks=chunks(), content_type="audio/mpeg", engine="piper")
    key = audio_cache.entry_key(speech, "public")
    assert key is not None
    assert b"".join(audio_cache.tee(key, stream, cancel).chunks) == b"\xff\xf3" * 500
    return audio_cache.replay(speech, "public") is not None


@pytest.mark.parametrize(("cut_short", "kept"), [(False, True), (True, False)])
def test_only_complete_streams_are_cached(settings: object, cut_short: bool, kept: bool) -> None:
    assert cached_after(cut_short) is kept
