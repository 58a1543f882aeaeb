"""System checks: misconfiguration is reported at start with a hint that says the fix."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from speech.conf import DEFAULTS, get_config


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
        try:
            import_string(spec["BACKEND"])
        except ImportError as error:
            messages.append(Error(
                f"SPEECH['ENGINES']['{alias}'] cannot be loaded: {error}",
                hint="Check the BACKEND path, or install the extra it needs (pip install 'speech[piper]').",
                id="speech.E002",
            ))  # fmt: skip
    for model, alias in config["MODELS"].items():
        if alias not in config["ENGINES"]:
            messages.append(Error(
                f"Model '{model}' is routed to engine '{alias}', which SPEECH['ENGINES'] does not define.",
                hint=f"Define it, or route the model to one of: {', '.join(config['ENGINES'])}.",
                id="speech.E003",
            ))  # fmt: skip
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if "django.middleware.gzip.GZipMiddleware" in middleware:
        messages.append(Warning(
            "GZipMiddleware is enabled: it compresses streamed responses, which buffers audio and adds latency.",
            hint="Remove GZipMiddleware, or let the front proxy compress text only.",
            id="speech.W001",
        ))  # fmt: skip
    return messages
