"""POST /v1/audio/speech against the real servers (gunicorn, uvicorn): bytes, headers, and when they arrive."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest

from bench.support.server import Server
from tests.support.audio_check import duration

SHORT = "Hello there. This starts playing at once."
LONG = " ".join(
    [
        "The first sentence is short.",
        "The second one goes on a little longer, with a clause or two, and a pause in the middle.",
        "Streaming means that the listener hears this while the rest is still being made.",
        "Nothing waits for the last byte before the first one leaves the server.",
        "And here is one more sentence, so that the whole text takes many seconds to speak.",
    ]
    * 3
)
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@pytest.mark.parametrize("fmt", list(CONTENT_TYPES))
def test_every_format_streams_and_decodes(each_server: Server, fmt: str) -> None:
    response = each_server.post_speech(input=SHORT, response_format=fmt)
    data = response.content

    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPES[fmt]
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["X-Speech-Engine"] == "piper"
    # Raw samples name no rate: the header does (the browser player reads it).
    assert response.headers.get("X-Speech-Sample-Rate") == ("24000" if fmt == "pcm" else None)
    assert "Content-Encoding" not in response.headers
    # Two short sentences take two to four seconds to say.
    assert 1.5 < duration(data, fmt) < 5.0


def test_wav_header_says_unknown_length(server: Server) -> None:
    data = server.post_speech(input=SHORT, response_format="wav").content
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert data[4:8] == b"\xff\xff\xff\xff"
    assert data[40:44] == b"\xff\xff\xff\xff"


# Each server and each streamed format, not every pair of them: a server that buffers, or an encoder that
# holds its output back, shows in any pair it is in. With test_openai_sdk_streams_from_us (mp3 from gunicorn)
# four of the six pairs are timed, for four long syntheses instead of seven.
@pytest.mark.parametrize(("kind", "fmt"), [("uvicorn", "mp3"), ("uvicorn", "opus"), ("gunicorn", "pcm")])
def test_first_bytes_arrive_long_before_the_last(servers: Callable[[str], Server], kind: str, fmt: str) -> None:
    start = time.monotonic()
    response = servers(kind).post_speech(input=LONG, response_format=fmt)
    arrivals = []
    total = b""
    for chunk in response.iter_content(chunk_size=None):
        arrivals.append(time.monotonic() - start)
        total += chunk
    seconds_of_audio = duration(total, fmt)

    assert len(arrivals) > 10
    # The whole text takes a while to make; the first chunk comes when a fraction of it is done.
    assert arrivals[-1] > 0.5
    assert arrivals[0] < arrivals[-1] * 0.15
    assert seconds_of_audio > 30


def test_speed_changes_duration(server: Server) -> None:
    normal = duration(server.post_speech(input=SHORT, response_format="pcm").content, "pcm")
    fast = duration(server.post_speech(input=SHORT, response_format="pcm", speed=2.0).content, "pcm")
    assert fast < normal * 0.7


def test_sse_events_carry_the_audio(each_server: Server) -> None:
    response = each_server.post_speech(input=SHORT, stream_format="sse")
    assert response.headers["Content-Type"] == "text/event-stream"
    lines = [line for line in response.text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"  # after speech.audio.done, as OpenAI's stream ends
    events = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    deltas = [event for event in events if event["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2
    assert events[-1]["type"] == "speech.audio.done"
    assert events[-1]["usage"]["input_tokens"] > 0
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    assert 1.5 < duration(audio, "mp3") < 5.0


def test_sse_pcm_names_its_sample_rate(server: Server) -> None:
    response = server.post_speech(input=SHORT, response_format="pcm", stream_format="sse")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["X-Speech-Sample-Rate"] == "24000"


def test_openai_sdk_streams_from_us(server: Server) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    start = time.monotonic()
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=LONG, response_format="mp3"
    ) as response:
        for chunk in response.iter_bytes(chunk_size=None):
            chunks.append((time.monotonic() - start, chunk))
    assert chunks[0][0] < chunks[-1][0] / 4
    assert duration(b"".join(chunk for _, chunk in chunks), "mp3") > 30


def test_lists_voices_and_models(server: Server) -> None:
    import requests

    voices = requests.get(f"{server.url}/v1/audio/voices", timeout=10).json()
    names = {voice["id"] for voice in voices["data"]}
    assert {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
        "joe",
    } <= names
    models = requests.get(f"{server.url}/v1/models", timeout=10).json()
    assert {model["id"] for model in models["data"]} >= {"piper", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
    assert models["object"] == "list"
