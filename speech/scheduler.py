"""One synthesis slot per core, granted earliest deadline first.

A listener's deadline is the moment its playback runs out of audio. Whoever will fall silent
soonest synthesises next; a listener far ahead waits. Waiting ends at once on cancellation.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from speech.cancellation import Cancellation, Cancelled

_POLL_SECONDS = 0.05


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
        self._waiting: list[tuple[float, int]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()

    @property
    def busy(self) -> int:
        with self._cond:
            return self.slots - len(self._free)

    @contextlib.contextmanager
    def slot(self, deadline: float, cancel: Cancellation, first: bool = False) -> Iterator[Grant]:
        ticket = (deadline, next(self._order))
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            while not (self._free and self._waiting[0] == ticket):
                if cancel.cancelled:
                    self._waiting.remove(ticket)
                    heapq.heapify(self._waiting)
                    self._cond.notify_all()
                    raise Cancelled
                self._cond.wait(_POLL_SECONDS)
            heapq.heappop(self._waiting)
            slot = self._free.pop()
            grant = Grant(slot=slot, alone=len(self._free) == self.slots - 1 and not self._waiting, first=first)
            self._cond.notify_all()
        try:
            yield grant
        finally:
            with self._cond:
                self._free.append(slot)
                self._cond.notify_all()


scheduler = Scheduler(slots=os.cpu_count() or 1)
