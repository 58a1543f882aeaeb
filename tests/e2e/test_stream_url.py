"""The GET stream behind the <audio> fallback: only for the page's own browser."""

from __future__ import annotations

import requests

from bench.support.server import Server, page_config
from tests.support.audio_check import duration

SPEECH = {"model": "piper", "voice": "alloy", "input": "Hello there.", "response_format": "mp3"}


def page_token(site: Server) -> tuple[requests.Session, str]:
    session = requests.Session()
    return session, page_config(session, site.url)["pageToken"]


def test_streams_audio_to_the_page_that_asked(site: Server) -> None:
    session, token = page_token(site)
    response = session.get(f"{site.url}/speech/stream", params={**SPEECH, "token": token}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert "Content-Length" not in response.headers
    assert 0.5 < duration(response.content, "mp3") < 3


def test_refuses_other_sites(site: Server) -> None:
    session, token = page_token(site)
    url = f"{site.url}/speech/stream"
    # Another site's <audio src> carries no cookie (SameSite=Lax), so a token alone is not enough.
    assert requests.get(url, params={**SPEECH, "token": token}, timeout=10).status_code == 401
    wrong = session.get(url, params={**SPEECH, "token": "0" * 40}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "bad_token"
    cross = session.get(url, params={**SPEECH, "token": token}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=10)
    assert cross.status_code == 401


def test_reports_bad_parameters_like_the_api(site: Server) -> None:
    session, token = page_token(site)
    response = session.get(f"{site.url}/speech/stream", params={**SPEECH, "speed": "9", "token": token}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "speed"
