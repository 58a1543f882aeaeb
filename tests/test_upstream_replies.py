"""What an upstream says never reaches the client as it was said: errors are rebuilt, odd bodies refused.

A raw upstream sends exact bytes; the site runs with its audio cache on.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from bench.support.server import Server, start_server, stop_server
from tests.support.raw_upstream import RawUpstream, http

KEY = "sk-replies-AbCdEf0123456789"


@pytest.fixture(scope="module")
def site(raw_upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": raw_upstream.url,
        "OPENAI_TIMEOUT": "5",
        "SPEECH_CACHE_AUDIO": "1",
        "SPEECH_TRUSTED_PROXIES": "127.0.0.1",  # the tests' requests play the proxy whose X-Request-ID is kept
    }
    server = start_server(tmp_path_factory.mktemp("upstream-replies"), env)
    yield server
    stop_server(server)


def speak(site: Server, text: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    body = {"model": "tts-1", "voice": "alloy", "input": text or f"Hello {uuid.uuid4().hex}."}
    return requests.post(f"{site.url}/v1/audio/speech", json=body, headers=headers or {}, timeout=30)


def refusal(error: dict[str, object]) -> bytes:
    return http("400 Bad Request", "application/json", json.dumps({"error": error}).encode())


LEAKS: dict[str, dict[str, object]] = {
    "key in param": {"message": "Bad.", "type": "invalid_request_error", "param": KEY, "code": None},
    "key in code": {"message": "Bad.", "type": "invalid_request_error", "param": "input", "code": KEY},
    "key upper case": {"message": f"Key {KEY.upper()} is bad.", "type": "x", "param": None, "code": None},
    "another sk- key": {"message": "Key sk-proj-Zz9_8yY-7 leaked.", "type": "x", "param": None, "code": None},
    "nested": {"message": {"detail": KEY}, "type": "x", "param": {"k": KEY}, "code": [KEY], "extra": KEY},
}


@pytest.mark.parametrize("name", list(LEAKS))
def test_upstream_errors_are_rebuilt_never_relayed(site: Server, raw_upstream: RawUpstream, name: str) -> None:
    raw_upstream.reply = refusal(LEAKS[name])
    response = speak(site)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] in (None, "input")
    assert isinstance(error["message"], str)
    assert KEY.lower() not in response.text.lower()
    assert not re.search(r"sk-[A-Za-z0-9_-]{6,}", response.text)


def test_a_plain_upstream_refusal_keeps_its_message_param_and_code(site: Server, raw_upstream: RawUpstream) -> None:
    raw_upstream.reply = refusal(
        {"message": "Input is too long.", "type": "invalid_request_error", "param": "input", "code": "too_long"}
    )
    error = speak(site).json()["error"]
    assert (error["message"], error["param"], error["code"]) == ("Input is too long.", "input", "too_long")


def test_an_absurd_retry_after_is_clamped(site: Server, raw_upstream: RawUpstream) -> None:
    body = b'{"error": {"message": "slow down"}}'
    head = f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    raw_upstream.reply = (head + f"Retry-After: {'9' * 300}\r\n\r\n").encode() + body
    response = speak(site)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) <= 600


def test_json_without_a_content_type_is_not_audio(site: Server, raw_upstream: RawUpstream) -> None:
    body = b'{"error": {"message": "quota exceeded"}}'
    raw_upstream.reply = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    response = speak(site)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_not_audio"


def test_an_unframed_body_is_never_cached(site: Server, raw_upstream: RawUpstream) -> None:
    """Neither length nor chunks: the end of the body is the connection's, so a cut looks complete."""
    audio = b"\xff\xf3" + bytes(6000)
    raw_upstream.reply = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nConnection: close\r\n\r\n" + audio
    text = f"Unframed {uuid.uuid4().hex}."
    first, again = speak(site, text), speak(site, text)
    assert (first.content, again.content) == (audio, audio)
    assert (first.headers.get("X-Speech-Cache"), again.headers.get("X-Speech-Cache")) == (None, None)
    # The same body with a length is cached, and replayed; a Range with absurd numbers is ignored.
    raw_upstream.reply = http("200 OK", "audio/mpeg", audio)
    text = f"Framed {uuid.uuid4().hex}."
    assert speak(site, text).headers["X-Speech-Cache"] == "miss"
    replay = speak(site, text, headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert replay.status_code == 200
    assert replay.headers["X-Speech-Cache"] == "hit"
    assert replay.content == audio


def test_upstream_failures_are_logged_with_the_request_id(site: Server, raw_upstream: RawUpstream) -> None:
    raw_upstream.reply = refusal({"message": "No.", "type": "invalid_request_error", "param": None, "code": None})
    response = speak(site, headers={"X-Request-ID": f"trace-{uuid.uuid4().hex[:12]}"})
    assert response.status_code == 400
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("trace-")
    assert re.search(rf"\[{request_id}\] upstream 'openai' answered HTTP 400", site.log_text())
