"""Who may use /v1/*, and how much: keys, the site's own page, rate limits, stream caps, headers."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import requests

from bench.support.procstat import settles
from bench.support.server import ROOT, Server, page_config

# Minutes of raw PCM: far more than socket buffers hold, so the stream stays open while unread.
LONG = ("This sentence keeps the stream open for a good while, so that it still holds its slot. " * 50)[:4000]
KEYS = "key-a,key-b"


def post(
    server: Server, key: str | None = None, text: str = "Hello there.", headers: dict[str, str] | None = None
) -> requests.Response:
    headers = {**(headers or {}), **({"Authorization": f"Bearer {key}"} if key else {})}
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "pcm"}
    return requests.post(f"{server.url}/v1/audio/speech", json=body, headers=headers, stream=True, timeout=60)


def hold(response: requests.Response) -> Iterator[bytes]:
    """Read the first chunk and keep the stream open (dropping the iterator would close the connection)."""
    assert response.status_code == 200
    chunks = response.iter_content(1024)
    next(chunks)
    return chunks


class Listener:
    """Reads a stream in a thread as a player does, until it is closed: a stream whose listener reads
    nothing lends its synthesis slot to others (speech.limits), so holding a slot takes one that reads."""

    def __init__(self, response: requests.Response) -> None:
        assert response.status_code == 200
        self.response, self.received = response, 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert settles(lambda: self.received > 0, timeout=30)

    def _read(self) -> None:
        with contextlib.suppress(requests.RequestException, AttributeError, ValueError):  # closed under it
            for chunk in self.response.iter_content(1024):
                self.received += len(chunk)

    def close(self) -> None:
        self.response.close()
        self.thread.join(timeout=10)


def assert_openai_error(response: requests.Response, status: int, kind: str, code: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind
    assert error["code"] == code
    assert error["message"]


def test_keys_are_required_when_configured(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_API_KEYS=KEYS)

    missing = post(server)
    assert_openai_error(missing, 401, "authentication_error", "missing_api_key")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert_openai_error(post(server, key="key-c"), 401, "authentication_error", "invalid_api_key")
    assert requests.get(f"{server.url}/v1/models", timeout=10).status_code == 401

    ok = post(server, key="key-b")
    assert ok.status_code == 200
    assert len(ok.content) > 1000
    assert requests.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer key-a"}, timeout=10).ok


def test_the_sites_own_page_works_without_a_key(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_API_KEYS=KEYS)
    browser = requests.Session()
    token = page_config(browser, server.url)["pageToken"]
    assert "key-a" not in browser.get(f"{server.url}/", timeout=10).text
    body = {"model": "piper", "voice": "alloy", "input": "Hello from the page."}
    page = {"X-Speech-Page": token}

    spoken = browser.post(f"{server.url}/v1/audio/speech", json=body, headers=page, timeout=60)
    assert spoken.status_code == 200
    assert len(spoken.content) > 1000
    assert browser.get(f"{server.url}/v1/audio/voices", headers=page, timeout=10).ok

    # Without the token, with a forged one, or without the session it belongs to: no.
    assert browser.post(f"{server.url}/v1/audio/speech", json=body, timeout=10).status_code == 401
    forged = {"X-Speech-Page": token[:-4] + "AAAA"}
    assert browser.post(f"{server.url}/v1/audio/speech", json=body, headers=forged, timeout=10).status_code == 401
    assert browser.get(f"{server.url}/v1/audio/voices", headers=forged, timeout=10).status_code == 401
    assert requests.post(f"{server.url}/v1/audio/speech", json=body, headers=page, timeout=10).status_code == 401


def test_rate_limit_per_key(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_API_KEYS=KEYS, SPEECH_RATE_LIMIT="3/hour")

    def models(key: str) -> requests.Response:
        return requests.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)

    assert [models("key-a").status_code for _ in range(3)] == [200, 200, 200]
    limited = models("key-a")
    assert_openai_error(limited, 429, "rate_limit_error", "rate_limit_exceeded")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600 * 1.1  # the window slides in tenths of the period
    assert models("key-b").status_code == 200  # another client has its own budget


def wait_until_accepted(server: Server, key: str) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        response = post(server, key=key)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        response.close()
        time.sleep(0.1)


def test_concurrent_streams_per_client(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_API_KEYS=KEYS, SPEECH_MAX_STREAMS_PER_CLIENT="1")
    first = post(server, key="key-a", text=LONG)
    held = hold(first)

    second = post(server, key="key-a")
    assert_openai_error(second, 429, "rate_limit_error", "too_many_streams")
    assert second.headers["Retry-After"] == "1"
    other = post(server, key="key-b")
    assert other.status_code == 200
    assert len(other.content) > 1000

    assert next(held)
    first.close()  # hanging up gives the slot back
    assert wait_until_accepted(server, "key-a").status_code == 200


def test_global_cap_queues_then_refuses(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_MAX_STREAMS="1", SPEECH_QUEUE_TIMEOUT="4")
    first = Listener(post(server, text=LONG))

    started = time.monotonic()
    refused = post(server)
    waited = time.monotonic() - started
    assert_openai_error(refused, 503, "server_error", "server_busy")
    assert refused.headers["Retry-After"] == "2"
    assert waited >= 3.9  # it queued for QUEUE_TIMEOUT before giving up

    # A request that arrives while the slot is taken waits, and is served once it frees (the 3.5 s it
    # still may wait after the close are for the server to see the hang-up on a busy machine).
    results: list[requests.Response] = []
    waiter = threading.Thread(target=lambda: results.append(post(server)))
    waiter.start()
    time.sleep(0.5)
    assert not results  # still queued
    assert first.thread.is_alive()  # the first stream is still playing
    first.close()
    waiter.join(timeout=30)
    assert results[0].status_code == 200
    assert len(results[0].content) > 1000


def test_security_headers_and_no_open_cors(server: Server) -> None:
    page = requests.get(f"{server.url}/", timeout=10)
    csp = page.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src
    assert re.fullmatch(r"'nonce-[\w-]{20,}' 'self'", script_src[1].strip())
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for script in re.findall(r"<script\b[^>]*>", page.text):  # no inline code: files, data, an import map
        assert re.search(r'\bsrc=|type="(application/json|importmap)"', script), script
    assert requests.get(f"{server.url}/", timeout=10).headers["Content-Security-Policy"] != csp  # fresh nonce

    api = requests.get(f"{server.url}/v1/models", headers={"Origin": "https://evil.example"}, timeout=10)
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in api.headers
    preflight = requests.options(
        f"{server.url}/v1/audio/speech",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert preflight.status_code == 200  # a clean answer the browser refuses, not a 405


def test_cors_allow_list(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_CORS_ORIGINS="https://app.example")
    # What the OpenAI JS SDK and kvsur's player send from a browser.
    sent = "authorization,cache-control,content-type,x-stainless-os,x-stainless-lang,x-stainless-arch," + (
        "x-stainless-runtime,x-stainless-runtime-version,x-stainless-package-version,x-stainless-retry-count"
    )
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": sent}
    preflight = requests.options(
        f"{server.url}/v1/audio/speech", headers={"Origin": "https://app.example", **ask}, timeout=10
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    allowed = {name.strip() for name in preflight.headers["Access-Control-Allow-Headers"].lower().split(",")}
    assert set(sent.split(",")) <= allowed
    spoken = post(server, headers={"Origin": "https://app.example"})
    assert spoken.headers["Access-Control-Allow-Origin"] == "https://app.example"
    exposed = spoken.headers["Access-Control-Expose-Headers"].lower()
    assert "x-speech-engine" in exposed
    assert "x-speech-sample-rate" in exposed  # a player on another origin reads the PCM rate
    assert "x-request-id" in exposed
    other = requests.options(
        f"{server.url}/v1/audio/speech", headers={"Origin": "https://other.example", **ask}, timeout=10
    )
    assert other.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in other.headers)
    # CORS is for the API only, never the rest of the site.
    page = requests.get(f"{server.url}/", headers={"Origin": "https://app.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in page.headers


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "production-like-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "speech.example.com",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_SUBDOMAINS": "1",
    "DJANGO_HSTS_PRELOAD": "1",
    "DJANGO_SSL_REDIRECT": "1",
    "SPEECH_API_KEYS": "sk-production",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "SPEECH_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "ttsproject.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production_mode() -> None:
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout

    # and it does complain when production settings are missing
    lax = check_deploy({**PRODUCTION, "DJANGO_SECURE_COOKIES": "", "SPEECH_API_KEYS": ""})
    assert lax.returncode != 0
    assert "security.W012" in lax.stderr
    assert "speech.W002" in lax.stderr
