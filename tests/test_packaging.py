"""The app builds as a wheel with its static files, templates and migrations, and installs into a fresh venv
(how: bench/support/install.py)."""

from __future__ import annotations

import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

from bench.support.install import build_wheel, venv_with
from bench.support.server import ROOT

HOST_SCRIPT = """
import sys
import django
from django.conf import settings
from django.core.management import call_command

settings.configure(
    SECRET_KEY="x" * 50,
    INSTALLED_APPS=[
        "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions", "django.contrib.staticfiles",
        "speech",
    ],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],  # the page token lives in the session
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF="speech.urls",
    STATIC_URL="/static/",
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
)
django.setup()
import speech
print("SPEECH_FILE", speech.__file__)
call_command("check", fail_level="ERROR")
call_command("migrate", verbosity=0)
print("OK")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_the_app_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "speech").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert source - names == set()  # every module, static file, template and migration
    assert "speech/migrations/0001_initial.py" in names
    dist_info = "django_speech_stream-0.1.0.dist-info"
    assert {name.split("/")[0] for name in names} == {"speech", dist_info}  # no tests, no site
    assert "speech/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = next(name for name in names if name.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: piper" in text
    assert 'Requires-Dist: piper-tts>=1.8; extra == "piper"' in text
    assert "Name: django-speech-stream" in text
    assert "License-Expression: MIT" in text
    assert "Classifier: Framework :: Django :: 5.2" in text
    assert "Classifier: Typing :: Typed" in text


def test_wheel_installs_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    python, site = venv_with(wheel, tmp_path / "venv")
    (tmp_path / "host.py").write_text(textwrap.dedent(HOST_SCRIPT))

    result = subprocess.run([python, "host.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert f"SPEECH_FILE {site}/speech/__init__.py" in result.stdout
    assert result.stdout.rstrip().endswith("OK")

    # The same venv without the piper extra: a clear error naming the install command.
    blocked = "import sys; sys.modules['piper'] = None\n" + textwrap.dedent(HOST_SCRIPT)
    (tmp_path / "no_piper.py").write_text(blocked)
    result = subprocess.run([python, "no_piper.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "speech.E002" in result.stderr
    assert "pip install 'django-speech-stream[piper]'" in result.stderr


def test_the_project_is_importable_from_any_folder(tmp_path: Path) -> None:
    """`make run` and `make test` install the project into .venv (editable), so the docs' Python
    examples (`from speech import client`) run wherever the reader is, not only in the checkout."""
    python = ROOT / ".venv" / "bin" / "python"
    found = subprocess.run([python, "-c", "from speech import client; import speech; print(speech.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(ROOT / "speech" / "__init__.py")
