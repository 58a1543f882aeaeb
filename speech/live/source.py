"""The text of a live response: a ``str``, an iterable or an async iterable of fragments, read into a queue.

The source is read apart from the synthesis, so a fragment is taken the moment the source has it,
and closed the moment the listener hangs up, which ends whatever feeds it (an LLM's request):

- a synchronous iterable is read by a thread of its own. A generator is closed by that thread as
  soon as it hands over the fragment it is making (Python cannot close a running generator); any
  other iterator, and an iterable with its own ``close()`` (openai's ``Stream``), is closed at once.
- an asynchronous iterable is read by a task: on the request's event loop under ASGI, else on an
  event loop of its own in a thread. The task is cancelled at once; then ``aclose()`` is awaited.

A source that raises ends the text there: the error is logged, the reader gets what came before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import queue
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from speech.cancellation import Cancellation

logger = logging.getLogger("speech.live")

Text: TypeAlias = str | Iterable[str | None] | AsyncIterable[str | None]


@dataclass(frozen=True)
class Ended:
    """The source has no more text; ``error`` is what ended it early, if anything."""

    error: BaseException | None = None


# Put on the queue when the listener hangs up, to wake a reader waiting for text.
WAKE = Ended()
Item: TypeAlias = str | Ended


class Source:
    def __init__(self, text: Text) -> None:
        self.text = text
        self.items: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.is_async = not isinstance(text, str) and hasattr(text, "__aiter__")
        if not isinstance(text, str) and not self.is_async and not hasattr(text, "__iter__"):
            raise TypeError(f"SpeechResponse takes a str, an iterable or an async iterable of str, not {type(text)!r}")
        self.started = False
        self._lock = threading.Lock()  # held while the reading thread is inside the iterator
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    # Starting.

    def start(self, cancel: Cancellation) -> None:
        """Read the source from now on (once); a thread for anything the caller's event loop does not read."""
        if self.started:
            return
        self.started = True
        cancel.on_cancel(self._stop).__enter__()  # for the stream's whole life
        if isinstance(self.text, str):
            self._put(self.text)
            self.items.put(Ended())
            return
        target = self._read_async_in_thread if self.is_async else self._read
        run = contextvars.copy_context().run  # its log lines name the request
        threading.Thread(target=run, args=(target, cancel), name="speech-live-source", daemon=True).start()

    def start_on_loop(self, cancel: Cancellation) -> asyncio.Task[None] | None:
        """Under ASGI: read an async source on the running event loop (where it was made)."""
        if not self.is_async or self.started:
            return None
        self.started = True
        cancel.on_cancel(self._stop).__enter__()
        return asyncio.get_running_loop().create_task(self._read_async(cancel))

    def discard(self) -> None:
        """Close a source that will never be read (the response was refused)."""
        self._closed = True
        if self.is_async:
            with contextlib.suppress(RuntimeError):
                task = asyncio.get_running_loop().create_task(self._aclose(self._async_iterator()))
                _closing.add(task)  # the loop keeps only a weak reference to a task
                task.add_done_callback(_closing.discard)
                return
            with contextlib.suppress(Exception):
                asyncio.run(self._aclose(self._async_iterator()))
        else:
            self._close_now()

    # Reading.

    def _put(self, fragment: Any) -> None:
        if fragment is None:  # an LLM's delta without content
            return
        if not isinstance(fragment, str):
            raise TypeError(f"a text fragment must be a str, not {type(fragment)!r}")
        if fragment:
            self.items.put(fragment)

    def _read(self, cancel: Cancellation) -> None:
        error: BaseException | None = None
        iterator: Iterator[Any] | None = None
        try:
            with self._lock:
                iterator = self._iterator = iter(self.text)  # type: ignore[arg-type]
            while not cancel.cancelled:
                with self._lock:
                    if self._closed:
                        break
                    fragment = next(iterator, _DONE)
                if fragment is _DONE or cancel.cancelled:
                    break
                self._put(fragment)
        except Exception as exc:
            error = exc
            logger.exception("the text source raised; the speech ends at its last complete sentence")
        finally:
            with self._lock:
                self._close_now()
            self.items.put(Ended(error))

    def _close_now(self) -> None:
        """Close the iterator and the iterable (called with the reading thread out of them)."""
        self._closed = True
        for thing in (getattr(self, "_iterator", None), self.text):
            close = getattr(thing, "close", None)
            if close is not None and not isinstance(thing, str):
                try:
                    close()
                except Exception:
                    logger.exception("closing the text source failed")

    def _stop(self) -> None:
        """The listener hung up: close the source now, or as soon as its thread is out of it."""
        self._closed = True
        self.items.put(WAKE)
        if self.is_async:
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop has ended: so has the task
                    loop.call_soon_threadsafe(task.cancel)
            return
        if self._lock.acquire(blocking=False):  # the thread is between fragments: close it here
            try:
                self._close_now()
            finally:
                self._lock.release()
            return
        iterator = getattr(self, "_iterator", None)
        if iterator is not None and not inspect.isgenerator(iterator):
            # Not a generator, so it may be closed while a thread waits in it, which ends the wait
            # (an HTTP response closed under a blocked read): an LLM request ends now, not at its next token.
            self._close_now()

    def _read_async_in_thread(self, cancel: Cancellation) -> None:
        try:
            asyncio.run(self._read_async(cancel))
        except BaseException:  # pragma: no cover - _read_async reports its own errors
            logger.exception("the text source's event loop failed")
            self.items.put(Ended())

    def _async_iterator(self) -> AsyncIterator[Any]:
        text: AsyncIterable[Any] = self.text  # type: ignore[assignment]
        return aiter(text)

    async def _read_async(self, cancel: Cancellation) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        error: BaseException | None = None
        iterator = self._async_iterator()
        try:
            if cancel.cancelled or self._closed:
                return
            async for fragment in iterator:
                if cancel.cancelled:
                    break
                self._put(fragment)
        except asyncio.CancelledError:
            pass  # the listener hung up (the task has only this one use: it ends here)
        except Exception as exc:
            error = exc
            logger.exception("the text source raised; the speech ends at its last complete sentence")
        finally:
            await self._aclose(iterator)
            self.items.put(Ended(error))

    async def _aclose(self, iterator: AsyncIterator[Any]) -> None:
        for thing in (iterator, self.text):
            for name in ("aclose", "close"):
                close = getattr(thing, name, None)
                if close is None:
                    continue
                try:
                    result = close()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("closing the text source failed")
                break


_DONE = object()
_closing: set[asyncio.Task[None]] = set()
