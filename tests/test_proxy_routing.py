"""Several named upstreams, each with its own key, and models routed to them by ``SPEECH["MODELS"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from bench.support.fake_upstream import FakeUpstream, audio_body


@pytest.fixture
def openai_like() -> Iterator[FakeUpstream]:
    fake = FakeUpstream("sk-openai").start()
    yield fake
    fake.stop()


@pytest.fixture
def kokoro() -> Iterator[FakeUpstream]:
    fake = FakeUpstream("kokoro-key").start()
    yield fake
    fake.stop()


@pytest.fixture
def routed(settings: Settings, openai_like: FakeUpstream, kokoro: FakeUpstream) -> None:
    backend = "speech.engines.openai.OpenAIEngine"
    settings.SPEECH = {
        "ENGINES": {
            "openai": {"BACKEND": backend, "OPTIONS": {"api_key": "sk-openai", "base_url": openai_like.url}},
            "kokoro": {
                "BACKEND": backend,
                "OPTIONS": {"api_key": "kokoro-key", "base_url": kokoro.url, "voices": ["af_bella", "am_adam"]},
            },
        },
        "MODELS": {"tts-1": "openai", "gpt-4o-mini-tts": "openai", "kokoro": "kokoro"},
    }


@pytest.mark.usefixtures("routed")
@pytest.mark.parametrize(("model", "voice", "engine"), [("tts-1", "alloy", "openai"), ("kokoro", "af_bella", "kokoro")])
def test_each_model_goes_to_its_upstream_with_its_key(
    client: Client, openai_like: FakeUpstream, kokoro: FakeUpstream, model: str, voice: str, engine: str
) -> None:
    body = {"model": model, "voice": voice, "input": "Routed.", "response_format": "pcm"}
    response = client.post("/v1/audio/speech", body, content_type="application/json")
    assert isinstance(response, StreamingHttpResponse)

    assert b"".join(response.streaming_content) == audio_body("pcm")
    assert response["X-Speech-Engine"] == engine
    served, idle = (openai_like, kokoro) if engine == "openai" else (kokoro, openai_like)
    (exchange,) = served.exchanges
    assert exchange.headers["Authorization"] == f"Bearer {served.api_key}"
    assert exchange.body["model"] == model
    assert idle.exchanges == []


@pytest.mark.usefixtures("routed")
def test_models_and_voices_list_the_upstreams(client: Client) -> None:
    models = {model["id"]: model["owned_by"] for model in client.get("/v1/models").json()["data"]}
    voices = {(voice["id"], voice["engine"]) for voice in client.get("/v1/audio/voices").json()["data"]}

    assert models == {"tts-1": "openai", "gpt-4o-mini-tts": "openai", "kokoro": "kokoro"}
    assert {("af_bella", "kokoro"), ("am_adam", "kokoro"), ("alloy", "openai"), ("marin", "openai")} <= voices
    assert ("alloy", "kokoro") not in voices
