"""Run tests/host_site from a fresh venv holding only the app's wheel, under gunicorn, at a script prefix."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.host_site.install import build_wheel, venv_with
from tests.support.server import ROOT, Server, free_port, stop_server

PREFIX = "/site"
KEY = "host-key"


@contextlib.contextmanager
def host_site(work: Path) -> Iterator[Server]:
    python, site_packages = venv_with(build_wheel(work), work / "venv")
    site = work / "site"
    shutil.copytree(ROOT / "tests" / "host_site", site / "host_site", ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
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
    log = work / "gunicorn.log"
    args = ["host_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "16"]
    process = subprocess.Popen(
        [python, "-m", "gunicorn", *args],
        cwd=site,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}{PREFIX}", process, log)
    try:
        deadline = time.monotonic() + 60
        while not _ready(server):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield server
    finally:
        stop_server(server)


def _ready(server: Server) -> bool:
    try:
        return requests.get(f"{server.url}/", timeout=1).ok
    except requests.RequestException:
        return False
