"""Noticing that a client hung up while we are busy synthesising, not only at the next write."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05


class Cancellation:
    """Set once when the listener is gone; callbacks run at that moment (e.g. abort an ONNX run)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @contextlib.contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()
        try:
            yield
        finally:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)


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
        self._watched: dict[int, tuple[socket.socket, Cancellation]] = {}
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, sock: socket.socket | None, cancel: Cancellation) -> Iterator[None]:
        if sock is None:  # not under gunicorn: the next failed write tells us instead
            yield
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = id(cancel)
        with self._lock:
            self._watched[key] = (sock, cancel)
            if self._thread is None:
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
                    if not cancel.cancelled and peer_closed(sock):
                        cancel.cancel()
                except Exception:  # one bad socket (or callback) must not end hang-up detection for all
                    logger.exception("hang-up check failed")
            time.sleep(POLL_SECONDS)


watcher = HangupWatcher()
