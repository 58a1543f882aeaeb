"""The site's settings: the local secret key `make run` writes is used only where it is safe."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured


@pytest.fixture
def local_secret_key(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], str]:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "tests-only-secret-key-tests-only-secret-key-0123456789")
    for flag in ("DJANGO_SECURE_COOKIES", "DJANGO_SSL_REDIRECT", "DJANGO_HSTS_SECONDS"):
        monkeypatch.delenv(flag, raising=False)
    function: Callable[[Path], str] = importlib.import_module("ttsproject.settings").local_secret_key
    return function


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_private_key_file_is_read(local_secret_key: Callable[[Path], str], tmp_path: Path) -> None:
    assert local_secret_key(private_file(tmp_path / ".secret-key", "k" * 60 + "\n")) == "k" * 60
    assert local_secret_key(tmp_path / "absent") == ""


def test_a_key_others_can_read_is_refused(local_secret_key: Callable[[Path], str], tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        local_secret_key(private_file(tmp_path / ".secret-key", "k" * 60, mode=0o644))


@pytest.mark.parametrize("flag", ["DJANGO_SECURE_COOKIES", "DJANGO_SSL_REDIRECT", "DJANGO_HSTS_SECONDS"])
def test_production_never_reads_the_file(
    local_secret_key: Callable[[Path], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv(flag, "1")
    assert local_secret_key(private_file(tmp_path / ".secret-key", "k" * 60)) == ""


def test_an_upstream_key_adds_the_upstream_engine_beside_the_local_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo page offers both local engines whether or not an upstream is configured."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", "tests-only-secret-key-tests-only-secret-key-0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delitem(sys.modules, "ttsproject.settings", raising=False)
    engines = importlib.import_module("ttsproject.settings").SPEECH["ENGINES"]
    monkeypatch.delitem(sys.modules, "ttsproject.settings")

    assert set(engines) == {"piper", "kokoro", "openai"}
