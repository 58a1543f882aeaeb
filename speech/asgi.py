"""Streaming under ASGI: the work stays in a worker thread, each chunk crosses to the event loop.

Django sends a ``StreamingHttpResponse`` under ASGI by iterating it asynchronously; handed a
synchronous iterator, it reads it to the end before sending a byte. So under ASGI the response
body is ``stream(chunks, cancel)``: one worker thread per stream runs the synchronous chunks
(synthesis, upstream reads, cache and usage bookkeeping) and hands each chunk over as soon as it
exists. At most ``HANDOVER`` chunks wait for the event loop: when the server cannot send them as
fast (a slow reader), the worker waits instead of piling audio up in memory.

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
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import async_to_sync
from django.db import connections

from speech.cancellation import Cancellation, ClientClosed, close
from speech.engines.base import SpeechStream

HANDOVER = 8  # chunks on their way to the event loop, at most
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
    future = _starting.submit(start)
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
    """A bounded queue from one worker thread (``put``) to the event loop (``get``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | _End] = asyncio.Queue()
        self._room = threading.Semaphore(size)
        self._open = True

    def put(self, item: bytes | _End) -> bool:
        """Hand an item over, waiting while ``size`` are pending; False once the reader is gone."""
        self._room.acquire()
        if not self._open:
            self._room.release()  # for the next put, which must not wait either
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server is gone
            return False
        return True

    async def get(self) -> bytes | _End:
        item = await self._queue.get()
        self._room.release()
        return item

    def close(self) -> None:
        """The reader is gone: a waiting (or later) ``put`` returns False at once."""
        self._open = False
        self._room.release()


async def stream(chunks: Iterator[bytes], cancel: Cancellation) -> AsyncIterator[bytes]:
    """``chunks`` served to the event loop as they are made; cancelled when the client hangs up."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():  # the client left while the view ran: end at once
        cancel.cancel()
    handover = Handover(asyncio.get_running_loop(), HANDOVER)
    threading.Thread(target=_work, args=(chunks, handover, cancel), name="speech-stream", daemon=True).start()
    finished = False
    try:
        while not isinstance(item := await handover.get(), _End):
            yield item
        if item.error is not None:
            raise item.error
        finished = True
    finally:
        if not finished:  # the client hung up, or the server stopped sending: stop the work now
            cancel.cancel()
        handover.close()


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
