"""Issue 31 D/E: wrong-credential throttling never locks out a valid credential; page tokens die with
the session key they were issued under."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings

from speech.checks import check_deploy_exposure
from tests.test_auth import page_token
from tests.test_security import PRODUCTION, check_deploy

LOCKING = {"API_KEYS": ["key-good"], "RATE_LIMIT": None, "AUTH_FAILURE_LIMIT": "10/minute"}


@pytest.fixture(autouse=True)
def fresh_limits() -> None:
    cache.clear()


def models(client: Client, **headers: str) -> int:
    return int(client.get("/v1/models", headers=headers).status_code)


@pytest.mark.django_db
@override_settings(SPEECH=LOCKING)
def test_wrong_keys_from_an_address_do_not_lock_out_its_valid_key_or_page_token() -> None:
    browser = Client()
    token = page_token(browser)
    assert token
    guesser = Client()
    assert [models(guesser, Authorization=f"Bearer wrong-{n}") for n in range(10)] == [401] * 10
    # The address is locked out for guesses: wrong keys and wrong page tokens get 429 ...
    refused = guesser.get("/v1/models", headers={"Authorization": "Bearer wrong-again"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_failures"
    assert models(guesser, X_Speech_Page="forged:token") == 429
    assert guesser.get("/speech/stream", {"token": "forged"}).status_code == 429
    # ... and a valid credential from the same address is served.
    assert models(guesser, Authorization="Bearer key-good") == 200
    assert models(browser, X_Speech_Page=token) == 200
    stream = browser.get("/speech/stream", {"token": token, "voice": "alloy"})  # no input: past auth, a 400
    assert stream.status_code == 400
    assert models(guesser, Authorization="Bearer wrong-still") == 429


@pytest.mark.django_db
@override_settings(SPEECH={**LOCKING, "AUTH_FAILURE_LIMIT": None})
def test_a_login_invalidates_the_page_tokens_issued_before_it() -> None:
    browser = Client()
    before = page_token(browser)
    assert before
    assert models(browser, X_Speech_Page=before) == 200
    browser.force_login(User.objects.create_user("admin", is_staff=True))  # the session key rotates
    stale = browser.get("/v1/models", headers={"X-Speech-Page": before})
    assert stale.status_code == 401
    after = page_token(browser)
    assert after
    assert models(browser, X_Speech_Page=after) == 200


@pytest.mark.parametrize(
    ("proxies", "warned"),
    [
        (["0.0.0.0/0"], True),
        (["127.0.0.1", "::/0"], True),
        (["10.0.0.0/4"], True),
        (["2001::/16"], True),
        (["127.0.0.1", "10.0.0.0/8", "2400:cb00::/32", "::1"], False),
    ],
)
def test_deploy_check_warns_of_trusted_proxies_that_cover_clients(proxies: list[str], warned: bool) -> None:
    with override_settings(SPEECH={"TRUSTED_PROXIES": proxies}, ALLOWED_HOSTS=["speech.example.com"]):
        ids = [message.id for message in check_deploy_exposure()]
    assert ids == (["speech.W020"] if warned else [])


def test_deploy_check_warns_of_any_host() -> None:
    with override_settings(ALLOWED_HOSTS=["speech.example.com", "*"]):
        messages = check_deploy_exposure()
    assert [message.id for message in messages] == ["speech.W021"]
    assert "DJANGO_ALLOWED_HOSTS" in (messages[0].hint or "")


def test_check_deploy_names_open_proxies_and_hosts() -> None:
    result = check_deploy({**PRODUCTION, "SPEECH_TRUSTED_PROXIES": "127.0.0.1,0.0.0.0/0", "DJANGO_ALLOWED_HOSTS": "*"})
    assert result.returncode != 0
    assert "speech.W020" in result.stderr
    assert "0.0.0.0/0" in result.stderr
    assert "speech.W021" in result.stderr
