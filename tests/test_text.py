"""Normalisation and segmentation of the text before it reaches a voice."""

from __future__ import annotations

from collections import deque

import pytest

from speech import pipeline, text


def test_sentences_respect_abbreviations_initials_and_numbers() -> None:
    source = "Dr. Smith paid $5.50 on Jan. 3rd, e.g. in cash. J. R. R. Tolkien wrote it. Is 3.14 pi? Yes!"
    assert text.sentences(source) == [
        "Dr. Smith paid $5.50 on Jan. 3rd, e.g. in cash.",
        "J. R. R. Tolkien wrote it.",
        "Is 3.14 pi?",
        "Yes!",
    ]


def test_lines_are_separate_sentences_and_blank_lines_vanish() -> None:
    assert text.sentences(text.normalize("Title\n\n\n- first item\r\n- second item\n   \n")) == [
        "Title",
        "- first item",
        "- second item",
    ]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert text.sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


@pytest.mark.parametrize("source", ["word " * 500, "x" * 4096, "a, " * 800, "日本語の文章です。" * 100])
def test_long_runs_are_cut_to_a_bounded_length(source: str) -> None:
    pieces = text.sentences(text.normalize(source), max_chars=300)
    assert all(0 < len(piece) <= 300 for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.normalize(source).replace(" ", "")


def test_normalize_drops_controls_invisibles_and_lone_surrogates() -> None:
    assert text.normalize("a\x00b\u200bc\ud800d\u202ee  \t f") == "a bcde f"


def test_normalize_composes_unicode() -> None:
    assert text.normalize("Cafe\u0301") == "Café"


def test_non_ascii_sentences() -> None:
    assert text.sentences("Привет, мир! Как дела? ¿Qué tal? Bien.") == [
        "Привет, мир!",
        "Как дела?",
        "¿Qué tal?",
        "Bien.",
    ]


def test_head_prefers_a_clause_end() -> None:
    assert text.head("Well, this is a longer sentence than the limit allows.", 4) == (
        "Well,",
        "this is a longer sentence than the limit allows.",
    )
    assert text.head("One two three four five six seven eight.", 3) == ("One two three", "four five six seven eight.")


def test_head_keeps_short_sentences_whole() -> None:
    assert text.head("Hello there, friend.", 3) == ("Hello there, friend.", "")


def test_first_piece_is_a_few_words_then_pieces_grow_with_the_lead() -> None:
    sentence = " ".join(f"w{i}" for i in range(60)) + "."
    pending = deque([sentence, "Next sentence."])
    first = pipeline.next_piece(pending, lead=0.0)
    assert len(first.split()) == pipeline.FIRST_PIECE_WORDS
    second = pipeline.next_piece(pending, lead=2.0)
    assert len(second.split()) == 2 * pipeline.WORDS_PER_SECOND_OF_LEAD
    rest = pipeline.next_piece(pending, lead=30.0)
    assert rest.endswith(".")  # the rest of the sentence, never the next one
    assert list(pending) == ["Next sentence."]


def test_listener_runs_dry_at_the_end_of_what_it_received() -> None:
    listener = pipeline.Listener()
    assert listener.lead() == 0.0
    # Not yet started: behind a listener that falls silent mid-speech within the grace, ahead of one further ahead.
    assert listener.deadline == listener.arrived + pipeline.START_GRACE
    playing = pipeline.Listener()
    playing.received(pipeline.START_GRACE / 2)
    assert playing.deadline < listener.deadline
    playing.received(pipeline.START_GRACE)
    assert playing.deadline > listener.deadline
    listener.received(2.0)
    assert 1.9 < listener.lead() <= 2.0
    listener.received(1.0)
    assert 2.9 < listener.lead() <= 3.0
