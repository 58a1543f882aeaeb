"""Every client mistake gets an OpenAI-shaped error with the right status and `param`."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from bench.support.server import Server

VALID = {"model": "piper", "voice": "alloy", "input": "Hello."}


def assert_error(response: requests.Response, status: int, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]
    assert "Traceback" not in response.text
    return dict(error)


def post(server: Server, body: Any) -> requests.Response:
    return requests.post(f"{server.url}/v1/audio/speech", json=body, timeout=30)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": 123}, "input"),
        ({"speed": "fast"}, "speed"),
        ({"model": ["tts-1"]}, "model"),
        ({"voice": "nobody"}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"model": "tts-9"}, "model"),
        ({"input": ""}, "input"),
        ({"input": " \n\t "}, "input"),
        ({"input": "a" * 4097}, "input"),
        ({"speed": 0.1}, "speed"),
        ({"speed": 4.5}, "speed"),
        ({"stream_format": "websocket"}, "stream_format"),
        ({"speed": "2"}, "speed"),  # JSON types are strict: a string or a boolean is not a speed
        ({"speed": True}, "speed"),
    ],
)
def test_bad_field(server: Server, change: dict[str, Any], param: str) -> None:
    error = assert_error(post(server, {**VALID, **change}), 400, param)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("missing", ["model", "input", "voice"])
def test_missing_field(server: Server, missing: str) -> None:
    body = {key: value for key, value in VALID.items() if key != missing}
    error = assert_error(post(server, body), 400, missing)
    assert missing in error["message"]


def test_input_at_the_limit_is_accepted(server: Server) -> None:
    response = server.post_speech(input="Hi. " * 1024, response_format="pcm")
    assert response.status_code == 200
    response.close()


def test_malformed_json(server: Server) -> None:
    response = requests.post(
        f"{server.url}/v1/audio/speech",
        data=b'{"model": "piper", "input": ',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert assert_error(response, 400, None)["code"] == "invalid_json"


def test_body_must_be_an_object(server: Server) -> None:
    assert assert_error(post(server, ["piper", "alloy", "Hello."]), 400, None)["code"] == "invalid_json"


def test_wrong_content_type(server: Server) -> None:
    response = requests.post(f"{server.url}/v1/audio/speech", data="model=piper&voice=alloy&input=Hello", timeout=30)
    assert assert_error(response, 400, None)["code"] == "unsupported_content_type"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "TRACE"])
def test_wrong_method_on_the_post_route(server: Server, method: str) -> None:
    response = requests.request(method, f"{server.url}/v1/audio/speech", timeout=30)
    assert assert_error(response, 405, None)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"


def test_wrong_method_on_a_get_route(server: Server) -> None:
    response = requests.post(f"{server.url}/v1/models", json={}, timeout=30)
    assert_error(response, 405, None)
    assert response.headers["Allow"] == "GET"


def test_empty_body(server: Server) -> None:
    response = requests.post(
        f"{server.url}/v1/audio/speech", data=b"", headers={"Content-Type": "application/json"}, timeout=30
    )
    error = assert_error(response, 400, None)
    assert "None" not in error["message"]
    assert "JSON object" in error["message"]


def test_unknown_endpoint(server: Server) -> None:
    assert_error(requests.get(f"{server.url}/v1/audio/nothing", timeout=30), 404, None)


def test_body_too_large(server: Server) -> None:
    response = requests.post(
        f"{server.url}/v1/audio/speech",
        data=b'{"input": "' + b"a" * 3_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_error(response, 413, None)


def test_input_limit_is_configurable(make_server: Any) -> None:
    server = make_server(SPEECH_MAX_INPUT_CHARS="50")
    assert_error(post(server, {**VALID, "input": "a" * 51}), 400, "input")
    assert post(server, {**VALID, "input": "Short enough."}).status_code == 200


def test_openapi_docs_and_schema(server: Server) -> None:
    """Regression: the API is mounted inside the app's namespace, and ninja must reverse through it."""
    assert requests.get(f"{server.url}/v1/docs", timeout=30).status_code == 200
    schema = requests.get(f"{server.url}/v1/openapi.json", timeout=30).json()
    assert "/v1/audio/speech" in schema["paths"]
