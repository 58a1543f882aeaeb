from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest
from django.urls import Resolver404, resolve


class SpeechConfig(AppConfig):
    name = "speech"
    verbose_name = "Speech"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps

        from speech import (
            checks,  # noqa: F401  (registers the system checks)
            warmup,
        )
        from speech.conf import get_config

        if apps.is_installed("corsheaders"):
            from corsheaders.signals import check_request_enabled

            check_request_enabled.connect(allow_api_origins, dispatch_uid="speech.cors")
        warmup.start(get_config()["WARM_UP"])


def allow_api_origins(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """corsheaders asks: may this request's Origin read the answer? Yes for listed origins, on our URLs."""
    from speech.conf import cors_allows

    return cors_allows(request.headers.get("Origin")) and _is_speech(request)


def _is_speech(request: HttpRequest) -> bool:
    try:
        return "speech" in resolve(request.path_info).namespaces
    except Resolver404:
        return False
