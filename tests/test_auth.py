"""Auth and limits in process: the router keeps them on a host's NinjaAPI; the page token's expiry and access."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings

from speech import clients, keys, limits, usage
from speech.engines.base import SpeechRequest
from speech.errors import Overloaded

KEYED = {"API_KEYS": ["sk-host"], "RATE_LIMIT": "2/hour", "AUTH_FAILURE_LIMIT": None}


@pytest.fixture(autouse=True)
def fresh_limits() -> None:
    cache.clear()


@override_settings(ROOT_URLCONF="tests.host_api_urls", SPEECH=KEYED)
def test_a_host_api_that_mounts_the_router_keeps_auth_and_limits() -> None:
    client = Client()
    assert client.get("/api/speech/models").status_code == 401
    assert client.get("/api/speech/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    key = {"Authorization": "Bearer sk-host"}
    assert [client.get("/api/speech/models", headers=key).status_code for _ in range(3)] == [200, 200, 429]


def page_token(client: Client) -> str | None:
    html = client.get("/").content.decode()
    match = re.search(r'<script id="speech-player-config" type="application/json">(.*?)</script>', html)
    assert match
    token: str | None = json.loads(match[1])["pageToken"]
    return token


def page_token_issued(client: Client, hours_ago: float) -> str:
    """The page's token as it was signed ``hours_ago``: the signer's clock alone goes back."""
    with mock.patch("django.core.signing.time.time", return_value=time.time() - hours_ago * 3600):
        token = page_token(client)
    assert token
    return token


@pytest.mark.django_db
@pytest.mark.parametrize("keys", [["sk-host"], []], ids=["keyed", "open"])
def test_a_page_token_expires_with_its_own_code(keys: list[str]) -> None:
    client = Client()
    with override_settings(SPEECH={**KEYED, "API_KEYS": keys, "RATE_LIMIT": None}):
        old = page_token_issued(client, 12.1)
        expired = client.get("/v1/models", headers={"X-Speech-Page": old})
        forged = client.get("/v1/models", headers={"X-Speech-Page": "made-up:1abc:signature"})
        stream = client.get("/speech/stream", {"input": "Hi.", "voice": "alloy", "token": old})
    assert stream.json()["error"]["code"] == "page_token_expired"
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "page_token_expired"
    assert "reload the page" in expired.json()["error"]["message"]
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.django_db
def test_a_page_token_past_half_its_age_is_renewed() -> None:
    client = Client()
    with override_settings(SPEECH={**KEYED, "RATE_LIMIT": None}):
        young = client.get("/v1/models", headers={"X-Speech-Page": page_token_issued(client, 5.9)})
        old = page_token_issued(client, 6.1)
        answer = client.get("/v1/models", headers={"X-Speech-Page": old})
        renewed = answer.headers["X-Speech-Page"]
        with mock.patch("django.core.signing.time.time", return_value=time.time() + 11 * 3600):
            later = client.get("/v1/models", headers={"X-Speech-Page": renewed})  # the old one is dead by then
            dead = client.get("/v1/models", headers={"X-Speech-Page": old})
        other_session = Client().get("/v1/models", headers={"X-Speech-Page": renewed})
    assert young.status_code == 200
    assert "X-Speech-Page" not in young.headers
    assert answer.status_code == 200
    assert renewed != old
    assert later.status_code == 200
    assert dead.json()["error"]["code"] == "page_token_expired"
    assert other_session.status_code == 401  # still bound to the session it was issued to


def only_staff(request: HttpRequest) -> bool:
    return bool(request.user.is_staff)


@pytest.mark.django_db
@pytest.mark.parametrize("access", ["authenticated", "tests.test_auth.only_staff"])
def test_page_access_is_the_sites_decision(access: str) -> None:
    client = Client()
    with override_settings(SPEECH={**KEYED, "RATE_LIMIT": None, "PAGE_ACCESS": access}):
        assert page_token(client) is None  # an anonymous visitor gets no token
        user = User.objects.create_user("visitor", is_staff=True)
        client.force_login(user)
        token = page_token(client)
        assert token
        assert client.get("/v1/models", headers={"X-Speech-Page": token}).status_code == 200
        user.is_staff = False
        user.save()
        # the decision is made again on every request: a demoted user's token stops working
        allowed = client.get("/v1/models", headers={"X-Speech-Page": token}).status_code
    assert allowed == (200 if access == "authenticated" else 401)


def test_the_readmes_key_example() -> None:
    """The API key example of the docs (docs/security.md), which the README links to."""
    page = (Path(__file__).parent.parent / "docs" / "security.md").read_text()
    block = re.search(r'```python\n(SPEECH = \{\s*"API_KEYS".*?)```', page, re.S)
    assert block
    namespace: dict[str, Any] = {}
    exec(block[1], namespace)
    with override_settings(SPEECH={**namespace["SPEECH"], "AUTH_FAILURE_LIMIT": None}):
        client = Client()
        for key in ("sk-plain", "sk-backend"):
            assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        backend = identify_key("sk-backend")
    assert (backend.id, backend.rate, backend.max_streams) == ("key:backend", "600/minute", 32)


def identify_key(key: str) -> clients.Client:
    request = RequestFactory().get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    return keys.identify(request)


@pytest.mark.django_db
def test_a_replay_takes_a_global_slot_like_a_synthesis() -> None:
    client = clients.Client("key:test", "test", rate=None, max_streams=0)
    speech = SpeechRequest(model="piper", input="Hello.", voice="alloy")
    with override_settings(SPEECH={"MAX_STREAMS": 1, "QUEUE_TIMEOUT": 0.2}):
        release = limits.acquire_stream(client, synthesis=True)  # someone else's synthesis
        with pytest.raises(Overloaded), usage.Track(client, speech, "req_test", engine="openai", cached=True):
            pass
        release()
        with usage.Track(client, speech, "req_test", engine="openai", cached=True) as track:
            assert track.release is not None
        track.finish(200)
