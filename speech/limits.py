"""Rate limits and stream caps, counted in Django's cache so that every process sharing it agrees.

Counters use ``cache.add`` + ``cache.incr``, which are atomic on Redis and Memcached (and within one
process on the local-memory cache). A slot counter expires after ``SLOT_TTL`` so that a crashed
process cannot hold slots for ever.

Rates are a sliding window: the period is cut into ``BUCKETS`` counters and a request is admitted
while the buckets that overlap the last period hold fewer than the limit, so no span of one period
ever admits more than the limit (a fixed window admits twice the limit across its boundary).
django-ninja's throttles keep a list of timestamps with get-then-set, which servers sharing a
Redis overwrite under each other; ``incr`` does not lose counts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.cache import BaseCache, caches

from speech.conf import get_config, parse_rate
from speech.errors import Overloaded, RateLimited

if TYPE_CHECKING:
    from speech.clients import Client

SLOT_TTL = 3600
STREAMS = "speech:streams"  # the global synthesis slots (MAX_STREAMS)
CONNECTIONS = "speech:connections"  # every open stream (MAX_CONNECTIONS)
BUCKETS = 10
QUEUE_POLL = 0.05
logger = logging.getLogger(__name__)
Release = Callable[[], None]


def shared_cache() -> BaseCache:
    """The Django cache that every process of the site shares (``SPEECH["CACHE_ALIAS"]``)."""
    return caches[get_config()["CACHE_ALIAS"]]


def check_rate(client: Client) -> None:
    if not client.rate:
        return
    if retry := count(f"speech:rate:{client.id}", client.rate):
        allowed, period = parse_rate(client.rate)
        raise RateLimited(
            f"Rate limit reached: {allowed} requests per {period} s. Try again in {retry} s.",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(retry)},
        )


def count(key: str, rate: str) -> int:
    """Count one event against ``rate``: 0 when admitted, else the seconds until one would be (not counted)."""
    return _window(key, rate, add=True)


def exhausted(key: str, rate: str) -> int:
    """Like ``count`` without counting: 0 while another event would be admitted."""
    return _window(key, rate, add=False)


def _window(key: str, rate: str, add: bool) -> int:
    allowed, period = parse_rate(rate)
    width = period / BUCKETS
    now = time.time()
    current = int(now // width)
    names = {index: f"{key}:{index}" for index in range(current - BUCKETS, current + 1)}
    try:
        counts: dict[str, int] = shared_cache().get_many(list(names.values()))
    except Exception:
        logger.exception("cache unavailable: %s not counted", key)
        return 0
    earlier = sum(counts.get(names[index], 0) for index in range(current - BUCKETS, current))
    total = earlier + counts.get(names[current], 0)
    if total < allowed and add:
        total = earlier + _incr(names[current], period + math.ceil(width))  # atomic: racing requests see each other
        if total <= allowed:
            return 0
        _give_all([names[current]])
    elif total < allowed:
        return 0
    for index in range(current - BUCKETS, current + 1):  # wait until enough of the oldest leave the window
        total -= counts.get(names[index], 0)
        if total < allowed:
            return max(1, math.ceil((index + BUCKETS + 1) * width - now))
    return max(1, math.ceil(width))


class StreamSlots:
    """The slots ``acquire_stream`` took. Calling it gives them all back (once). A stream waiting on a
    listener that does not read ``lend``s its global synthesis slot (MAX_STREAMS counts work, not
    connections) and ``retake``s it when the listener catches up; its connection slots stay taken."""

    def __init__(self, held: list[str]) -> None:
        self._lock = threading.Lock()
        self._held = held
        self._lent = False
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            keys = self._held[:]
            self._held.clear()
            self._done = True
        _give_all(keys)

    def lend(self) -> None:
        with self._lock:
            if self._done or self._lent or STREAMS not in self._held:
                return
            self._held.remove(STREAMS)
            self._lent = True
        _give_all([STREAMS])

    def retake(self, cancelled: Callable[[], bool]) -> None:
        """Take the global slot back, waiting for one to free (not past the stream's cancellation)."""
        while True:
            with self._lock:
                if self._done or not self._lent:
                    return
            taken: list[str] = []
            if _take(STREAMS, get_config()["MAX_STREAMS"], taken):
                break
            if cancelled():
                return
            time.sleep(QUEUE_POLL)
        with self._lock:
            if not self._done:
                self._held += taken
                self._lent = False
                return
        _give_all(taken)  # the stream ended meanwhile


def connection_caps() -> tuple[int | None, int | None]:
    """(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS), with their defaults: 4x the stream caps."""
    config = get_config()
    total, per_address = config["MAX_CONNECTIONS"], config["MAX_CONNECTIONS_PER_ADDRESS"]
    total = 4 * config["MAX_STREAMS"] if total is None else total
    per_address = 4 * config["MAX_STREAMS_PER_CLIENT"] if per_address is None else per_address
    return total, per_address


def acquire_stream(client: Client, synthesis: bool) -> StreamSlots:
    """Take a stream slot for ``client``, connection slots for its address and the site, and for a
    local synthesis or a replay a global one (waiting up to QUEUE_TIMEOUT); return them
    (``StreamSlots``: call it to release). Proxied streams cost this machine little CPU: the global
    synthesis cap does not apply to them."""
    config = get_config()
    own = f"speech:streams:{client.id}"
    taken: list[str] = []
    if not _take(own, client.max_streams, taken):
        raise RateLimited(
            f"Too many concurrent streams: at most {client.max_streams} per client.",
            code="too_many_streams",
            headers={"Retry-After": "1"},
        )
    total, per_address = connection_caps()
    if client.address and not _take(f"speech:connections:{client.address}", per_address, taken):
        _give_all(taken)
        raise RateLimited(
            f"Too many open streams from your address: at most {per_address}, whatever the key.",
            code="too_many_connections",
            headers={"Retry-After": "1"},
        )
    if not _take(CONNECTIONS, total, taken):
        _give_all(taken)
        raise Overloaded(
            f"The server is busy: all {total} connections are taken. Try again shortly.",
            code="server_busy",
            headers={"Retry-After": "2"},
        )
    deadline = time.monotonic() + config["QUEUE_TIMEOUT"]
    while not _take(STREAMS, config["MAX_STREAMS"] if synthesis else None, taken):
        if time.monotonic() >= deadline:
            _give_all(taken)
            raise Overloaded(
                f"The server is busy: all {config['MAX_STREAMS']} streams are taken. Try again shortly.",
                code="server_busy",
                headers={"Retry-After": "2"},
            )
        time.sleep(QUEUE_POLL)
    return StreamSlots(taken)


def _incr(key: str, timeout: int) -> int:
    """The counter after adding one; 0 when the cache is down (limits then fail open, loudly)."""
    store = shared_cache()
    try:
        store.add(key, 0, timeout)
        try:
            return int(store.incr(key))
        except ValueError:  # expired between add and incr
            store.add(key, 1, timeout)
            return 1
    except Exception:
        logger.exception("cache unavailable: %s not counted", key)
        return 0


def _take(key: str, cap: int | None, taken: list[str]) -> bool:
    if not cap:
        return True
    count = _incr(key, SLOT_TTL)
    if count == 0:
        return True
    with contextlib.suppress(Exception):  # the TTL runs from the last take, not from the first
        shared_cache().touch(key, SLOT_TTL)
    if count <= cap:
        taken.append(key)
        return True
    _give_all([key])
    return False


def _give_all(keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(Exception):  # expired (nothing to give back) or cache down (logged on take)
            if shared_cache().decr(key) < 0:  # the counter expired and restarted while this slot was held
                shared_cache().set(key, 0, SLOT_TTL)
