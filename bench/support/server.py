"""The harness that runs the product the way users do: a real server (gunicorn, or an ASGI one) on a free port."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


# Static files are collected once per test run and shared by every server started.
_STATIC_ROOT = Path(tempfile.mkdtemp(prefix="speech-static-"))
_MIGRATED_URLS: set[str] = set()


@functools.cache
def _templates() -> Path:
    """Where the database migrated once per settings module is kept (see migrate()), until the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="speech-db-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# How each server is started; HOST and PORT come from the environment, as for `make run`.
SERVERS = {
    "gunicorn": ["-m", "gunicorn", "-c", "gunicorn.conf.py"],
    "uvicorn": ["-m", "uvicorn", "ttsproject.asgi:application", "--host", "{HOST}", "--port", "{PORT}",
                "--timeout-graceful-shutdown", "5"],
    "daphne": ["-m", "daphne", "-b", "{HOST}", "-p", "{PORT}", "ttsproject.asgi:application"],
    "hypercorn": ["-m", "hypercorn", "-b", "{HOST}:{PORT}", "ttsproject.asgi:application"],
}  # fmt: skip
# The servers the streaming tests run against: WSGI's default and the ASGI one most sites use.
STREAMING_SERVERS = ["gunicorn", "uvicorn"]


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path, kind: str = "gunicorn") -> None:
        self.url = url
        self.process = process
        self.log = log
        self.kind = kind

    def post_speech(self, stream: bool = True, **body: object) -> requests.Response:
        payload = {"model": "piper", "voice": "alloy", **body}
        return requests.post(f"{self.url}/v1/audio/speech", json=payload, stream=stream, timeout=60)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp_path: Path, env: dict[str, str] | None = None, kind: str = "gunicorn") -> Server:
    """Start a server as `make run` does: migrated database, collected static files, warm voice."""
    port = free_port()
    log = tmp_path / f"{kind}-{port}.log"
    full_env = {
        **{name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"},
        "DJANGO_SECRET_KEY": "tests-only-secret-key-tests-only-secret-key-0123456789",
        "DJANGO_DEBUG": "0",
        # Tests that measure synthesis need it to happen: the audio cache is on only where asked for.
        "SPEECH_CACHE_AUDIO": "0",
        # Many requests from one address, many at once: limits are off unless a test sets them.
        "SPEECH_RATE_LIMIT": "off",
        "SPEECH_AUTH_FAILURE_LIMIT": "off",
        "SPEECH_MAX_STREAMS_PER_CLIENT": "0",
        "SPEECH_MAX_STREAMS": "0",
        "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "DJANGO_STATIC_ROOT": str(_STATIC_ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **(env or {}),
    }
    migrate(full_env)
    if not (_STATIC_ROOT / "staticfiles.json").exists():
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=full_env, check=True
        )
    process = subprocess.Popen(
        [sys.executable, *(arg.format(**full_env) for arg in SERVERS[kind])],
        cwd=ROOT,
        env=full_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # loading and warming the voice takes minutes on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/v1/models", timeout=1).status_code in (200, 401):  # 401: keys required
                return Server(url, process, log, kind)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_server(Server(url, process, log, kind))
    raise RuntimeError(f"{kind} did not start:\n{log.read_text()}")


def migrate(env: dict[str, str]) -> None:
    """The server's database, migrated. A new SQLite file is a copy of one migrated once per test process
    and settings module (every migration run on an empty file gives the same file, and `manage.py migrate`
    costs seconds of CPU per server); a DATABASE_URL a server of this process has migrated already is left
    as it is. Any other database (an existing file, a new DATABASE_URL) is migrated by `manage.py migrate`."""
    url = env.get("DATABASE_URL")
    if url in _MIGRATED_URLS:
        return
    database = Path(env["DJANGO_SQLITE_PATH"])
    if url is None and not database.exists():
        template = _templates() / f"{env.get('DJANGO_SETTINGS_MODULE', 'default')}.sqlite3"
        if not template.exists():
            _run_migrate({**env, "DJANGO_SQLITE_PATH": str(template)})
        # A settings module that keeps its database elsewhere made no file here: migrate its own.
        if template.exists() and not Path(f"{template}-wal").exists():  # all of it in the file: safe to copy
            shutil.copyfile(template, database)
            return
    _run_migrate(env)
    if url is not None:
        _MIGRATED_URLS.add(url)


def _run_migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def stop_server(server: Server) -> None:
    # Responses a test no longer holds may still keep their connection open, in a reference cycle, and
    # a stopping gunicorn gives every kept-alive connection 2 s for a request: collect them first (~0.1 s).
    if server.kind == "gunicorn":
        gc.collect()
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def spawn(command: list[str], cwd: Path, env: dict[str, str], url: str, log: Path, kind: str = "gunicorn") -> Server:
    """A server process of its own session (stop_server ends all of it), its output in ``log``."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    return Server(url, process, log, kind)


def page_config(browser: requests.Session, url: str) -> dict[str, Any]:
    """The player's configuration in the site's page, with the page token issued to ``browser``'s session."""
    html = browser.get(f"{url}/", timeout=10).text
    match = re.search(r'<script id="speech-player-config" type="application/json">(.*?)</script>', html)
    assert match
    config: dict[str, Any] = json.loads(match[1])
    return config


class _SourceAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def client_at(address: str) -> requests.Session:
    """A client whose connections come from another loopback address: its own identity for limits."""
    session = requests.Session()
    session.mount("http://", _SourceAdapter(address))
    return session
