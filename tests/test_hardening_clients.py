"""Issue 31 G: what other clients read: Open WebUI's voice list, the end of OpenAI's speech SSE."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from speech.client import _events


@pytest.fixture(autouse=True)
def fresh_limits() -> None:
    cache.clear()


@pytest.mark.django_db
def test_the_voice_list_is_also_under_voices_with_id_and_name() -> None:
    listing = Client().get("/v1/audio/voices").json()
    assert listing["voices"] == listing["data"]
    assert listing["voices"]
    assert all(voice["id"] and voice["name"] for voice in listing["voices"])  # Open WebUI: {id: name}


def test_the_python_client_stops_at_openais_end_of_stream() -> None:
    stream = [
        b'data: {"type": "speech.audio.delta", "audio": "AAE="}\n\n',
        b'data: {"type": "speech.audio.done", "usage": {"input_tokens": 1}}\n\ndata: [DONE]\n\n',
    ]
    assert list(_events(iter(stream), [])) == [b"\x00\x01"]
