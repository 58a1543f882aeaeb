"""The app's settings code (``apps``, ``checks``, ``conf``) stands below its HTTP face and its engines.

Starting a site (``django.setup()``, which runs ``SpeechConfig.ready``) and its system checks load
neither the API (django-ninja, the schemas), nor the CORS helpers host settings import, nor the
upstream engine and its HTTP client (``requests``): each is imported when a request needs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from bench.support.server import ROOT

# What settings code must not pull in at start-up.
HTTP_FACE = ["ninja", "speech.api", "speech.schemas", "speech.responses", "speech.cors", "speech.errors"]
ENGINES = ["requests", "speech.engines", "speech.engines.openai"]

PROBE = textwrap.dedent(
    """
    import json, sys

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions", "corsheaders", "speech",
        ],
        MIDDLEWARE=["corsheaders.middleware.CorsMiddleware", "django.contrib.sessions.middleware.SessionMiddleware"],
        SPEECH={"WARM_UP": False, "CORS_ORIGINS": ["https://app.example"]},
    )
    django.setup()
    import speech.apps, speech.checks, speech.conf  # noqa: E401, F401

    started = sorted(sys.modules)
    from speech.checks import check_settings

    check_settings()  # imports the configured (local) engines' backends, and nothing of the HTTP face
    print(json.dumps({"started": started, "checked": sorted(sys.modules)}))
    """
)


def loaded() -> dict[str, list[str]]:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, list[str]] = json.loads(run.stdout)
    return result


def test_settings_code_loads_no_http_face_nor_engine() -> None:
    modules = loaded()
    assert "speech.checks" in modules["started"]  # the probe did import what it means to
    assert [name for name in HTTP_FACE + ENGINES if name in modules["started"]] == []
    # The checks load the backends the site configures (piper here): still no upstream, API or CORS module.
    assert "speech.engines.piper" in modules["checked"]
    assert [name for name in ["requests", "speech.engines.openai", "speech.api", "speech.cors"]
            if name in modules["checked"]] == []  # fmt: skip


def test_the_dotted_paths_older_host_settings_name_still_load() -> None:
    """``speech.security`` was split by concern; settings written before name these two paths."""
    from django.utils.module_loading import import_string

    from speech.clients import client_ip
    from speech.csp import ContentSecurityPolicyMiddleware

    assert import_string("speech.security.ContentSecurityPolicyMiddleware") is ContentSecurityPolicyMiddleware
    assert import_string("speech.security.client_ip") is client_ip
