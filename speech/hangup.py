"""Noticing that a client hung up while we are busy synthesising, not only at the next write.

Under gunicorn one thread per process polls the client sockets of open streams. Under ASGI there
is no socket to poll: Django cancels the response's task on ``http.disconnect`` (see ``asgi.py``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

from django.http import HttpRequest

from speech.cancellation import Cancellation

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05


def client_socket(request: HttpRequest) -> socket.socket | None:
    """The client's socket where the server lends it to the app (gunicorn), else None."""
    sock: socket.socket | None = request.META.get("gunicorn.socket")
    return sock


def peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class HangupWatcher:
    """One thread per process that polls the sockets of open streams for a hang-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[socket.socket | None, Cancellation]] = {}
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, request: HttpRequest, cancel: Cancellation) -> Iterator[None]:
        """Cancel when this request's client hangs up; any open stream may be ended by ``cancel_all``."""
        sock = client_socket(request)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = id(cancel)
        with self._lock:
            self._watched[key] = (sock, cancel)
            if self._thread is None and sock is not None:
                self._thread = threading.Thread(target=self._run, name="speech-hangup", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)

    def cancel_all(self) -> None:
        """Stop every open stream (the worker is shutting down); each ends cleanly where it is."""
        with self._lock:
            watched = list(self._watched.values())
        for _, cancel in watched:
            cancel.cancel()

    def _run(self) -> None:
        while True:
            with self._lock:
                watched = list(self._watched.values())
            for sock, cancel in watched:
                try:
                    if sock is not None and not cancel.cancelled and peer_closed(sock):
                        cancel.cancel()
                except Exception:  # one bad socket (or callback) must not end hang-up detection for all
                    logger.exception("hang-up check failed")
            time.sleep(POLL_SECONDS)


watcher = HangupWatcher()
