"""Settings for the site, read from the environment. Production-safe by default: DEBUG is off."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from speech.conf import KOKORO_ENGINE
from speech.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from ttsproject import database

BASE_DIR = Path(__file__).resolve().parent.parent


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION_FLAGS = ("DJANGO_SECURE_COOKIES", "DJANGO_SSL_REDIRECT", "DJANGO_HSTS_SECONDS")


def local_secret_key(path: Path) -> str:
    """The key `make run` wrote to .secret-key, so `manage.py` works after it with no exports.

    Only on a machine that is not serving HTTPS (a production site sets DJANGO_SECRET_KEY), and only
    from a file that the running user owns and nobody else can read or write, as `make run` makes it.
    """
    production = any(os.environ.get(name, "") not in ("", "0") for name in PRODUCTION_FLAGS)
    if production or not path.is_file():
        return ""
    status = path.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise ImproperlyConfigured(f"{path} must belong to you and be private (chmod 600), or set DJANGO_SECRET_KEY.")
    return path.read_text().strip()


DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or local_secret_key(BASE_DIR / ".secret-key")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (`make run` writes one to .secret-key), or DJANGO_DEBUG=1.")
    SECRET_KEY = "django-insecure-development-only"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",  # locks out an address after repeated failed admin logins
    "ninja",  # serves /v1/docs (Swagger UI) from its own static files, not from a CDN
    "corsheaders",
    "speech",
]

# No GZipMiddleware: it would buffer streamed audio.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "speech.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# The 5th failed login from one address locks it out (429) for an hour, whatever the username.
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 1
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# The client behind nginx (SPEECH_TRUSTED_PROXIES), as the API's limits see it, not the proxy's address.
AXES_CLIENT_IP_CALLABLE = "speech.clients.client_ip"

ROOT_URLCONF = "ttsproject.urls"
WSGI_APPLICATION = "ttsproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database.parse(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else database.sqlite(os.environ.get("DJANGO_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")))
}

# Rate limits, stream caps and the audio cache live here: Redis to share them between servers.
REDIS_URL = os.environ.get("SPEECH_REDIS_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 100_000}}
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [path for path in [BASE_DIR / "static"] if path.is_dir()]  # absent in a clean clone
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = os.environ.get("DJANGO_SECURE_COOKIES", "") == "1"
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("DJANGO_HSTS_SUBDOMAINS", "") == "1"
SECURE_HSTS_PRELOAD = os.environ.get("DJANGO_HSTS_PRELOAD", "") == "1"
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SSL_REDIRECT", "") == "1"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if os.environ.get("DJANGO_BEHIND_TLS_PROXY", "") == "1":  # the proxy sets X-Forwarded-Proto; nobody else may
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# django-cors-headers answers preflights on the API; SPEECH_CORS_ORIGINS says which origins may read it.
CORS_URLS_REGEX = r"^/v1/"
CORS_ALLOW_HEADERS = ALLOW_HEADERS
CORS_EXPOSE_HEADERS = EXPOSE_HEADERS

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "speech.requestid.RequestIdFilter"}},
    "formatters": {"speech": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "speech": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "speech"},
    },
    "loggers": {
        "speech": {"handlers": ["speech"], "level": os.environ.get("SPEECH_LOG_LEVEL", "INFO")},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}

SPEECH: dict[str, Any] = {
    "MAX_INPUT_CHARS": int(os.environ.get("SPEECH_MAX_INPUT_CHARS", "4096")),
    "API_KEYS": env_list("SPEECH_API_KEYS"),
    "CORS_ORIGINS": env_list("SPEECH_CORS_ORIGINS"),
    "TRUSTED_PROXIES": env_list("SPEECH_TRUSTED_PROXIES"),
    # Piper voices installed with `manage.py voices install`, next to the database by default.
    "VOICES_DIR": os.environ.get("SPEECH_VOICES_DIR") or str(BASE_DIR / "voices"),
}
if os.environ.get("SPEECH_MAX_LOADED_VOICES"):
    SPEECH["MAX_LOADED_VOICES"] = int(os.environ["SPEECH_MAX_LOADED_VOICES"])
# "0" (or "off" for the rate) turns a limit off.
limit_settings: list[tuple[str, Callable[[str], Any]]] = [
    ("RATE_LIMIT", lambda value: None if value in ("0", "off") else value),
    ("AUTH_FAILURE_LIMIT", lambda value: None if value in ("0", "off") else value),
    ("PAGE_ACCESS", str),
    ("STALL_TIMEOUT", float),
    ("MAX_STREAMS", int),
    ("MAX_STREAMS_PER_CLIENT", int),
    ("MAX_CONNECTIONS", int),
    ("MAX_CONNECTIONS_PER_ADDRESS", int),
    ("MAX_AUDIO_SECONDS", float),
    ("QUEUE_TIMEOUT", float),
    ("CACHE_MAX_BYTES", int),
]
for name, parse in limit_settings:
    if os.environ.get(f"SPEECH_{name}"):
        SPEECH[name] = parse(os.environ[f"SPEECH_{name}"])
for name in ("CACHE_AUDIO", "CACHE_SHARED", "ANONYMOUS_PAGE_UPSTREAM"):
    if os.environ.get(f"SPEECH_{name}"):
        SPEECH[name] = os.environ[f"SPEECH_{name}"] == "1"
if os.environ.get("OPENAI_API_KEY"):
    SPEECH["ENGINES"] = {
        "piper": {"BACKEND": "speech.engines.piper.PiperEngine", "OPTIONS": {}},
        **KOKORO_ENGINE,  # the local engines stay beside the upstream one
        "openai": {
            "BACKEND": "speech.engines.openai.OpenAIEngine",
            "OPTIONS": {
                "api_key": os.environ["OPENAI_API_KEY"],
                "read_timeout": float(os.environ.get("OPENAI_TIMEOUT", "30")),
            },
        },
    }
    if os.environ.get("OPENAI_BASE_URL"):
        SPEECH["ENGINES"]["openai"]["OPTIONS"]["base_url"] = os.environ["OPENAI_BASE_URL"]
