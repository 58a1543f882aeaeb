"""A listener who hangs up stops the synthesis at once, not at the end of the text."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bench.support.server import Server

LONG = " ".join(f"This is sentence number {n}, and it is here to keep the voice busy for a while." for n in range(45))


def pieces_so_far(server: Server) -> int:
    return server.log_text().count("piece ")


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn", "daphne", "hypercorn"])
def test_hang_up_stops_synthesis(make_server: Any, kind: str) -> None:
    server: Server = make_server(kind, SPEECH_LOG_LEVEL="DEBUG")
    response = server.post_speech(input=LONG, response_format="pcm")
    chunks = response.iter_content(chunk_size=4096)
    for _ in range(3):
        next(chunks)
    at_hang_up = pieces_so_far(server)
    response.close()

    # Until the pipeline's last word: no piece comes after it, and each one before it was counted.
    deadline = time.monotonic() + 60
    while "listener gone after" not in server.log_text():
        assert time.monotonic() < deadline, "the hang-up was never noticed"
        time.sleep(0.05)
    after = pieces_so_far(server)
    assert after - at_hang_up <= 2  # noticed late, it would have synthesised many more
    assert after < 20  # of the 45+ pieces the whole text needs


def test_server_keeps_serving_after_a_hang_up(server: Server) -> None:
    for _ in range(3):
        response = server.post_speech(input=LONG, response_format="mp3")
        next(response.iter_content(chunk_size=1024))
        response.close()
    response = server.post_speech(input="Still here.", response_format="wav", stream=False)
    assert response.status_code == 200
    assert len(response.content) > 10_000
