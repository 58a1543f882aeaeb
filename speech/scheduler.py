"""One synthesis slot per core, granted earliest deadline first, fairly between clients.

A listener's deadline is the moment its playback runs out of audio. Whoever will fall silent
soonest synthesises next; a listener far ahead waits. Waiting ends at once on cancellation.

Before deadlines come owners (a client's address, ``serve_as``): a waiter whose owner holds fewer
slots goes first. Else one address with many streams, all behind (an overloaded server), would keep
another client's first audio waiting behind a piece of each of them; with one stream per address,
or all from one, it is plain earliest deadline first.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from speech.cancellation import Cancellation, Cancelled

_POLL_SECONDS = 0.05
# Whose synthesis this context runs: set for the request being served (streams run in its context).
_owner: ContextVar[str] = ContextVar("speech_scheduler_owner", default="")


def serve_as(owner: str) -> None:
    """Count the synthesis of this context (a request and its stream) as ``owner``'s (its address)."""
    _owner.set(owner)


@dataclass(frozen=True)
class Grant:
    slot: int
    # Nobody else is synthesising or waiting: this run may use every core.
    alone: bool
    # The run makes a listener's first audio: nothing that can wait may lengthen it.
    first: bool = False


class Scheduler:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = list(range(slots))
        self._waiting: list[tuple[float, int, str]] = []  # (deadline, arrival, owner)
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._held: Counter[str] = Counter()  # slots held, by owner
        self._first: tuple[float, int, str] | None = None  # the next to be granted, while nothing changes

    def _next(self) -> tuple[float, int, str]:
        if self._first is None:
            self._first = min(self._waiting, key=lambda ticket: (self._held[ticket[2]], ticket))
        return self._first

    @property
    def busy(self) -> int:
        with self._cond:
            return self.slots - len(self._free)

    @contextlib.contextmanager
    def slot(self, deadline: float, cancel: Cancellation, first: bool = False) -> Iterator[Grant]:
        owner = _owner.get()
        ticket = (deadline, next(self._order), owner)
        with self._cond:
            self._waiting.append(ticket)
            self._first = None
            while not (self._free and self._next() == ticket):
                if cancel.cancelled:
                    self._waiting.remove(ticket)
                    self._first = None
                    self._cond.notify_all()
                    raise Cancelled
                self._cond.wait(_POLL_SECONDS)
            self._waiting.remove(ticket)
            slot = self._free.pop()
            self._held[owner] += 1
            self._first = None
            grant = Grant(slot=slot, alone=len(self._free) == self.slots - 1 and not self._waiting, first=first)
            self._cond.notify_all()
        try:
            yield grant
        finally:
            with self._cond:
                self._free.append(slot)
                self._held[owner] -= 1
                if not self._held[owner]:
                    del self._held[owner]
                self._first = None
                self._cond.notify_all()


scheduler = Scheduler(slots=os.cpu_count() or 1)
