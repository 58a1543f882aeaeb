"""Eight pcm listeners at once are served side by side, each from its first piece, by every server.

Whether they never run dry depends on the cores this machine has free (2 cores serve about 9
real-time listeners when idle): bench/ttfb.py --only listeners measures that, per server
(BENCHMARKS.md). What a server could break, serving one listener after another or holding
chunks back, shows here whatever the load.
"""

from __future__ import annotations

import threading
import time

from bench.support.server import Server

LISTENERS = 8
BYTES_PER_SECOND = 24_000 * 2
TEXT = (
    "The train left the station a little after nine. By the time it reached the river, the fog had lifted. "
    "Mrs. Alder counted the fields as they went by: wheat, then barley, then a long strip of something green. "
    "Her brother slept with his hat over his eyes, as he had every spring for twenty years."
)


def listen(server: Server, go: threading.Barrier, arrivals: list[list[tuple[float, int]]]) -> None:
    go.wait()
    received: list[tuple[float, int]] = []
    with server.post_speech(input=TEXT, response_format="pcm") as response:
        for chunk in response.iter_content(chunk_size=None):
            received.append((time.monotonic(), len(chunk)))
    arrivals.append(received)


def test_eight_listeners_are_served_side_by_side(each_server: Server) -> None:
    go = threading.Barrier(LISTENERS)
    arrivals: list[list[tuple[float, int]]] = []
    threads = [threading.Thread(target=listen, args=(each_server, go, arrivals)) for _ in range(LISTENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(arrivals) == LISTENERS
    assert min(sum(size for _, size in chunks) for chunks in arrivals) / BYTES_PER_SECOND > 10  # the whole text
    started = min(chunks[0][0] for chunks in arrivals)
    first_ends = min(chunks[-1][0] for chunks in arrivals)
    # Every listener hears its first piece early on, long before anyone's stream is complete ...
    assert max(chunks[0][0] for chunks in arrivals) - started < (first_ends - started) / 4
    # ... and then audio keeps coming to all of them together, not to one after another.
    assert all(len([t for t, _ in chunks if t < first_ends]) > len(chunks) / 2 for chunks in arrivals)
