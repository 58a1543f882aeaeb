"""Noticing that a client hung up while we are busy synthesising, not only at the next write.

Under gunicorn one thread per process polls the client sockets of open streams. Under ASGI there
is no socket to poll: Django cancels the response's task on ``http.disconnect`` (see ``asgi.py``).

A listener that stops reading is dropped ``STALL_TIMEOUT`` seconds after the socket stopped taking
data (``drop_stalled``), with one log line; under ASGI after the server stopped taking it
(``asgi.stream``), its connection shut here (``shut``). The socket's send buffer is kept small
(``limit_stalls``): the kernel's own would grow to megabytes and hide a stall for minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.http import HttpRequest

from speech.cancellation import Cancellation
from speech.conf import get_config

if TYPE_CHECKING:
    from speech.limits import StreamSlots

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
# What is handed to the server at a time once the socket is writable: well under the free space a
# writable socket has (a third of its send buffer, STALL_SEND_BUFFER).
WRITE_SLICE = 8 * 1024
STALL_SEND_BUFFER = 64 * 1024  # ~1.3 s of pcm, 16 s of 32 kbit/s mp3: far more than a network path needs here


def client_socket(request: HttpRequest) -> socket.socket | None:
    """The client's socket where the server lends it to the app (gunicorn), else None."""
    sock: socket.socket | None = request.META.get("gunicorn.socket")
    return sock


def _asgi_socket(request: HttpRequest) -> socket.socket | None:
    """A duplicate of the connection's socket under an ASGI server (which hands the app none): the
    process's socket whose addresses are the scope's ``server`` and ``client``. Linux only; the
    caller closes it."""
    scope = getattr(request, "scope", None)
    ends = (scope.get("server"), scope.get("client")) if isinstance(scope, dict) else (None, None)
    if not all(isinstance(end, list | tuple) and len(end) == 2 and isinstance(end[1], int) for end in ends):
        return None  # a Unix socket (no port), or no addresses at all
    if not os.path.isdir("/proc/self/fd"):
        return None
    wanted = [(str(end[0]), end[1]) for end in ends if end is not None]
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError, ValueError):
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            duplicate = os.dup(int(name))
            try:
                sock = socket.socket(fileno=duplicate)
            except OSError:
                os.close(duplicate)
                continue
            try:
                if [tuple(sock.getsockname()[:2]), tuple(sock.getpeername()[:2])] == wanted:
                    return sock
            except OSError:
                pass
            sock.close()
    return None


def shut(request: HttpRequest) -> bool:
    """Shut the connection of ``request`` under an ASGI server, which then sees its client gone; False
    where its socket cannot be found."""
    sock = _asgi_socket(request)
    if sock is None:
        return False
    with sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


def limit_stalls(request: HttpRequest) -> None:
    """A listener that reads nothing for ``STALL_TIMEOUT`` seconds fails our next write, so its stream
    ends and its slot frees. A kernel send timeout, not ``settimeout``: that would make every read of
    the socket (the hang-up watcher's peek) wait too. Under ASGI the send buffer alone is kept small,
    so that a stream waiting on its listener notices soon and lends its slot (``asgi.Handover``)."""
    sock = client_socket(request)
    if sock is None:
        asgi_sock = _asgi_socket(request)
        if asgi_sock is not None:
            with asgi_sock, contextlib.suppress(OSError):
                asgi_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STALL_SEND_BUFFER)
        return
    seconds = get_config()["STALL_TIMEOUT"]
    with contextlib.suppress(OSError):
        timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        # A fixed, small send buffer: the kernel's grows to megabytes, which an unread stream fills
        # for minutes before a write would wait (drop_stalled counts from then).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STALL_SEND_BUFFER)


def peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def writable(sock: socket.socket, seconds: float, cancel: Cancellation) -> bool:
    """Whether ``sock`` takes more data within ``seconds`` (or fails, or the stream is cancelled: the
    next write says so); False when the listener has read nothing for that long."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if poller.poll(max(0, min(remaining, 0.25)) * 1000) or cancel.cancelled:
            return True
        if remaining <= 0:
            return False


def drop_stalled(
    chunks: Iterator[bytes], request: HttpRequest, cancel: Cancellation, slots: StreamSlots | None = None
) -> Iterator[bytes]:
    """``chunks``, each handed on once the client's socket can take it; a listener that reads nothing
    for ``STALL_TIMEOUT`` seconds ends its stream there: one log line, the connection shut. While it
    waits on its listener the stream lends its synthesis slot (``slots``) to others."""
    sock = client_socket(request)
    try:
        if sock is None:
            yield from chunks
            return
        seconds: float = get_config()["STALL_TIMEOUT"]
        for chunk in chunks:
            # In slices that a writable socket takes at once: the server's write never waits out its
            # send timeout (SO_SNDTIMEO, the last resort: a traceback per stream).
            for start in range(0, len(chunk), WRITE_SLICE):
                lent = slots is not None and not writable(sock, 0, cancel)
                if lent and slots is not None:  # a slow reader: its synthesis slot serves others meanwhile
                    slots.lend()
                ready = writable(sock, seconds, cancel)
                if lent and slots is not None and ready:
                    slots.retake(lambda: cancel.cancelled)
                if not ready:
                    logger.warning("listener read nothing for %g s: stream dropped", seconds)
                    cancel.cancel()
                    with contextlib.suppress(OSError):  # the server's last write then fails quietly (EPIPE)
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                yield chunk if len(chunk) <= WRITE_SLICE else chunk[start : start + WRITE_SLICE]
    finally:
        getattr(chunks, "close", lambda: None)()


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
