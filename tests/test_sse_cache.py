"""The audio cache under SSE: an SSE request is stored (its raw audio) and replayed (its words, then its
audio, as events), and shares its entry with plain-audio requests of the same speech.

In-process with a counting engine (how often it synthesised, and words evicted on their own), then
against the real server with piper: a hit's events decode to the miss's audio and words."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
from django.http import StreamingHttpResponse
from django.test import Client

from bench.support.fake_upstream import FakeUpstream, audio_body
from bench.support.server import Server, start_server, stop_server
from speech import audio_cache
from speech.cancellation import Cancellation
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.limits import shared_cache
from speech.timings import Timeline, Word

RATE = 24_000 * 2  # pcm: s16le 24 kHz mono, bytes per second


class CountingEngine(Engine):
    """Two pieces of audio, each word added before the piece that holds it; counts its syntheses."""

    calls = 0

    def voices(self) -> list[str]:
        return ["alloy"]

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        type(self).calls += 1
        timeline = Timeline(request.input)
        texts = request.input.split()

        def chunks() -> Iterator[bytes]:
            for index, text in enumerate(texts):
                start = request.input.index(text)
                timeline.add([Word(text, index * 0.5, index * 0.5 + 0.4, start, start + len(text))])
                yield bytes([index + 1]) * (RATE // 2)
            timeline.complete = True

        return SpeechStream(chunks=chunks(), content_type="audio/pcm", engine=self.alias, words=timeline)


@pytest.fixture
def counting(settings: Any) -> type[CountingEngine]:
    settings.SPEECH = {
        "ENGINES": {"counting": {"BACKEND": f"{__name__}.CountingEngine"}},
        "MODELS": {"counting": "counting"},
        "CACHE_AUDIO": True,
        "API_KEYS": ["sk-alpha", "sk-beta"],
        "RECORD_USAGE": False,
    }
    CountingEngine.calls = 0
    return CountingEngine


def post(client: Client, text: str, sse: bool = True, key: str = "sk-alpha", **headers: str) -> StreamingHttpResponse:
    body = {"model": "counting", "voice": "alloy", "input": text, "response_format": "pcm"}
    if sse:
        body["stream_format"] = "sse"
    response = client.post(
        "/v1/audio/speech", body, content_type="application/json", headers={"Authorization": f"Bearer {key}", **headers}
    )
    assert response.status_code in (200, 206), response.content
    assert isinstance(response, StreamingHttpResponse)
    return response


def read(response: StreamingHttpResponse) -> bytes:
    """The whole body (ending the stream: its slot is given back)."""
    return b"".join(cast(Iterator[bytes], response.streaming_content))


def decoded(body: bytes) -> tuple[bytes, list[dict[str, Any]], list[str]]:
    """The audio, the word events and the kinds of every event (``[DONE]`` included) of an SSE body."""
    audio, words, kinds = b"", [], []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        if block == "data: [DONE]":
            kinds.append("[DONE]")
            continue
        event = json.loads(block[6:])
        kinds.append(event["type"])
        if event["type"] == "speech.audio.delta":
            audio += base64.b64decode(event["audio"])
        elif event["type"] == "speech.word":
            words.append(event)
    return audio, words, kinds


def unique(text: str) -> str:
    return f"{text} number{uuid.uuid4().hex[:8]}"


def test_sse_miss_then_hit_replays_the_same_audio_and_words(client: Client, counting: type[CountingEngine]) -> None:
    text = unique("Cached as events")
    miss = post(client, text)
    miss_body = read(miss)
    hit = post(client, text)
    hit_body = read(hit)

    assert counting.calls == 1
    assert (miss["X-Speech-Cache"], hit["X-Speech-Cache"]) == ("miss", "hit")
    assert hit["X-Speech-Id"] == miss["X-Speech-Id"]
    assert hit["Content-Type"] == "text/event-stream"
    assert not hit.has_header("Content-Length")  # the audio's length is not the body's
    assert not hit.has_header("Accept-Ranges")
    audio, words, kinds = decoded(hit_body)
    assert (audio, words) == decoded(miss_body)[:2]
    assert [word["text"] for word in words] == text.split()
    assert kinds.index("speech.audio.delta") > max(i for i, kind in enumerate(kinds) if kind == "speech.word")
    assert kinds[-2:] == ["speech.audio.done", "[DONE]"]
    # The usage of the replay is the synthesis's.
    assert hit_body.split(b"\n\n")[-3] == miss_body.split(b"\n\n")[-3]


def test_audio_and_sse_requests_share_one_entry(client: Client, counting: type[CountingEngine]) -> None:
    text = unique("First as events then as audio")
    events = post(client, text)
    audio, words, _ = decoded(read(events))
    plain = post(client, text, sse=False)
    assert plain["X-Speech-Cache"] == "hit"
    assert read(plain) == audio
    assert plain["X-Speech-Id"] == events["X-Speech-Id"]

    other = unique("First as audio then as events")
    plain = post(client, other, sse=False)
    audio = read(plain)
    events = post(client, other)
    assert events["X-Speech-Cache"] == "hit"
    assert events["X-Speech-Id"] == plain["X-Speech-Id"]
    replayed, words, _ = decoded(read(events))
    assert replayed == audio
    stored = client.get(
        f"/v1/audio/speech/{plain['X-Speech-Id']}/words", headers={"Authorization": "Bearer sk-alpha"}
    ).json()["data"]
    assert [{k: v for k, v in word.items() if k != "type"} for word in words] == stored
    assert counting.calls == 2


def test_tenants_do_not_share_sse_entries(client: Client, counting: type[CountingEngine]) -> None:
    text = unique("Each tenant its own")
    alpha = post(client, text)
    read(alpha)
    beta = post(client, text, key="sk-beta")
    read(beta)
    assert (alpha["X-Speech-Cache"], beta["X-Speech-Cache"]) == ("miss", "miss")
    assert beta["X-Speech-Id"] != alpha["X-Speech-Id"]
    assert post(client, text, key="sk-beta")["X-Speech-Cache"] == "hit"
    assert counting.calls == 2


def test_an_sse_hit_whose_words_were_evicted_is_synthesised_again(
    client: Client, counting: type[CountingEngine]
) -> None:
    text = unique("Words gone")
    first = post(client, text)
    read(first)
    shared_cache().delete(audio_cache.words_key(first["X-Speech-Id"]))  # evicted on their own

    plain = post(client, text, sse=False)  # plain audio needs no words: still a hit
    assert plain["X-Speech-Cache"] == "hit"
    read(plain)
    again = post(client, text)
    assert again["X-Speech-Cache"] == "miss"
    assert again["X-Speech-Id"] != first["X-Speech-Id"]
    _, words, _ = decoded(read(again))
    assert len(words) == len(text.split())
    assert counting.calls == 2
    # Its synthesis replaced the entry: hits again, with the new words.
    hit = post(client, text)
    assert (hit["X-Speech-Cache"], hit["X-Speech-Id"]) == ("hit", again["X-Speech-Id"])
    assert decoded(read(hit))[1] == words
    assert counting.calls == 2


@pytest.mark.parametrize("header", ["bytes=0-9", "bytes=99999999-", "bytes=-0"])
def test_an_sse_hit_ignores_range(client: Client, counting: type[CountingEngine], header: str) -> None:
    """SSE has no byte ranges: the whole audio is sent, even for a range outside it (no 416)."""
    text = unique("Ranged events")
    audio = decoded(read(post(client, text)))[0]
    hit = post(client, text, Range=header)
    assert (hit.status_code, hit["X-Speech-Cache"]) == (200, "hit")
    assert not hit.has_header("Content-Range")
    assert decoded(read(hit))[0] == audio


def test_sse_replays_count_against_the_limits(client: Client, counting: type[CountingEngine], settings: Any) -> None:
    text = unique("Limited replays")
    read(post(client, text))
    settings.SPEECH = {**settings.SPEECH, "MAX_STREAMS_PER_CLIENT": 1}
    held = post(client, text)  # a replay not yet read holds its client's one stream slot
    assert held["X-Speech-Cache"] == "hit"
    body = {"model": "counting", "voice": "alloy", "input": text, "response_format": "pcm", "stream_format": "sse"}
    refused = client.post(
        "/v1/audio/speech", body, content_type="application/json", headers={"Authorization": "Bearer sk-alpha"}
    )
    assert refused.status_code == 429
    read(held)
    assert post(client, text)["X-Speech-Cache"] == "hit"  # the slot is back

    settings.SPEECH = {**settings.SPEECH, "RATE_LIMIT": "1/hour", "API_KEYS": ["sk-gamma"]}
    assert post(client, text, key="sk-gamma")["X-Speech-Cache"] == "miss"
    refused = client.post(
        "/v1/audio/speech", body, content_type="application/json", headers={"Authorization": "Bearer sk-gamma"}
    )
    assert refused.status_code == 429


# --- Against the real server, with piper --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SPEECH_CACHE_AUDIO": "1", "SPEECH_API_KEYS": "sk-alpha,sk-beta"}
    srv = start_server(tmp_path_factory.mktemp("sse-cache"), env)
    yield srv
    stop_server(srv)


def speak(server: Server, text: str, sse: bool = True, key: str = "sk-alpha") -> requests.Response:
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "mp3"}
    if sse:
        body["stream_format"] = "sse"
    headers = {"Authorization": f"Bearer {key}"}
    response = requests.post(f"{server.url}/v1/audio/speech", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response


TEXT = "Dr. Smith paid $5 for it. Then, after a pause, the words go on."


def test_piper_sse_twice_replays_the_same_audio_and_words(server: Server) -> None:
    text = f"{TEXT} Number {uuid.uuid4().int % 100_000}."
    miss, hit = speak(server, text), speak(server, text)
    assert (miss.headers["X-Speech-Cache"], hit.headers["X-Speech-Cache"]) == ("miss", "hit")
    assert hit.headers["X-Speech-Id"] == miss.headers["X-Speech-Id"]
    audio, words, kinds = decoded(hit.content)
    assert audio
    assert words
    assert (audio, words) == decoded(miss.content)[:2]  # the same times and offsets
    assert all(text[w["char_start"] : w["char_end"]] == w["text"] for w in words)
    assert kinds[-2:] == ["speech.audio.done", "[DONE]"]

    plain = speak(server, text, sse=False)  # the same entry serves plain audio
    assert plain.headers["X-Speech-Cache"] == "hit"
    assert plain.content == audio


def test_piper_audio_then_sse_hits_and_tenants_stay_apart(server: Server) -> None:
    text = f"{TEXT} Number {uuid.uuid4().int % 100_000}."
    plain = speak(server, text, sse=False)
    events = speak(server, text)
    assert (plain.headers["X-Speech-Cache"], events.headers["X-Speech-Cache"]) == ("miss", "hit")
    audio, words, _ = decoded(events.content)
    assert audio == plain.content
    stored = requests.get(
        f"{server.url}/v1/audio/speech/{plain.headers['X-Speech-Id']}/words",
        headers={"Authorization": "Bearer sk-alpha"},
        timeout=10,
    ).json()["data"]
    assert [{k: v for k, v in word.items() if k != "type"} for word in words] == stored

    other = speak(server, text, key="sk-beta")
    assert other.headers["X-Speech-Cache"] == "miss"
    assert other.headers["X-Speech-Id"] != plain.headers["X-Speech-Id"]


def test_an_upstreams_own_events_are_not_stored_but_its_audio_replays_as_events(client: Client, settings: Any) -> None:
    """An upstream that answers SSE itself is relayed, uncached (its events are not parsed); once a plain-audio
    request of the same speech is stored, SSE requests replay that audio as events of their own."""
    upstream = FakeUpstream("sk-up").start()
    try:
        options = {"api_key": "sk-up", "base_url": upstream.url}
        settings.SPEECH = {
            "ENGINES": {"up": {"BACKEND": "speech.engines.openai.OpenAIEngine", "OPTIONS": options}},
            "MODELS": {"tts-1": "up"},
            "CACHE_AUDIO": True,
            "RECORD_USAGE": False,
        }
        body = {"model": "tts-1", "voice": "alloy", "input": unique("Upstream"), "stream_format": "sse"}

        def ask(**extra: str) -> StreamingHttpResponse:
            response = client.post("/v1/audio/speech", {**body, **extra}, content_type="application/json")
            assert isinstance(response, StreamingHttpResponse)
            return response

        for _ in range(2):
            relayed = ask()
            assert not relayed.has_header("X-Speech-Cache")
            assert decoded(read(relayed))[0] == audio_body("mp3")
        assert len(upstream.exchanges) == 2

        plain = ask(stream_format="audio")
        assert plain["X-Speech-Cache"] == "miss"  # stored as it streams
        assert read(plain) == audio_body("mp3")
        hit = ask()
        assert hit["X-Speech-Cache"] == "hit"
        audio, words, kinds = decoded(read(hit))
        assert (audio, words) == (audio_body("mp3"), [])
        assert kinds[-2:] == ["speech.audio.done", "[DONE]"]
        assert len(upstream.exchanges) == 3
    finally:
        upstream.stop()
