"""Issue 31 A: a synthesis's words and subtitles are its own client's (API key, or the page's session)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from bench.support.server import Server, page_config

TEXT = "The words of this synthesis belong to whoever asked for it."
KEYS = "key-a,key-b"


def read(url: str, headers: dict[str, str], session: requests.Session | None = None) -> list[requests.Response]:
    getter = session or requests
    return [
        getter.get(f"{url}/words", headers=headers, timeout=10),
        getter.get(f"{url}/subtitles", headers=headers, timeout=10),
        getter.get(f"{url}/subtitles", params={"format": "srt"}, headers=headers, timeout=10),
    ]


def page_visitor(server: Server) -> tuple[requests.Session, dict[str, str]]:
    browser = requests.Session()
    return browser, {"X-Speech-Page": page_config(browser, server.url)["pageToken"]}


def speak(server: Server, headers: dict[str, str], session: requests.Session | None = None) -> requests.Response:
    body = {"model": "piper", "voice": "alloy", "input": TEXT, "response_format": "mp3"}
    response = (session or requests).post(f"{server.url}/v1/audio/speech", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.content
    return response


def test_only_the_client_that_made_or_replayed_a_synthesis_reads_its_words(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_API_KEYS=KEYS, SPEECH_CACHE_AUDIO="1")
    key_a, key_b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    made = speak(server, key_a)
    url = f"{server.url}/v1/audio/speech/{made.headers['X-Speech-Id']}"

    own = read(url, key_a)
    assert [r.status_code for r in own] == [200, 200, 200]
    assert all(r.headers["Cache-Control"] == "no-store" for r in own)
    # Another key, and any page visitor: as if it never was.
    assert [r.status_code for r in read(url, key_b)] == [404, 404, 404]
    assert read(url, key_b)[0].json()["error"]["code"] == "speech_not_found"
    stranger, token = page_visitor(server)
    assert [r.status_code for r in read(url, token, stranger)] == [404, 404, 404]

    # Page visitors are told apart by their sessions, not by their (shared) address.
    first, first_token = page_visitor(server)
    theirs = speak(server, first_token, first)
    page_url = f"{server.url}/v1/audio/speech/{theirs.headers['X-Speech-Id']}"
    assert [r.status_code for r in read(page_url, first_token, first)] == [200, 200, 200]
    assert [r.status_code for r in read(page_url, key_a)] == [404, 404, 404]
    second, second_token = page_visitor(server)
    assert [r.status_code for r in read(page_url, second_token, second)] == [404, 404, 404]

    # A cached replay names the synthesis it replays: its client may read those words too.
    replayed = speak(server, second_token, second)
    assert replayed.headers["X-Speech-Cache"] == "hit"
    assert replayed.headers["X-Speech-Id"] == theirs.headers["X-Speech-Id"]
    assert [r.status_code for r in read(page_url, second_token, second)] == [200, 200, 200]
    assert "belong" in read(page_url, second_token, second)[1].text
    third, third_token = page_visitor(server)
    assert [r.status_code for r in read(page_url, third_token, third)] == [404, 404, 404]
