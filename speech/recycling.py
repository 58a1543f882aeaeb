"""Gunicorn's ``max_requests`` without a cut stream or a closed door: a worker hands over to its successor.

A server's native heap creeps up under weeks of mixed traffic (BENCHMARKS.md, Memory), and the proven
bound is to replace a worker now and then. Gunicorn's own ``max_requests`` stops the worker at once:
its streams get ``graceful_timeout`` and are then cut, and nobody accepts a connection until the
master has started and warmed a replacement. Here a worker that has served its share:

1. asks the master for one more worker (``SIGTTIN``) and goes on serving;
2. the new worker, once warm (``post_worker_init``), relieves it (``SIGUSR2``) as it starts accepting;
3. the relieved worker stops accepting and finishes every stream it holds (up to ``DRAIN_SECONDS``);
4. when it exits, the master goes back to its number of workers (``child_exit``, in gunicorn.conf.py).

The pipes are made when gunicorn's master imports the worker class, so every worker shares them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import threading
import time
from typing import Any

# A relieved worker's streams are all bounded well below this (a listener slower than real time is
# dropped at SPEECH's STALL_TIMEOUT); it only guards against a worker that never leaves.
DRAIN_SECONDS = 3600
MIN_AGE_SECONDS = 600  # GUNICORN_MIN_WORKER_AGE
RELIEVE = signal.SIGUSR2  # from a successor; SIGTERM stays a stop (a restart, a shutdown)
_PID = struct.Struct("i")
_waiting_read, _waiting_write = os.pipe()  # workers waiting for a successor
_relieved_read, _relieved_write = os.pipe()  # workers a successor relieved, for the master
os.set_blocking(_waiting_read, False)
os.set_blocking(_relieved_read, False)
_relieved: set[int] = set()  # the master's


class Recycling:
    """One worker's count of requests, and its hand-over once it has served ``after`` of them and
    lived ``min_age`` seconds: a flood of cheap requests cannot make workers start (and load their
    voices) more than once per ``min_age``."""

    def __init__(self, worker: Any, after: int, min_age: float) -> None:
        self.worker = worker
        self.after = after
        self.served = 0
        self.waiting = False
        self.leaving = False
        self._ready_at = time.monotonic() + min_age
        self._lock = threading.Lock()

    def count_request(self) -> None:
        with self._lock:
            self.served += 1
            if self.waiting or self.served < self.after or time.monotonic() < self._ready_at:
                return
            self.waiting = True
        os.write(_waiting_write, _PID.pack(os.getpid()))
        self.worker.log.info("Served %d requests: starting a successor to hand over to.", self.served)
        os.kill(self.worker.ppid, signal.SIGTTIN)

    def leave(self) -> None:
        """Relieved (in a signal handler): stop accepting, finish every stream held, then exit."""
        if not self.waiting or self.leaving:
            return
        self.leaving = True
        self.worker.cfg.set("graceful_timeout", DRAIN_SECONDS)
        self.worker.alive = False


def relieve_predecessor(log: Any) -> None:
    """In a new worker about to accept: tell one worker waiting for a successor to leave."""
    try:
        waiting = os.read(_waiting_read, _PID.size)
    except BlockingIOError:
        return
    (pid,) = _PID.unpack(waiting)
    os.write(_relieved_write, waiting)
    try:
        os.kill(pid, RELIEVE)
    except ProcessLookupError:  # it died meanwhile, and the master replaced it: one worker too many now
        log.warning("Worker %d, waiting for a successor, has gone already.", pid)
        os.kill(os.getppid(), signal.SIGTTOU)


def child_exit(arbiter: Any, worker: Any) -> None:
    """Gunicorn's master hook: a relieved worker's place was taken by its successor, so do not refill it."""
    with contextlib.suppress(BlockingIOError):
        while data := os.read(_relieved_read, 64 * _PID.size):
            _relieved.update(pid for (pid,) in _PID.iter_unpack(data))
    if worker.pid in _relieved and arbiter.num_workers > arbiter.cfg.workers:  # not after a reload (HUP)
        arbiter.num_workers -= 1
    _relieved.intersection_update(arbiter.WORKERS)  # workers gone otherwise, whose pids may come again
