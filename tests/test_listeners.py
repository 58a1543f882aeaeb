"""Eight listeners at once, each playing pcm at 1x from its first byte: none of them runs out of audio."""

from __future__ import annotations

import threading
import time

from tests.support.server import Server

LISTENERS = 8
BYTES_PER_SECOND = 24_000 * 2
TEXT = (
    "The train left the station a little after nine. By the time it reached the river, the fog had lifted. "
    "Mrs. Alder counted the fields as they went by: wheat, then barley, then a long strip of something green. "
    "Her brother slept with his hat over his eyes, as he had every spring for twenty years."
)
JITTER = 0.05  # a late chunk by less than this is scheduling noise in the client, not silence


def listen(server: Server, go: threading.Barrier, stalls: list[float], seconds: list[float]) -> None:
    go.wait()
    response = server.post_speech(input=TEXT, response_format="pcm")
    plays_until: float | None = None
    received = 0
    for chunk in response.iter_content(chunk_size=None):
        now = time.monotonic()
        plays_until = now if plays_until is None else plays_until
        if now - plays_until > JITTER:
            stalls.append(now - plays_until)
        plays_until = max(plays_until, now) + len(chunk) / BYTES_PER_SECOND
        received += len(chunk)
    seconds.append(received / BYTES_PER_SECOND)


def test_eight_listeners_never_run_dry(each_server: Server) -> None:
    go = threading.Barrier(LISTENERS)
    stalls: list[float] = []
    seconds: list[float] = []
    threads = [threading.Thread(target=listen, args=(each_server, go, stalls, seconds)) for _ in range(LISTENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seconds) == LISTENERS
    assert min(seconds) > 10  # each heard the whole text
    assert stalls == []
