"""Every API answer carries x-request-id, as OpenAI's do; a trusted proxy's own id is kept when it is plain."""

from __future__ import annotations

import re

import pytest
import requests

from bench.support.server import Server

REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/audio/speech", {"model": "piper", "voice": "alloy", "input": "Hi."}, 200),
        ("POST", "/v1/audio/speech", {"model": "piper", "voice": "nobody", "input": "Hi."}, 400),
        ("GET", "/v1/audio/speech", None, 405),
        ("GET", "/v1/models", None, 200),
        ("GET", "/v1/models/tts-1", None, 200),
        ("GET", "/v1/models/tts-9", None, 404),
        ("GET", "/v1/audio/voices", None, 200),
        ("GET", "/v1/nowhere", None, 404),
        ("GET", "/speech/stream?input=Hi.", None, 401),
    ],
)
def test_every_answer_has_a_request_id(server: Server, method: str, path: str, body: object, status: int) -> None:
    first = requests.request(method, f"{server.url}{path}", json=body, timeout=60)
    again = requests.request(method, f"{server.url}{path}", json=body, timeout=60)
    assert first.status_code == status, first.text
    assert REQUEST_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != again.headers["x-request-id"]


def test_an_id_from_a_client_that_is_no_trusted_proxy_is_replaced(server: Server) -> None:
    replaced = requests.get(f"{server.url}/v1/models", headers={"X-Request-ID": "lb-7f3a.2:9"}, timeout=30)
    assert REQUEST_ID.fullmatch(replaced.headers["x-request-id"])  # kept from a proxy: test_trusted_proxy.py
