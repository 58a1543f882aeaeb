"""Issue 31 B/C: ``manage.py voices`` against a hostile catalogue (names and paths that climb out of the
store, terminal escapes, malformed entries) and without a reachable hub."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bench.support.fake_hub import FakeHub, HubVoice, add_voice, language
from bench.support.server import free_port
from speech import catalogue
from speech.catalogue import CatalogueError
from speech.checks import PIPER, check_voice_names

pytestmark = pytest.mark.django_db

GOOD = "en_US-joe-medium"
CLIMBER = "../../victim"
ESCAPES = "de_DE-escape-medium"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    hub = FakeHub([HubVoice(GOOD, language("en_US", "English", "English"))])
    good = json.loads(hub.files["voices.json"][0])[GOOD]  # type: ignore[arg-type]
    hostile = {
        GOOD: good,
        CLIMBER: good,  # the good voice's files under a name that climbs out of the store
        "../../../../srv/x/escaped": good,
        ESCAPES: {**good, "language": {**good["language"], "name_native": "\x1b[2J\x1b[31mRED", "code": "de_DE"}},
        "fr_FR-dots-medium": {**good, "files": {f"../../{path}": info for path, info in good["files"].items()}},
        "es_ES-list-medium": [],
        "it_IT-nofiles-medium": {**good, "files": "none"},
    }
    hub.files["voices.json"] = (json.dumps(hostile).encode(), None)
    yield hub
    hub.close()


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside the store, where ``store/.downloads/../../victim`` lands."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.onnx").write_bytes(b"precious")
    (folder / "keep.onnx.json").write_bytes(b"{}")
    return folder


def voices(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("voices", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_list_leaves_out_hostile_entries_and_prints_no_control_characters(store: Path) -> None:
    out, err = voices("list")
    assert GOOD in out
    assert ESCAPES in out
    assert "RED" in out
    assert "\x1b" not in out + err
    assert "victim" not in out
    assert "escaped" not in out
    assert "dots" not in out
    assert "left out" in err
    assert "victim" in err
    assert "fr_FR-dots-medium" in err
    assert "es_ES-list-medium" in err


def test_a_name_that_climbs_out_of_the_store_installs_nothing_and_deletes_nothing(store: Path, victim: Path) -> None:
    for name in (CLIMBER, "../../../../srv/x/escaped"):
        with pytest.raises(CommandError, match="is not a voice name"):
            voices("install", name)
    # Below the command too: the catalogue's own install refuses it before it makes or cleans anything.
    entry = catalogue.load(store)[GOOD]
    with pytest.raises(CatalogueError, match="is not a voice name"):
        catalogue.install(store, catalogue.Entry(**{**entry.__dict__, "name": CLIMBER}))
    assert sorted(path.name for path in victim.iterdir()) == ["keep.onnx", "keep.onnx.json"]
    assert (victim / "keep.onnx").read_bytes() == b"precious"
    assert not list(victim.parent.glob("*.onnx*"))
    assert not list(store.glob("*.onnx*"))


def test_a_catalogue_path_that_climbs_out_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No voice 'fr_FR-dots-medium' in the catalogue"):
        voices("install", "fr_FR-dots-medium")
    entry = catalogue.load(store)[GOOD]
    climbing = catalogue.File("../../../x.onnx", entry.model.size, entry.model.md5)
    with pytest.raises(CatalogueError, match="outside"):
        catalogue.install(store, catalogue.Entry(**{**entry.__dict__, "model": climbing}))
    assert not list(tmp_path.rglob("x.onnx"))


def test_remove_stays_inside_the_store(store: Path, victim: Path) -> None:
    add_voice(store, HubVoice(GOOD, language("en_US", "English", "English")))
    for name in ("../victim/keep", "/etc/passwd", ".hub", "."):
        with pytest.raises(CommandError, match="is not a voice name"):
            voices("remove", name)
    with pytest.raises(CatalogueError):
        catalogue.remove(store, "../victim/keep")
    assert (victim / "keep.onnx").read_bytes() == b"precious"
    assert (victim / "keep.onnx.json").exists()
    assert voices("remove", GOOD)[0] == f"removed {GOOD}\n"
    assert not list(store.glob("*.onnx*"))


def test_a_catalogue_that_is_not_an_object_is_a_clear_error(store: Path, hub: FakeHub) -> None:
    hub.files["voices.json"] = (b"[1, 2]", None)
    with pytest.raises(CommandError, match=r"is not piper's voices\.json"):
        voices("list")


def test_control_characters_from_the_store_are_not_printed(store: Path) -> None:
    add_voice(store, HubVoice(ESCAPES, language("de_DE", "German\x1b]0;owned\x07", "Deutsch")))
    out, _ = voices("list", "--installed")
    assert ESCAPES in out
    assert "\x1b" not in out
    assert "\x07" not in out


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """An address that takes connections and never answers (a hub behind a dead route looks the same)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.parametrize("hub_state", ["silent", "refused", "offline"])
def test_list_without_the_hub_shows_the_installed_voices_and_says_so_within_seconds(
    store: Path, monkeypatch: pytest.MonkeyPatch, silent_hub: str, hub_state: str
) -> None:
    add_voice(store, HubVoice(GOOD, language("en_US", "English", "English")))
    if hub_state == "silent":
        monkeypatch.setenv("HF_ENDPOINT", silent_hub)
    elif hub_state == "refused":
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    else:  # a fresh machine told to stay offline: no catalogue cached
        monkeypatch.setenv("HF_ENDPOINT", silent_hub)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = StringIO()
    started = time.monotonic()
    with pytest.raises(CommandError, match="Cannot reach the voice catalogue") as error:
        call_command("voices", "list", stdout=out, stderr=StringIO())
    took = time.monotonic() - started
    assert took < catalogue.PROBE_TIMEOUT + 5, took  # was 25 s (refused) to 70 s and more (silent)
    assert GOOD in out.getvalue()
    assert "HF_ENDPOINT" in str(error.value)


def test_a_cached_catalogue_is_listed_at_once_when_the_hub_is_silent(
    store: Path, monkeypatch: pytest.MonkeyPatch, silent_hub: str
) -> None:
    voices("list")
    monkeypatch.setenv("HF_ENDPOINT", silent_hub)
    started = time.monotonic()
    assert GOOD in voices("list")[0]
    assert time.monotonic() - started < catalogue.PROBE_TIMEOUT + 5


def test_voice_names_in_settings_follow_the_same_pattern(settings: Any) -> None:
    settings.SPEECH = {
        "ENGINES": {
            "piper": {"BACKEND": PIPER, "OPTIONS": {"voices": {"../../escaped": {"model": "/x.onnx"}}}},
        },
        "VOICE_ALIASES": {"nova": "de_DE-thorsten-medium#2", "echo": "x\x1b[2J"},
    }
    errors = check_voice_names()
    assert [error.id for error in errors] == ["speech.E020", "speech.E020"]
    assert "'../../escaped'" in errors[0].msg
    assert "\x1b" not in errors[1].msg
    settings.SPEECH = {"VOICE_ALIASES": {"nova": "de_DE-thorsten-medium#2"}}
    assert check_voice_names() == []
