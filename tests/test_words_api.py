"""Word timings over HTTP: speech.word events in SSE, and words/subtitles of a finished synthesis."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import requests

from bench.support.server import Server

TEXT = "Dr. Smith paid $5 for it. Then, after a pause, the words go on for a while longer."
BYTES_PER_SECOND = 48_000  # pcm: s16le 24 kHz mono


def events(response: requests.Response) -> list[dict[str, Any]]:
    found = []
    for line in response.iter_lines():
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            found.append(json.loads(line[6:]))
    return found


def test_sse_sends_each_word_before_its_audio(server: Server) -> None:
    response = server.post_speech(input=TEXT, response_format="pcm", stream_format="sse")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert len(response.headers["X-Speech-Id"]) == 32
    received = events(response)

    audio_seconds = 0.0
    words = []
    for event in received:
        if event["type"] == "speech.audio.delta":
            audio_seconds += len(base64.b64decode(str(event["audio"]))) / BYTES_PER_SECOND
        elif event["type"] == "speech.word":
            assert set(event) == {"type", "text", "start", "end", "char_start", "char_end", "estimated"}
            # No later than the audio that holds it: the audio sent so far ends before the word starts
            # (the resampler holds back a few milliseconds of each piece).
            assert audio_seconds <= event["start"] + 0.02, event
            words.append(event)
    assert [w["text"] for w in words] == ["Dr.", "Smith", "paid", "$5", "for", "it", "Then", "after", "a", "pause",
                                          "the", "words", "go", "on", "for", "a", "while", "longer"]  # fmt: skip
    assert all(TEXT[w["char_start"] : w["char_end"]] == w["text"] for w in words)
    kinds = [event["type"] for event in received]
    last_word = len(kinds) - 1 - kinds[::-1].index("speech.word")
    assert kinds.index("speech.word") < kinds.index("speech.audio.delta") < last_word  # interleaved
    assert kinds[-1] == "speech.audio.done"


def test_words_and_subtitles_of_a_finished_synthesis(server: Server) -> None:
    response = server.post_speech(input=TEXT, response_format="mp3")
    speech_id = response.headers["X-Speech-Id"]
    assert response.content  # the whole stream: the words are kept when it ends
    base = f"{server.url}/v1/audio/speech/{speech_id}"

    words = requests.get(f"{base}/words", timeout=10).json()
    assert words["id"] == speech_id
    assert [w["text"] for w in words["data"]][:4] == ["Dr.", "Smith", "paid", "$5"]

    vtt = requests.get(f"{base}/subtitles", timeout=10)
    assert vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.")
    assert "Dr. Smith paid $5" in vtt.text
    srt = requests.get(f"{base}/subtitles", params={"format": "srt"}, timeout=10)
    assert srt.text.startswith("1\n00:00:00,")

    missing = requests.get(f"{server.url}/v1/audio/speech/{'0' * 32}/subtitles", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "speech_not_found"
    bad = requests.get(f"{base}/subtitles", params={"format": "ass"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "format"


def test_a_cached_replay_names_the_words_of_the_synthesis_it_replays(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_CACHE_AUDIO="1")
    first = server.post_speech(input=TEXT, response_format="opus")
    assert first.content
    again = server.post_speech(input=TEXT, response_format="opus")
    assert again.headers["X-Speech-Cache"] == "hit"
    assert again.headers["X-Speech-Id"] == first.headers["X-Speech-Id"]
    vtt = requests.get(f"{server.url}/v1/audio/speech/{again.headers['X-Speech-Id']}/subtitles", timeout=10)
    assert vtt.status_code == 200
    assert "Smith" in vtt.text
