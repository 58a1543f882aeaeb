"""Issue 31 I (in part): one request makes at most MAX_AUDIO_SECONDS of audio, whatever its text expands to."""

from __future__ import annotations

from collections.abc import Callable

from bench.support.server import Server
from tests.support.audio_check import duration

NUMBERS = "1234567890 " * 40  # 440 characters; each number is read out in full


def test_the_audio_of_one_request_is_capped(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_MAX_AUDIO_SECONDS="4")
    response = server.post_speech(input=NUMBERS, response_format="pcm", stream=False)
    assert response.status_code == 200
    seconds = duration(response.content, "pcm")
    # Cut between pieces: the last one may end past the cap (uncut, this text speaks for minutes).
    assert 4 <= seconds < 20, seconds
    assert "audio cut at MAX_AUDIO_SECONDS (4 s)" in server.log_text()
