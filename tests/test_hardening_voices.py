"""Issue 31 B/C: ``manage.py voices`` against a hostile catalogue (names and paths that climb out of the
store, terminal escapes, malformed entries) and without a reachable hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from speech import catalogue
from speech.catalogue import CatalogueError
from tests.support.fake_hub import FakeHub, HubVoice, add_voice, language

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
def store(tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    settings.SPEECH = {"VOICES_DIR": str(tmp_path / "voices"), "RATE_LIMIT": None, "CACHE_AUDIO": False}
    return tmp_path / "voices"


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
    assert ESCAPES in out and "RED" in out
    assert "\x1b" not in out + err
    assert "victim" not in out and "escaped" not in out and "dots" not in out
    assert "left out" in err and "victim" in err and "fr_FR-dots-medium" in err and "es_ES-list-medium" in err


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
    with pytest.raises(CommandError, match="is not piper's voices.json"):
        voices("list")


def test_control_characters_from_the_store_are_not_printed(store: Path) -> None:
    add_voice(store, HubVoice(ESCAPES, language("de_DE", "German\x1b]0;owned\x07", "Deutsch")))
    out, _ = voices("list", "--installed")
    assert ESCAPES in out
    assert "\x1b" not in out and "\x07" not in out
