"""A separate Django site (tests/host_site/) with the app installed from its wheel, mounted at /tts/,
the whole site served under a script prefix (/site, FORCE_SCRIPT_NAME) by gunicorn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bench.support.server import ROOT, Server, page_config
from tests.host_site.server import KEY, PREFIX, host_site
from tests.support.audio_check import duration


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with host_site(tmp_path_factory.mktemp("host")) as servers:
        yield servers["gunicorn"]


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
    headers = {"X-Speech-Page": page_config(browser, host.url)["pageToken"]}
    body = {"model": "piper", "voice": "alloy", "input": "The host's page speaks without a key."}
    spoken = browser.post(f"{host.url}/tts/v1/audio/speech", json=body, headers=headers, timeout=60)
    assert spoken.status_code == 200
    assert duration(spoken.content, "mp3") > 1.0


def test_the_app_static_files_are_served_from_the_package(host: Server) -> None:
    static = ROOT / "speech" / "static"
    files = sorted(path.relative_to(static).as_posix() for path in static.rglob("*") if path.is_file())
    assert "speech/player.js" in files
    for name in files:
        response = requests.get(f"{host.url}/static/{name}", timeout=10)
        assert response.status_code == 200, name
        assert response.content == (static / name).read_bytes()
