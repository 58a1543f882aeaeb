"""Property tests for segmentation: nothing lost, nothing duplicated, no empty or oversized piece."""

from __future__ import annotations

from collections import deque

from hypothesis import example, given, settings
from hypothesis import strategies as st

from speech import pipeline, text

# Text that looks like prose (words, punctuation, abbreviations, odd whitespace) mixed with anything.
WORDS = st.sampled_from(
    ["Hello", "world", "Dr.", "e.g.", "U.S.", "A.", "etc.", "ok", "—", "\u2013", ",", ";", ":", ".", "!", "?", "…",
     "”", ")", "\"", "'", "3.14", "😀", "שלום", "مرحبا", "\u200b", "\u202e", "\ufeff", "。", "\uff01", "...", "?!"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u2028", "\u3000", "\x00", "\x85", ""])
PROSE = st.lists(st.tuples(WORDS, SEPARATORS), max_size=200).map(lambda parts: "".join(w + s for w, s in parts))
LONG_WORDS = st.builds(lambda n, c: c * n, st.integers(1, 1200), st.sampled_from(["a", "😀", "-", ".", ","]))
TEXT = st.one_of(PROSE, st.text(max_size=600), LONG_WORDS, st.lists(st.one_of(PROSE, LONG_WORDS)).map(" ".join))


def visible(value: str) -> str:
    return "".join(ch for ch in value if not ch.isspace())


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("\ud800 lone surrogate \udfff")
@example("x" * 4096)
def test_normalize_is_clean_and_idempotent(raw: str) -> None:
    clean = text.normalize(raw)
    assert text.normalize(clean) == clean
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in clean)
    assert not any(ord(ch) < 32 and ch != "\n" for ch in clean)
    assert "" not in clean.split("\n") or clean == ""


WHITE_SPACE = [chr(i) for i in range(0x3001) if chr(i).isspace()]
BLANKISH = st.text(
    st.sampled_from([*WHITE_SPACE, "\x00", "\x7f", "\u200b", "\u202e", "\u2066", "\ufeff", "\ud800", "a", "\u0301"])
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(BLANKISH, TEXT))
@example("\u200b \ufeff\r\n\t\x00")
@example("\u0301")  # a combining mark on nothing is still spoken
@example(" \u2028 ")  # white space of any kind is trimmed from the ends of lines
def test_blank_is_what_normalises_to_nothing(raw: str) -> None:
    assert text.is_blank(raw) == (text.normalize(raw) == "")


ASCII = st.text(st.sampled_from("ab.,!? \n\r\t\x00\x0b\x1f\x7f"), max_size=60)


@settings(max_examples=1000, deadline=None)
@given(ASCII)
@example(" a")
@example("a\n")
@example("a \nb")
@example("a b\nc.")  # tidy already: the fast path
def test_ascii_is_normalised_as_any_other_text(raw: str) -> None:
    """ASCII that needs no tidying skips the character-by-character pass: same result either way."""
    assert text.normalize_mapped(raw) == text._tidied(raw)


@settings(max_examples=400, deadline=None)
@given(TEXT, st.integers(min_value=3, max_value=400))
@example("word " * 200, 10)
@example("a" * 4096, 300)
def test_sentences_keep_every_character_once(raw: str, max_chars: int) -> None:
    clean = text.normalize(raw)
    pieces = text.sentences(clean, max_chars)
    assert visible("".join(pieces)) == visible(clean)
    for piece in pieces:
        assert piece.strip() == piece != ""
        assert len(piece) <= max_chars
        assert text._spoken_length(piece) <= max_chars or len(piece) == 1


@settings(max_examples=400, deadline=None)
@given(TEXT, st.integers(min_value=1, max_value=60))
def test_head_splits_without_loss(raw: str, max_words: int) -> None:
    for sentence in text.sentences(text.normalize(raw)):
        first, rest = text.head(sentence, max_words)
        assert first.strip() == first != ""
        assert rest.strip() == rest
        assert visible(first + rest) == visible(sentence)
        if rest:
            assert len(first.split(" ")) <= max_words
            assert len(first) <= max_words * text.CHARS_PER_WORD
            assert text._spoken_length(first) <= max_words * text.CHARS_PER_WORD or len(first) == 1


def test_head_of_one_long_word_is_short() -> None:
    """Regression: 4,096 emoji (no spaces) made a 300-character first piece, ~17 s before the first byte."""
    for word, most in (("\N{GRINNING FACE}" * 300, pipeline.FIRST_PIECE_WORDS), ("a" * 300, 36)):
        first, rest = text.head(word, pipeline.FIRST_PIECE_WORDS)
        assert 0 < len(first) <= most
        assert first + rest == word
    # Nor a later piece: 300 emoji in one piece made piper use 2 GB (phonemes, not characters, count).
    for run in ("\N{GRINNING FACE}" * 4096, "\N{CJK UNIFIED IDEOGRAPH-4F60}" * 4096):
        assert max(map(len, text.sentences(run))) <= text.MAX_SEGMENT_CHARS // text.CHARS_PER_WORD
    # Ordinary short sentences are still said in one piece.
    assert text.head("Hello there, how are you?", pipeline.FIRST_PIECE_WORDS) == ("Hello there, how are you?", "")


@settings(max_examples=300, deadline=None)
@given(TEXT, st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=20))
def test_pipeline_pieces_cover_the_text(raw: str, leads: list[float]) -> None:
    """Whatever lead the listener has at each step, the pieces sent to the engine add up to the text."""
    clean = text.normalize(raw)
    pending = deque(text.sentences(clean))
    pieces: list[str] = []
    while pending:
        pieces.append(pipeline.next_piece(pending, leads[len(pieces) % len(leads)]))
        assert len(pieces) <= len(clean) + 1  # always progresses
    assert visible("".join(pieces)) == visible(clean)
    for piece in pieces:
        assert piece.strip() == piece != ""
        assert text._spoken_length(piece) <= text.MAX_SEGMENT_CHARS
