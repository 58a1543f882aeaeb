"""What a gunicorn worker holds, read from /proc: memory, open files, threads."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def worker_pid(master: int, timeout: float = 30.0) -> int:
    """The one worker of a gunicorn master (waits for it after a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = worker_pids(master)
        if len(pids) == 1 or time.monotonic() > deadline:
            assert len(pids) == 1, pids
            return pids[0]
        time.sleep(0.1)


@dataclass(frozen=True)
class Usage:
    rss_mb: float
    fds: int
    threads: int


def usage(pid: int) -> Usage:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return Usage(
        rss_mb=int(status["VmRSS"].split()[0]) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
    )


def workers_usage(master: int) -> Usage:
    """What all of a gunicorn master's workers hold together (two of them while one hands over)."""
    total = Usage(0.0, 0, 0)
    for pid in worker_pids(master):
        try:
            one = usage(pid)
        except (FileNotFoundError, ProcessLookupError, KeyError):  # it has just exited (gone, or a zombie)
            continue
        total = Usage(total.rss_mb + one.rss_mb, total.fds + one.fds, total.threads + one.threads)
    return total


def settles(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """True once ``check()`` holds; polls, since a server lets go of things a moment after a client."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def goes_idle(pid: int, timeout: float, every: float = 0.5, still: float = 0.01) -> bool:
    """True once the process's CPU time grows less than ``still`` s in ``every`` s; False after ``timeout``."""
    deadline, before = time.monotonic() + timeout, cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(every)
        now = cpu_seconds(pid)
        if now - before < still:
            return True
        before = now
    return False


def wait_idle(pid: int, timeout: float = 120.0) -> None:
    """Until the process's CPU time stands still for half a second: whatever it does at start is done."""
    if not goes_idle(pid, timeout):
        raise AssertionError(f"process {pid} never went idle")
