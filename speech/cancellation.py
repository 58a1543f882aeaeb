"""The vocabulary of stopping: a listener went away, so everything working for them stops now.

``Cancellation`` is set once (by a hang-up watcher, or by a stream cut short) and runs its callbacks
at that moment (abort an ONNX run, shut an upstream socket). Code that waits or works for the
listener raises ``Cancelled`` to unwind; an engine asked to start for a listener already gone
raises ``errors.ClientClosed`` (HTTP 499, the status usage records keep for hang-ups).
This module needs no Django: ``speech.client`` uses ``close`` outside any site.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["Cancellation", "Cancelled", "close"]


class Cancelled(Exception):
    """The listener went away; stop working for them."""


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


def close(chunks: Iterator[object]) -> None:
    """Close a chunk generator now (stopping whatever produces it), not whenever it is collected."""
    getattr(chunks, "close", lambda: None)()
