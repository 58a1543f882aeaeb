"""Gunicorn's threaded worker with a deadline for receiving a request.

gthread gives a connection a thread as soon as its first bytes arrive, and the thread then waits for
the rest with no time limit: a client that sends a header line every few seconds (slowloris), or
announces a body and never sends it, holds a thread for as long as it likes, and a few hundred of
them stop the server. Here a request must arrive whole (headers and body) within
``GUNICORN_REQUEST_TIMEOUT`` seconds (default 10), or its connection is shut. The body is read
before the application runs, so the deadline covers it; a body too large to read first (over
``MAX_BUFFERED_BODY``, refused by Django with a 413) keeps the deadline running past the answer,
because gunicorn then drains the unread rest with no overall time limit. Use it with
``worker_class = "speech.workers.RequestDeadlineWorker"``; a front proxy (nginx) that buffers
requests is still the real protection (README, Deploying).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from speech import recycling

POLL_SECONDS = 0.2
# Far above any speech request and above Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB), which refuses
# larger bodies with a 413.
MAX_BUFFERED_BODY = 4 * 1024 * 1024


class Deadlines:
    """One thread that shuts the sockets whose request did not arrive in time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[socket.socket, float]] = {}
        threading.Thread(target=self._run, name="speech-request-deadline", daemon=True).start()

    def arm(self, sock: socket.socket) -> int:
        """Start the clock; the key is the descriptor, which a TLS wrapper made later shares."""
        key = sock.fileno()
        with self._lock:
            self._armed[key] = (sock, time.monotonic() + self.seconds)
        return key

    def disarm(self, key: int) -> None:
        with self._lock:
            self._armed.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (_, deadline) in self._armed.items() if deadline < now]
                socks = [self._armed.pop(key)[0] for key in late]
            for sock in socks:  # the thread blocked reading it sees the end of the stream and moves on
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class RequestDeadlineWorker(ThreadWorker):
    def init_process(self) -> None:
        self.deadlines = Deadlines(float(os.environ.get("GUNICORN_REQUEST_TIMEOUT", "10")))
        # gunicorn's max_requests (with its jitter) becomes a hand-over (speech.recycling), not a stop.
        min_age = float(os.environ.get("GUNICORN_MIN_WORKER_AGE", recycling.MIN_AGE_SECONDS))
        self.recycling = recycling.Recycling(self, self.max_requests, min_age)  # type: ignore[has-type]
        self.max_requests = sys.maxsize
        self.stopped_at: float | None = None  # when SIGTERM came
        self.signalled = threading.Event()  # a relief or a stop, for ``_watch_exit``
        self.grace = float(self.cfg.graceful_timeout)  # a relieved worker waits longer; a stop does not
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        signal.signal(recycling.RELIEVE, self.handle_relieve)
        signal.siginterrupt(recycling.RELIEVE, False)

    def run(self) -> None:
        if self.alive:  # not while being stopped already: it would take a predecessor's place and go
            recycling.relieve_predecessor(self.log)
        super().run()

    # Signal handlers only set flags: the work (logging, a timer) is ``_watch_exit``'s, in its thread.
    def handle_relieve(self, sig: int, frame: Any) -> None:
        self.recycling.leave()
        self.signalled.set()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self.stopped_at = time.monotonic()
        self.signalled.set()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from speech.hangup import watcher  # here, not in a signal handler, which may interrupt an import

        threading.Thread(target=self._watch_exit, args=(watcher.cancel_all,), daemon=True).start()
        application: Callable[..., Iterable[bytes]] = self.wsgi  # type: ignore[has-type]

        def read_then_run(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.recycling.count_request()
            if _buffer_body(environ):  # arrived whole: no deadline for the answer
                self.deadlines.disarm(environ["gunicorn.socket"].fileno())
            result: Iterable[bytes] = application(environ, start_response)
            return result

        self.wsgi = read_then_run

    def _watch_exit(self, end_streams: Callable[[], None]) -> None:
        """On restart or stop, streams still open a second before ``graceful_timeout`` end cleanly.

        Without this a long stream outlives the grace period: the worker's threads keep it going, the
        interpreter waits for them at exit, and the master kills the worker a heartbeat ``timeout``
        later (60 s), cutting every stream mid-chunk while two workers compete for the cores. A relieved
        worker instead finishes its streams, unless it is stopped meanwhile.
        """
        self.signalled.wait()
        if self.stopped_at is None:  # relieved first
            self.log.info("Relieved by a successor: finishing %d open connections.", self.nr_conns)
        while self.stopped_at is None:  # a handler sets ``stopped_at`` before it signals
            self.signalled.wait()
            self.signalled.clear()
        time.sleep(max(0.0, self.stopped_at + self.grace - 1.0 - time.monotonic()))
        end_streams()

    def handle(self, conn: Any) -> Any:
        key = self.deadlines.arm(conn.sock)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.disarm(key)


def _buffer_body(environ: dict[str, Any]) -> bool:
    """Read the body into memory; False when it is larger than ``MAX_BUFFERED_BODY`` (its rest unread)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length > MAX_BUFFERED_BODY:
        return False
    if not (length or chunked):
        return True
    body = environ["wsgi.input"].read(length or MAX_BUFFERED_BODY + 1)
    environ["wsgi.input"] = io.BytesIO(body)
    if chunked:  # Django reads a body as far as CONTENT_LENGTH says, and without one reads nothing
        environ["CONTENT_LENGTH"] = str(len(body))
    return len(body) <= MAX_BUFFERED_BODY
