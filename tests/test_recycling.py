"""gunicorn's max_requests as a hand-over: the worker is replaced, no stream is cut, the door never closes."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from bench.support.fake_upstream import Behaviour, FakeUpstream, audio_body
from bench.support.procstat import settles, worker_pids
from bench.support.server import Server
from speech import recycling

KEY = "sk-test-recycling"
GRACE = 1
SHARE = 10  # requests a worker serves; the harness's readiness checks count too, fewer than this
LONG = 50  # the upstream's answer is the fixture this many times over: far longer than the test


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(KEY).start()
    yield fake
    fake.stop()


def read_long_stream(server: Server, result: dict[str, object]) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "A long answer.", "response_format": "pcm"}
    with requests.post(f"{server.url}/v1/audio/speech", json=body, stream=True, timeout=60) as response:
        result["status"] = response.status_code
        result["content"] = b"".join(response.iter_content(chunk_size=None))


@dataclass
class HandOver:
    server: Server
    old: int  # the relieved worker, still finishing the stream
    new: int  # its successor
    reader: threading.Thread  # reading the stream the old worker holds
    result: dict[str, object]
    relieved: float


def hand_over(upstream: FakeUpstream, make_server: Callable[..., Server]) -> HandOver:
    """A server whose worker is replaced while it holds one long stream, read by ``reader``."""
    # The upstream sends its answer slowly, so the stream is still open when the worker is replaced.
    upstream.behaviour = Behaviour(chunk_size=4096, interval=0.2, repeat=LONG)
    server = make_server(
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=upstream.url,
        GUNICORN_MAX_REQUESTS=str(SHARE),
        GUNICORN_MIN_WORKER_AGE="0",
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACE),
    )
    master = server.process.pid
    [old] = worker_pids(master)
    result: dict[str, object] = {}
    reader = threading.Thread(target=read_long_stream, args=(server, result))
    reader.start()
    assert settles(lambda: bool(upstream.exchanges and upstream.exchanges[0].sent), timeout=60)

    # More requests, till the worker has served its share: a successor starts while it goes on serving.
    for _ in range(SHARE):
        assert server.post_speech(stream=False, input="Short.").status_code == 200
        if "starting a successor" in server.log_text():
            break
    assert settles(lambda: "Relieved by a successor" in server.log_text(), timeout=180)  # the successor's warm-up
    [new] = [pid for pid in worker_pids(master) if pid != old]
    return HandOver(server, old, new, reader, result, time.monotonic())


def test_a_worker_that_served_its_share_hands_over_and_finishes_its_streams(
    upstream: FakeUpstream, make_server: Callable[..., Server]
) -> None:
    handed = hand_over(upstream, make_server)
    server, old, new, reader, result, relieved = (
        handed.server, handed.old, handed.new, handed.reader, handed.result, handed.relieved
    )  # fmt: skip
    master = server.process.pid

    # The successor serves at once, while the old worker still holds the stream, past the grace period.
    response = server.post_speech(stream=False, input="The successor speaks.")
    assert response.status_code == 200
    assert len(response.content) > 1000
    time.sleep(max(0.0, relieved + 2 * GRACE - time.monotonic()))
    assert Path(f"/proc/{old}").exists()
    assert upstream.exchanges[0].finished is None

    upstream.behaviour.interval = 0  # the rest of the answer at once
    reader.join(timeout=60)
    assert result["status"] == 200
    assert result["content"] == audio_body("pcm") * LONG  # whole, not cut
    assert settles(lambda: not Path(f"/proc/{old}").exists(), timeout=60)
    # The master does not refill the old worker's place: one worker, the successor.
    time.sleep(2)
    assert worker_pids(master) == [new]
    log = server.log_text()
    assert log.count("Booting worker") == 2
    assert "Traceback" not in log


def test_a_stop_during_a_hand_over_ends_the_old_workers_streams_cleanly_in_time(
    upstream: FakeUpstream, make_server: Callable[..., Server]
) -> None:
    """A relieved worker waits for its streams, but not past a stop's grace period (the master kills then)."""
    handed = hand_over(upstream, make_server)
    stopped = time.monotonic()
    handed.server.process.send_signal(signal.SIGTERM)
    handed.server.process.wait(timeout=GRACE + 30)
    handed.reader.join(timeout=30)
    assert handed.result["status"] == 200
    content = handed.result["content"]  # absent had the stream been cut (the reader raises)
    assert isinstance(content, bytes)
    assert 0 < len(content) < len(audio_body("pcm")) * LONG  # a clean end, early
    assert time.monotonic() - stopped < GRACE + 30
    assert "Traceback" not in handed.server.log_text()


def test_a_flood_of_requests_starts_at_most_one_successor_per_worker_age(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: asked.append(sig))
    worker = SimpleNamespace(ppid=1, log=logging.getLogger(__name__))

    young = recycling.Recycling(worker, after=3, min_age=3600)
    for _ in range(100):
        young.count_request()
    assert asked == []
    assert not young.waiting

    grown = recycling.Recycling(worker, after=3, min_age=0)
    for _ in range(100):
        grown.count_request()
    assert asked == [signal.SIGTTIN]  # once, however many requests follow
    assert grown.waiting
    recycling.relieve_predecessor(worker.log)  # as its successor would
    assert asked == [signal.SIGTTIN, recycling.RELIEVE]


def test_the_master_keeps_its_number_of_workers_through_a_hand_over() -> None:
    """A relieved worker's place is not refilled, unless the master already went back to its number
    (a reload resets it); and never below the configured number."""
    old, successor = SimpleNamespace(pid=1001), SimpleNamespace(pid=1002)
    arbiter = SimpleNamespace(num_workers=2, cfg=SimpleNamespace(workers=1), WORKERS={successor.pid: successor})
    os.write(recycling._relieved_write, recycling._PID.pack(old.pid))
    recycling.child_exit(arbiter, old)
    assert arbiter.num_workers == 1

    arbiter.num_workers = 1  # after a reload, the relieved worker exits at last
    os.write(recycling._relieved_write, recycling._PID.pack(old.pid))
    recycling.child_exit(arbiter, old)
    assert arbiter.num_workers == 1
    assert not recycling._relieved  # nothing left to match a later worker with the same pid
