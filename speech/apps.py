from django.apps import AppConfig


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

            from speech.cors import allow_api_origins

            check_request_enabled.connect(allow_api_origins, dispatch_uid="speech.cors")
        warmup.start(get_config()["WARM_UP"])
