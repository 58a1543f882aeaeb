"""Earliest-deadline-first slot granting and cancellation, without the engine."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from speech import scheduler as scheduler_module
from speech.cancellation import Cancellation, Cancelled
from speech.scheduler import Scheduler, serve_as


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_waiters_are_served_earliest_deadline_first() -> None:
    scheduler = Scheduler(slots=1)
    order: list[str] = []
    release = threading.Event()

    def hold() -> None:
        with scheduler.slot(0.0, Cancellation()):
            release.wait()

    def wait_for_slot(name: str, deadline: float) -> None:
        with scheduler.slot(deadline, Cancellation()):
            order.append(name)

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: scheduler.busy == 1)
    waiters = [
        threading.Thread(target=wait_for_slot, args=args) for args in [("late", 3.0), ("urgent", 1.0), ("mid", 2.0)]
    ]
    for thread in waiters:
        thread.start()
    wait_until(lambda: len(scheduler._waiting) == 3)
    release.set()
    for thread in [holder, *waiters]:
        thread.join(5)
    assert order == ["urgent", "mid", "late"]


def test_one_slot_per_core_never_more() -> None:
    scheduler = Scheduler(slots=2)
    peak = 0
    lock = threading.Lock()
    inside = 0

    def work() -> None:
        nonlocal peak, inside
        with scheduler.slot(time.monotonic(), Cancellation()):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert peak == 2


def test_cancelled_waiter_leaves_the_queue_at_once() -> None:
    scheduler = Scheduler(slots=1)
    cancel = Cancellation()
    outcome: list[str] = []
    release = threading.Event()

    def hold() -> None:
        with scheduler.slot(0.0, Cancellation()):
            release.wait()

    def wait_then_cancelled() -> None:
        try:
            with scheduler.slot(1.0, cancel):
                outcome.append("granted")
        except Cancelled:
            outcome.append("cancelled")

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: scheduler.busy == 1)
    waiter = threading.Thread(target=wait_then_cancelled)
    waiter.start()
    wait_until(lambda: len(scheduler._waiting) == 1)
    started = time.monotonic()
    cancel.cancel()
    waiter.join(5)
    assert outcome == ["cancelled"]
    assert time.monotonic() - started < 1.0
    assert scheduler._waiting == []
    release.set()
    holder.join(5)
    with scheduler.slot(2.0, Cancellation()):  # the slot is free again for the next one
        assert scheduler.busy == 1


def test_alone_only_when_nobody_else_runs_or_waits() -> None:
    scheduler = Scheduler(slots=2)
    with scheduler.slot(0.0, Cancellation()) as first:
        assert first.alone
        with scheduler.slot(0.0, Cancellation()) as second:
            assert not second.alone


def test_cancelled_before_asking_never_gets_a_slot() -> None:
    scheduler = Scheduler(slots=1)
    cancel = Cancellation()
    cancel.cancel()
    with scheduler.slot(0.0, Cancellation()), pytest.raises(Cancelled), scheduler.slot(1.0, cancel):
        pass


def test_an_address_holding_a_core_cannot_keep_another_addresss_newcomer_waiting() -> None:
    """Issue 31's flood: one address's streams, all behind (the earliest deadlines), held both cores;
    another address's newcomer (due later) waited behind a piece of each of them. Fewer slots held
    goes first: it gets the next free core."""
    scheduler = Scheduler(slots=2)
    order: list[str] = []
    release = [threading.Event(), threading.Event()]

    def hold(done: threading.Event) -> None:
        serve_as("ip:attacker")
        with scheduler.slot(0.0, Cancellation()):
            done.wait()

    def wait_for_slot(owner: str, name: str, deadline: float) -> None:
        serve_as(owner)
        with scheduler.slot(deadline, Cancellation()):
            order.append(name)

    holders = [threading.Thread(target=hold, args=(done,)) for done in release]
    for thread in holders:
        thread.start()
    wait_until(lambda: scheduler.busy == 2)
    waiters = [
        threading.Thread(target=wait_for_slot, args=args)
        for args in [("ip:attacker", "attacker, behind", 1.0), ("ip:normal", "normal, due later", 10.0)]
    ]
    for thread in waiters:
        thread.start()
    wait_until(lambda: len(scheduler._waiting) == 2)
    release[0].set()
    wait_until(lambda: len(order) == 2)  # the normal one's done at once, then the attacker's
    release[1].set()
    for thread in [*holders, *waiters]:
        thread.join(5)
    assert order == ["normal, due later", "attacker, behind"]


def test_a_stream_counts_as_its_clients_address(db: None) -> None:
    """``Track`` (every stream, REST or live) names the address its synthesis is served as."""
    from speech.clients import Client
    from speech.engines.base import SpeechRequest
    from speech.usage import Track

    client = Client(id="key:a", scope="key:a", rate=None, max_streams=0, address="ip:127.0.0.9")
    track = Track(client, SpeechRequest(model="piper", input="Hello.", voice="alloy"), "req_test", local=True)

    def served_as() -> str:
        with track:
            pass
        track.finish(200)
        return scheduler_module._owner.get()

    assert contextvars.copy_context().run(served_as) == "ip:127.0.0.9"
