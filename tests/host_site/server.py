"""Run tests/host_site from a fresh venv holding only the app's wheel, under gunicorn or uvicorn, at a script prefix."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from bench.support.install import build_wheel, venv_with
from bench.support.server import ROOT, Server, free_port, spawn, stop_server

PREFIX = "/site"
KEY = "host-key"


# The host's own commands: gunicorn takes the prefix off the path (SCRIPT_NAME); under ASGI Django does,
# from FORCE_SCRIPT_NAME, as it would behind a proxy that passes the whole path.
COMMANDS = {
    "gunicorn": ["gunicorn", "host_site.wsgi:application", "--bind", "127.0.0.1:{port}", "--worker-class", "gthread",
                 "--threads", "16", "--no-control-socket"],
    "uvicorn": ["uvicorn", "host_site.asgi:application", "--host", "127.0.0.1", "--port", "{port}"],
}  # fmt: skip


@contextlib.contextmanager
def host_site(work: Path, kinds: tuple[str, ...] = ("gunicorn",)) -> Iterator[dict[str, Server]]:
    """The host site served by each of ``kinds`` (one installed wheel, one database)."""
    python, site_packages = venv_with(build_wheel(work), work / "venv")
    site = work / "site"
    shutil.copytree(ROOT / "tests" / "host_site", site / "host_site", ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "SPEECH_"))},
        "DJANGO_SETTINGS_MODULE": "host_site.settings",
        "HOST_DB": str(site / "db.sqlite3"),
        "HOST_SCRIPT_NAME": PREFIX,
        "SCRIPT_NAME": PREFIX,  # gunicorn takes it off the path, as a proxy mounting the site would
        "HOST_SPEECH_KEYS": KEY,
    }
    where = subprocess.run([python, "-c", "import speech; print(speech.__file__)"], cwd=site, env=env, text=True,
                           capture_output=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(site_packages))  # the wheel, not the repository
    subprocess.run([python, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=site, env=env, check=True)
    servers: dict[str, Server] = {}
    try:
        for kind in kinds:
            servers[kind] = _serve(kind, python, site, env, work / f"{kind}.log")
        yield servers
    finally:
        for server in servers.values():
            stop_server(server)


def _serve(kind: str, python: Path, site: Path, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    module, *args = (arg.format(port=port) for arg in COMMANDS[kind])
    server = spawn([str(python), "-m", module, *args], site, env, f"http://127.0.0.1:{port}{PREFIX}", log, kind)
    deadline = time.monotonic() + 180  # a loaded machine warms the voice slowly
    while not _ready(server):
        if server.process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"{kind} did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return server


def _ready(server: Server) -> bool:
    try:
        return requests.get(f"{server.url}/", timeout=1).ok
    except requests.RequestException:
        return False
