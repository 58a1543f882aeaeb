"""Fixtures that run the product the way users do: a real gunicorn server on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The site as `make run` serves it (gunicorn, gthread, warm-up hook), on a free port."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    stop_server(srv)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server with extra environment; stopped after the test."""
    started: list[Server] = []

    def make(**env: str) -> Server:
        srv = start_server(tmp_path, env)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        stop_server(srv)
