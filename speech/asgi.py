"""Streaming under ASGI: the work stays in a worker thread, each chunk crosses to the event loop.

Django sends a ``StreamingHttpResponse`` under ASGI by iterating it asynchronously; handed a
synchronous iterator, it reads it to the end before sending a byte. So under ASGI the response
body is ``stream(chunks, cancel)``: one worker thread per stream runs the synchronous chunks
(synthesis, upstream reads, cache and usage bookkeeping) and hands each chunk over as soon as it
exists. Little waits for the event loop (one chunk, or ``HANDOVER_BYTES``): when the server cannot
send as fast (a slow reader), the worker waits instead of piling audio up in memory, and while it waits its
stream lends its synthesis slot to others (``StreamSlots.lend``), taking it back before it goes on,
as a stream waiting on its client's socket does under gunicorn (``hangup.drop_stalled``). A server
that could send nothing for ``STALL_TIMEOUT`` seconds has a listener who reads nothing: its stream is
dropped there, with one log line, and its connection shut (``hangup.shut``), so that the server sees
the client gone, as gunicorn's does.

Hang-ups: Django's ``ASGIHandler`` listens for ``http.disconnect`` from the moment the request
body is read and cancels the task serving the request. While the response is sent, the
``asyncio.CancelledError`` lands in ``stream``, which cancels the work at once. While the (sync)
view still runs, ``asgiref`` passes the cancellation on to a coroutine the view thread awaits
through ``async_to_sync``: ``opened`` waits that way for an engine to start (an upstream's first
byte can take seconds), so a hang-up then stops it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.db import connections
from django.http import HttpRequest

from speech import hangup
from speech.cancellation import Cancellation, close
from speech.conf import get_config
from speech.engines.base import SpeechStream
from speech.errors import ClientClosed

if TYPE_CHECKING:
    from speech.limits import StreamSlots

logger = logging.getLogger(__name__)

HANDOVER = 8  # chunks on their way to the event loop, at most
# ... and bytes, past the first chunk: a piece's pcm is up to ~700 KB, so eight of them held ~5 MB (a
# minute of audio) for a listener who reads nothing, before its stream noticed and lent its slot.
HANDOVER_BYTES = 64 * 1024
# A hand-over still waiting after this long is waiting on the listener: the stream lends its slot.
LEND_AFTER = 0.05
# Engines start here while the view's thread waits cancellably; a proxied stream may wait seconds.
_starting = ThreadPoolExecutor(max_workers=256, thread_name_prefix="speech-start")


def opened(start: Callable[[], SpeechStream], cancel: Cancellation) -> SpeechStream:
    """``start()``, run so that the client hanging up meanwhile cancels it (and raises ``ClientClosed``).

    Called from a sync view under ASGI, where ``asgiref`` relays the request task's cancellation.
    """
    try:
        return async_to_sync(_started)(start, cancel)
    except asyncio.CancelledError:
        raise ClientClosed("The client closed the connection.", code="client_closed_request") from None


async def _started(start: Callable[[], SpeechStream], cancel: Cancellation) -> SpeechStream:
    future = _starting.submit(contextvars.copy_context().run, start)  # its logs name the request id
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        cancel.cancel()
        future.add_done_callback(_close_unread)
        raise


def _close_unread(future: Future[SpeechStream]) -> None:
    if not future.cancelled() and future.exception() is None:
        close(future.result().chunks)


class _End:
    """The worker is done; ``error`` is what ended it early, if anything."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Handover:
    """A bounded queue from one worker thread (``put``) to the event loop (``get``): at most ``size``
    items, and past the first, at most ``most_bytes`` pending. A ``put`` still waiting after ``LEND_AFTER``
    (the loop cannot send: a slow reader) lends the stream's synthesis ``slots`` until it goes on."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, size: int, slots: StreamSlots | None = None, most_bytes: int = 0
    ) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | _End] = asyncio.Queue()
        self._size, self._most_bytes = size, most_bytes or HANDOVER_BYTES
        self._room = threading.Condition()
        self._count = self._bytes = 0  # pending
        self._open = True
        self._slots = slots

    def put(self, item: bytes | _End) -> bool:
        """Hand an item over, waiting while the queue is full; False once the reader is gone."""
        size = len(item) if isinstance(item, bytes) else 0
        if not self._wait(size, LEND_AFTER):
            lend = self._slots is not None and size > 0
            if lend and self._slots is not None:  # nothing is made while we wait: others may use the slot
                self._slots.lend()
            self._wait(size, None)
            if lend and self._slots is not None and self._open:
                self._slots.retake(lambda: not self._open)
        with self._room:
            if not self._open:
                return False
            self._count += 1
            self._bytes += size
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server is gone
            return False
        return True

    def _wait(self, size: int, seconds: float | None) -> bool:
        """Wait (up to ``seconds``) until an item of ``size`` bytes fits, or the reader is gone."""

        def room() -> bool:
            full = self._count >= self._size or (self._count > 0 and self._bytes + size > self._most_bytes)
            return not self._open or not full

        with self._room:
            return self._room.wait_for(room, seconds)

    async def get(self) -> bytes | _End:
        item = await self._queue.get()
        with self._room:
            self._count -= 1
            self._bytes -= len(item) if isinstance(item, bytes) else 0
            self._room.notify_all()
        return item

    def close(self) -> None:
        """The reader is gone: a waiting (or later) ``put`` returns False at once."""
        with self._room:
            self._open = False
            self._room.notify_all()


async def stream(
    chunks: Iterator[bytes], cancel: Cancellation, request: HttpRequest, slots: StreamSlots | None = None
) -> AsyncIterator[bytes]:
    """``chunks`` served to the event loop as they are made; cancelled when the client hangs up. While
    the loop cannot keep up (a slow reader), the stream's synthesis ``slots`` are lent to others; when
    the server could send nothing for ``STALL_TIMEOUT`` seconds, the stream is dropped."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():  # the client left while the view ran: end at once
        cancel.cancel()
    loop = asyncio.get_running_loop()
    handover = Handover(loop, HANDOVER, slots)
    work = functools.partial(contextvars.copy_context().run, _work, chunks, handover, cancel)  # logs name the request
    threading.Thread(target=work, name="speech-stream", daemon=True).start()
    seconds: float = get_config()["STALL_TIMEOUT"]
    finished = False
    try:
        while not isinstance(item := await handover.get(), _End):
            # The server sends the item before asking for the next: it waits here while it cannot.
            stalled = loop.call_later(seconds, _drop, request, handover, cancel, task, seconds)
            try:
                yield item
            finally:
                stalled.cancel()
        if item.error is not None:
            raise item.error
        finished = True
    finally:
        if not finished:  # the client hung up, or the server stopped sending: stop the work now
            cancel.cancel()
        handover.close()


def _drop(
    request: HttpRequest, handover: Handover, cancel: Cancellation, task: asyncio.Task[Any] | None, seconds: float
) -> None:
    """The listener read nothing for ``seconds``: stop the work, and shut the connection (its server
    then ends the response as a hang-up); without a socket to shut (a Unix socket), end the response."""
    logger.warning("listener read nothing for %g s: stream dropped", seconds)
    cancel.cancel()
    handover.close()
    if not hangup.shut(request) and task is not None:
        task.cancel()


def _work(chunks: Iterator[bytes], handover: Handover, cancel: Cancellation) -> None:
    """Run ``chunks`` to their end, or close them once nobody reads; always started, so cleanup runs."""
    error: BaseException | None = None
    try:
        for chunk in chunks:
            if cancel.cancelled or not handover.put(chunk):
                break
    except Exception as exc:  # raised again on the event loop, where the server handles it
        error = exc
    finally:
        try:
            close(chunks)
        finally:
            handover.put(_End(error))
            with contextlib.suppress(Exception):
                connections.close_all()  # this thread's database connections (usage records) end with it
