"""Two server processes sharing one real redis-server: the audio cache, rate limits and stream caps
hold across both, as they would for several machines behind a load balancer."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

from bench.support.server import Server, free_port, start_server, stop_server
from tests.support.audio_check import duration
from tests.support.services import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def pair(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    env = {
        "SPEECH_REDIS_URL": redis_url,
        "SPEECH_CACHE_AUDIO": "1",
        "SPEECH_API_KEYS": "cache-key,rate-key,cap-key,other-key",
        "SPEECH_RATE_LIMIT": "12/hour",
        "SPEECH_MAX_STREAMS": "1",
        "SPEECH_QUEUE_TIMEOUT": "1",
    }
    shared: Path = tmp_path_factory.mktemp("pair")  # one database too
    first = start_server(shared, env)
    try:
        second = start_server(shared, env)
    except Exception:
        stop_server(first)
        raise
    yield first, second
    stop_server(first)
    stop_server(second)


def speak(server: Server, key: str, text: str, stream: bool = False) -> requests.Response:
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "pcm"}
    headers = {"Authorization": f"Bearer {key}"}
    return requests.post(f"{server.url}/v1/audio/speech", json=body, headers=headers, stream=stream, timeout=60)


def test_an_entry_cached_by_one_server_is_replayed_by_the_other(pair: tuple[Server, Server], redis_url: str) -> None:
    first, second = pair
    made = speak(first, "cache-key", "Made by the first server, replayed by the second.")
    replayed = speak(second, "cache-key", "Made by the first server, replayed by the second.")

    assert made.headers["X-Speech-Cache"] == "miss"
    assert replayed.headers["X-Speech-Cache"] == "hit"
    assert replayed.content == made.content
    assert any(redis.Redis.from_url(redis_url).scan_iter("*speech:audio:*"))  # it really lives in Redis


def test_the_rate_limit_counts_requests_to_both(pair: tuple[Server, Server]) -> None:
    first, second = pair

    def models(server: Server) -> int:
        headers = {"Authorization": "Bearer rate-key"}
        return requests.get(f"{server.url}/v1/models", headers=headers, timeout=10).status_code

    assert [models(server) for server in pair * 6] == [200] * 12
    assert models(first) == 429
    assert models(second) == 429


def drain(chunks: Iterator[bytes]) -> None:
    with contextlib.suppress(requests.RequestException, AttributeError, ValueError):  # closed under it at the end
        collections.deque(chunks, 0)


def test_the_stream_cap_holds_across_both(pair: tuple[Server, Server]) -> None:
    first, second = pair
    long = ("A stream held open on the first server takes the only slot there is. " * 60)[:4000]
    with speak(first, "cap-key", long, stream=True) as held:
        assert held.status_code == 200
        # A listener that keeps reading: a stream blocked on one that does not lends its slot away.
        chunks = held.iter_content(1024)
        next(chunks)
        threading.Thread(target=drain, args=(chunks,), daemon=True).start()
        refused = speak(second, "other-key", "No room for me.")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "server_busy"
    deadline = time.monotonic() + 20  # the first server notices the hang-up and frees the slot
    while (status := speak(second, "other-key", "Room now.").status_code) == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200


def test_a_cache_that_is_down_costs_caching_and_limits_not_speech(make_server: Callable[..., Server]) -> None:
    server = make_server(
        SPEECH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", SPEECH_RATE_LIMIT="1/hour", SPEECH_CACHE_AUDIO="1"
    )
    for _ in range(2):
        response = requests.post(
            f"{server.url}/v1/audio/speech",
            json={"model": "piper", "voice": "alloy", "input": "Still here."},
            timeout=60,
        )
        assert response.status_code == 200
        assert response.headers["X-Speech-Cache"] == "miss"
        assert duration(response.content, "mp3") > 0.5
    assert "cache unavailable" in server.log_text()
