"""The app's settings: one ``SPEECH`` dict merged over ``DEFAULTS``, cached until settings change."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx",
    "nova", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")

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
}


@functools.cache
def get_config() -> dict[str, Any]:
    user = getattr(settings, "SPEECH", {}) or {}
    config = {**DEFAULTS, **user}
    if config["MODELS"] is None:
        upstream = "openai" if "openai" in config["ENGINES"] else "piper"
        config["MODELS"] = {"piper": "piper", **{model: upstream for model in OPENAI_MODELS}}
    return config


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: object) -> None:
    if setting == "SPEECH":
        get_config.cache_clear()
        from speech.engines import base

        base.get_engine.cache_clear()
