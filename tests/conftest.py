"""Fixtures that run the product the way users do: a real server (gunicorn, or an ASGI one) on a free port;
a voice store that downloads from a fake hub."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from bench.support.fake_hub import FakeHub
from bench.support.server import STREAMING_SERVERS, Server, start_server, stop_server
from tests.support.raw_upstream import RawUpstream

# Generated tests draw the same examples on every run, so a result never depends on the draw; `make fuzz`
# (HYPOTHESIS_PROFILE=explore) draws new ones on each run, to look for what the fixed draw misses.
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", derandomize=False, database=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# What `make check` leaves out besides the browsers and the topology: tests that start another process (a
# server, a CLI, a venv). A test is one if it asks for a fixture that starts one, or its module starts one.
SERVER_FIXTURES = {"servers", "server", "each_server", "make_server", "site", "slow_site", "host"}
STARTS_PROCESSES = re.compile(r"start_server\(|subprocess\.|host_site\(|\bserve\(|Popen\(|make_site\(")


@functools.cache
def starts_processes(path: str) -> bool:
    return bool(STARTS_PROCESSES.search(Path(path).read_text()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        uses = set(getattr(item, "fixturenames", ()))
        if uses & SERVER_FIXTURES or (module is not None and starts_processes(module.__file__)):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Server]]:
    """One shared server of each kind, started when a test first asks for it, stopped at the end."""
    started: dict[str, Server] = {}

    def get(kind: str) -> Server:
        if kind not in started:
            started[kind] = start_server(tmp_path_factory.mktemp(kind), kind=kind)
        return started[kind]

    yield get
    for srv in started.values():
        stop_server(srv)


@pytest.fixture(scope="session")
def server(servers: Callable[[str], Server]) -> Server:
    """The site as `make run` serves it (gunicorn, gthread, warm-up hook), on a free port."""
    return servers("gunicorn")


@pytest.fixture(params=STREAMING_SERVERS)
def each_server(request: pytest.FixtureRequest, servers: Callable[[str], Server]) -> Server:
    """The site under each server the streaming tests cover (WSGI: gunicorn; ASGI: uvicorn)."""
    return servers(request.param)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server (``kind=`` gunicorn, uvicorn or daphne) with extra environment; stopped after the test."""
    started: list[Server] = []

    def make(kind: str = "gunicorn", **env: str) -> Server:
        srv = start_server(tmp_path, env, kind)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        stop_server(srv)


@pytest.fixture(scope="module")
def raw_upstream() -> Iterator[RawUpstream]:
    """An upstream that answers every request with the bytes a test sets in ``reply``, for one module."""
    upstream = RawUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture
def store(tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """An empty voice store that downloads from the test module's ``hub`` fixture. No rate limit, and no
    audio cache: a removed voice must not be replayed from it."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    settings.SPEECH = {"VOICES_DIR": str(tmp_path / "voices"), "RATE_LIMIT": None, "CACHE_AUDIO": False}
    return tmp_path / "voices"
