"""What a speech request is refused for comes in order: an unknown model is refused (400) before the
permission check, the audio cache and a stream slot are asked, so a full server still says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from speech import audio_cache, clients, limits
from speech.models import Usage

FULL = {"MAX_STREAMS": 1, "QUEUE_TIMEOUT": 0.2}  # one synthesis slot, taken below; a newcomer waits 0.2 s


def speak_with_every_slot_taken(model: str) -> Any:
    limits.shared_cache().clear()  # counters an earlier test of this worker left behind
    someone = clients.Client("key:someone", "someone", rate=None, max_streams=1)
    release = limits.acquire_stream(someone, synthesis=True)
    try:
        body = {"model": model, "voice": "alloy", "input": "Hello."}
        return Client().post("/v1/audio/speech", body, content_type="application/json")
    finally:
        release()


@pytest.mark.django_db
@override_settings(SPEECH=FULL)
def test_an_unknown_model_is_refused_before_the_cache_and_a_stream_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    def untouched(*args: object, **kwargs: object) -> None:
        raise AssertionError("the audio cache was asked about an unknown model")

    monkeypatch.setattr(audio_cache, "entry_key", untouched)
    monkeypatch.setattr(audio_cache, "replay", untouched)
    answer = speak_with_every_slot_taken("tts-nonexistent")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "model_not_found"
    assert answer.json()["error"]["param"] == "model"
    assert not Usage.objects.filter(model="tts-nonexistent").exists()  # no stream, so no usage record


@pytest.mark.django_db
@override_settings(SPEECH=FULL)
def test_a_known_model_waits_for_the_slot_the_unknown_one_never_asked_for() -> None:
    answer = speak_with_every_slot_taken("piper")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "server_busy"
