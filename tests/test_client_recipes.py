"""Real clients' request shapes against a site with keys: openai-python, Home Assistant, Open WebUI.

The shapes are the clients' own (read from their sources): what they send, and what they read back.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator

import openai
import pytest
import requests

from bench.support.server import Server, start_server, stop_server

KEY = "sk-recipes-0123456789"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("recipes"), {"SPEECH_API_KEYS": KEY})
    yield server
    stop_server(server)


@pytest.fixture
def client(site: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{site.url}/v1", api_key=KEY, max_retries=0)


def test_openai_python_streams_and_names_the_request(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello from the SDK. " * 20, response_format="pcm"
    ) as response:
        assert str(response.request_id).startswith("req_")
        chunks = response.iter_bytes(chunk_size=None)
        next(chunks)
        first_byte = time.monotonic() - started
        rest = sum(len(chunk) for chunk in chunks)
        last_byte = time.monotonic() - started
    assert rest > 24_000  # seconds of 24 kHz audio
    assert first_byte < last_byte / 2  # streamed, not buffered


def test_openai_python_errors_carry_the_request_id(client: openai.OpenAI, site: Server) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    assert str(bad.value.request_id).startswith("req_")
    assert (bad.value.type, bad.value.param) == ("invalid_request_error", "voice")
    keyless = openai.OpenAI(base_url=f"{site.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        keyless.models.list()
    assert denied.value.request_id


def test_openai_python_models_retrieve(client: openai.OpenAI) -> None:
    model = client.models.retrieve("tts-1")
    assert (model.id, model.object) == ("tts-1", "model")
    assert {m.id for m in client.models.list()} >= {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper"}
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("tts-9")
    assert missing.value.status_code == 404
    assert missing.value.code == "model_not_found"
    assert missing.value.param == "model"
    assert missing.value.type == "invalid_request_error"


def test_home_assistant_openai_tts_shape(site: Server) -> None:
    """The openai_tts integration: a full URL, a bearer key, wav/pcm/mp3, a float speed; instructions for gpt-4o."""
    url = f"{site.url}/v1/audio/speech"
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "tts-1", "input": "The front door is open.", "voice": "nova", "response_format": "wav"}
    spoken = requests.post(url, headers=headers, json={**body, "speed": 1.0}, timeout=60)
    assert spoken.status_code == 200
    assert spoken.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(spoken.content)) as wav:  # its sentence pipelining parses the header
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
    mini = {**body, "model": "gpt-4o-mini-tts", "response_format": "pcm", "instructions": "Calm.", "speed": 1.2}
    with requests.post(url, headers=headers, json=mini, stream=True, timeout=60) as pcm:
        assert pcm.status_code == 200
        assert len(b"".join(pcm.iter_content(chunk_size=None))) % 2 == 0


def test_open_webui_shape(site: Server) -> None:
    """Open WebUI's openai engine: {base}/audio/speech with input, voice, model; user headers; reads it whole."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {KEY}",
        "X-OpenWebUI-User-Name": "Ada",
        "X-OpenWebUI-User-Id": "42",
        "X-OpenWebUI-User-Email": "ada@example.com",
        "X-OpenWebUI-User-Role": "user",
    }
    body = {"input": "Here is your answer.", "voice": "alloy", "model": "tts-1"}
    spoken = requests.post(f"{site.url}/v1/audio/speech", headers=headers, json=body, timeout=60)
    assert spoken.status_code == 200
    assert spoken.headers["Content-Type"] == "audio/mpeg"  # it saves the body as .mp3
    assert spoken.content[:1] == b"\xff"
    # Its voice and model lists ask without a key and fall back to OpenAI's names, all of which we speak.
    for path in ("audio/voices", "audio/models"):
        assert requests.get(f"{site.url}/v1/{path}", timeout=30).status_code in (401, 404)
