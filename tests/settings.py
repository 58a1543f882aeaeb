"""The site's own settings, made safe to import under test."""

import os
import sys
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-tests-only-secret-key-0123456789")
# pytest itself never reaches a real upstream; a server that a test starts (bench.support.server.start_server)
# drops the ambient key and gets only the one the test passes.
if "pytest" in sys.modules:
    os.environ.pop("OPENAI_API_KEY", None)

# An empty voice store: the site's own (./voices) may hold whatever its developer installed.
os.environ.setdefault("SPEECH_VOICES_DIR", tempfile.mkdtemp(prefix="speech-voices-"))

from ttsproject.settings import *  # noqa: F403

if "DJANGO_SQLITE_PATH" not in os.environ:  # servers started by the tests keep a file the test can read
    DATABASES["default"]["NAME"] = ":memory:"  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
