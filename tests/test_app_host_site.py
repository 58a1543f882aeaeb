"""A separate Django site (tests/host_site/) with the app installed from its wheel, mounted at /tts/,
the whole site served under a script prefix (/site, FORCE_SCRIPT_NAME) by gunicorn."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from tests.audio_check import duration
from tests.conftest import ROOT, Server, free_port, stop_server
from tests.host_site.install import build_wheel, venv_with

PREFIX = "/site"
KEY = "host-key"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("host")
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
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if requests.get(f"{server.url}/", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield server
    stop_server(server)


def test_the_api_under_the_prefix(host: Server) -> None:
    body = {"model": "piper", "voice": "alloy", "input": "Spoken from inside someone else's site."}
    auth = {"Authorization": f"Bearer {KEY}"}
    response = requests.post(f"{host.url}/tts/v1/audio/speech", json=body, headers=auth, timeout=60)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert 1.0 < duration(response.content, "mp3") < 6.0
    assert requests.get(f"{host.url}/tts/v1/models", headers=auth, timeout=10).ok
    assert requests.post(f"{host.url}/tts/v1/audio/speech", json=body, timeout=10).status_code == 401
    missing = requests.get(f"{host.url}/tts/v1/nowhere", headers=auth, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_urls_carry_the_prefix_and_the_page_needs_no_key(host: Server) -> None:
    browser = requests.Session()
    page = browser.get(f"{host.url}/", timeout=10)
    assert f"{PREFIX}/tts/v1/audio/speech" in page.text
    assert KEY not in page.text
    headers = {"X-CSRFToken": browser.cookies["csrftoken"], "Origin": host.url.removesuffix(PREFIX)}
    body = {"model": "piper", "voice": "alloy", "input": "The host's page speaks without a key."}
    spoken = browser.post(f"{host.url}/tts/v1/audio/speech", json=body, headers=headers, timeout=60)
    assert spoken.status_code == 200
    assert duration(spoken.content, "mp3") > 1.0
