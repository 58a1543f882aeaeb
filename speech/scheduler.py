"""One synthesis slot per core, granted earliest deadline first.

A listener's deadline is the moment its playback runs out of audio. Whoever will fall silent
soonest synthesises next; a listener far ahead waits. Waiting ends at once on cancellation.
The scheduler also knows the load: how many streams are being synthesised and how fast a slot
makes audio lately, from which a stream sizes its pieces (``pipeline.next_piece``).
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
# Slot seconds per audio second until pieces have been timed: piper's medium voices on one core
# of a slow machine. The pace is of recent audio: each second made weighs less by this much.
_FIRST_PACE = 0.3
_PACE_DECAY_PER_SECOND = 0.05


@dataclass(frozen=True)
class Grant:
    slot: int
    # Nobody else is synthesising or waiting: this run may use every core.
    alone: bool


class Scheduler:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = list(range(slots))
        self._waiting: list[tuple[float, int]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._streams = 0
        self._spent, self._made = _FIRST_PACE, 1.0  # decayed sums: slot seconds, audio seconds

    @property
    def busy(self) -> int:
        with self._cond:
            return self.slots - len(self._free)

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """One stream being synthesised, from its first piece to its last."""
        with self._cond:
            self._streams += 1
        try:
            yield
        finally:
            with self._cond:
                self._streams -= 1

    def made(self, seconds: float, audio_seconds: float) -> None:
        """A piece of ``audio_seconds`` took ``seconds`` in a one-core slot; a short piece counts for little."""
        if audio_seconds > 0:
            with self._cond:
                keep = (1 - _PACE_DECAY_PER_SECOND) ** audio_seconds
                self._spent = self._spent * keep + seconds
                self._made = self._made * keep + audio_seconds

    def round_cost(self) -> float:
        """Seconds a stream waits and synthesises, per second of audio it gets, while every stream in
        flight gets the same: each costs ``pace`` slot seconds per audio second, ``slots`` run at once."""
        with self._cond:
            return self._spent / self._made * max(1.0, self._streams / self.slots)

    @contextlib.contextmanager
    def slot(self, deadline: float, cancel: Cancellation) -> Iterator[Grant]:
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
            grant = Grant(slot=slot, alone=len(self._free) == self.slots - 1 and not self._waiting)
            self._cond.notify_all()
        try:
            yield grant
        finally:
            with self._cond:
                self._free.append(slot)
                self._cond.notify_all()


scheduler = Scheduler(slots=os.cpu_count() or 1)
