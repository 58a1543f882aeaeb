"""How the pipeline cuts text into pieces, with a fake clock, scheduler and voice (no engine)."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import pytest

from speech import audio, pipeline
from speech.cancellation import Cancellation
from speech.scheduler import Grant
from speech.timings import Voiced

RATE = 22_050
SECONDS_PER_WORD = 0.4


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class WaitingScheduler:
    """Grants every slot after the given waits, advancing the clock as other listeners would."""

    def __init__(self, clock: Clock, waits: list[float]) -> None:
        self.clock = clock
        self.waits = waits
        self.grants: list[Grant] = []

    @contextlib.contextmanager
    def slot(self, deadline: float, cancel: Cancellation, first: bool = False) -> Iterator[Grant]:
        self.clock.now += self.waits.pop(0) if self.waits else 0.0
        self.grants.append(Grant(slot=0, alone=False, first=first))
        yield self.grants[-1]


class WordVoice:
    """Speaks each word for SECONDS_PER_WORD, instantly, and remembers the pieces it was given."""

    rate = RATE

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def synthesize(self, text: str, speed: float, grant: Grant, cancel: Cancellation) -> Voiced:
        self.pieces.append(text)
        return Voiced(bytes(2 * int(RATE * SECONDS_PER_WORD * len(text.split()))))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(pipeline, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    return clock


def test_piece_is_sized_to_the_lead_left_when_the_slot_is_granted(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first piece (3 words) gives 1.2 s of audio. Waiting 1.0 s for the next slot leaves a
    # lead of 0.2 s: the next piece must be a short one again, not one sized to the 1.2 s the
    # listener had before it queued (6 words, which would take longer than the lead to make).
    monkeypatch.setattr(pipeline, "scheduler", WaitingScheduler(clock, [0.0, 1.0]))
    voice = WordVoice()
    words = " ".join(f"word{chr(97 + i % 26)}" for i in range(30))  # letters only: digits weigh more

    b"".join(pipeline.stream(voice, words, "pcm", 1.0, Cancellation()))

    assert [len(piece.split()) for piece in voice.pieces][:2] == [3, 3]


def test_pieces_grow_with_the_lead_when_nobody_waits(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = WaitingScheduler(clock, [])
    monkeypatch.setattr(pipeline, "scheduler", scheduler)
    voice = WordVoice()
    words = " ".join(f"word{chr(97 + i % 26)}" for i in range(40))  # letters only: digits weigh more

    audio = b"".join(pipeline.stream(voice, words, "pcm", 1.0, Cancellation()))

    assert [grant.first for grant in scheduler.grants] == [True] + [False] * (len(scheduler.grants) - 1)
    sizes = [len(piece.split()) for piece in voice.pieces]
    assert sizes[:3] == [3, 6, 18]  # lead 0 -> 3 words, 1.2 s -> 6, 3.6 s -> 18
    assert sum(sizes) == 40
    assert len(audio) == pytest.approx(40 * SECONDS_PER_WORD * 24_000 * 2, rel=0.01)


def test_the_first_piece_opening_is_sent_before_the_rest_is_encoded(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "scheduler", WaitingScheduler(clock, []))
    encoded: list[int] = []
    real_encoder = audio.encoder

    def logging_encoder(fmt: str, rate: int) -> audio.Encoder:
        encoder = real_encoder(fmt, rate)
        write = encoder.write

        def logged(pcm: bytes) -> bytes:
            encoded.append(len(pcm))
            return write(pcm)

        encoder.write = logged  # type: ignore[method-assign]
        return encoder

    monkeypatch.setattr(audio, "encoder", logging_encoder)
    chunks = pipeline.stream(WordVoice(), "one two three four five six seven eight", "mp3", 1.0, Cancellation())

    first = next(chunks)

    assert first
    assert encoded == [2 * int(RATE * pipeline.OPENING_SECONDS)]  # 1.2 s spoken, 0.2 s encoded so far
    assert len(b"".join(chunks)) > 10 * len(first)
    assert sum(encoded) == 2 * int(RATE * SECONDS_PER_WORD * 8)
