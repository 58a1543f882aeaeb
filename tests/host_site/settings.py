"""A host site that knows nothing of ttsproject: Django's usual settings plus the three install lines."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "host-site-tests-only-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
FORCE_SCRIPT_NAME = os.environ.get("HOST_SCRIPT_NAME") or None  # the site lives under a prefix

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the API docs from local static files
    "speech",  # 1. the app
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "host_site.urls"
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
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["HOST_DB"]}}
# Absolute, with the prefix: Django reads a relative STATIC_URL once, before any request has set the prefix.
STATIC_URL = f"{FORCE_SCRIPT_NAME or ''}/static/"
WHITENOISE_USE_FINDERS = True  # serve the app's static files from the installed package
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# 3. optional settings
SPEECH = {"API_KEYS": [key for key in os.environ.get("HOST_SPEECH_KEYS", "").split(",") if key]}
