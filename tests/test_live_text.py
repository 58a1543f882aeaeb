"""The incremental sentence splitter: any split of a text into fragments gives the whole text's sentences."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import speech
from speech import text
from speech.live.text import Part, Splitter

WORDS = ["Dr.", "e.g.", "3.5", "U.S.", "J.", "end.", "Why?", "Yes!", "so…", "word", "a,", "b;", '"quoted."',
         "(x)", "café", "e\u0301", "👩\u200d💻", "\ud83d", "\ude00", "日本語。", "$5", "1,000", "—", "\u00a0",
         "\u200b"]  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\r\n", "\t", "\n\n", "", "\u2028"]


def whole(source: str) -> list[str]:
    return text.sentences(text.normalize(source))


def fed(fragments: list[str], splitter: Splitter | None = None) -> list[Part]:
    splitter = splitter or Splitter()
    parts = []
    for fragment in fragments:
        splitter.feed(fragment)
        if part := splitter.take():
            parts.append(part)
    if part := splitter.flush():
        parts.append(part)
    return parts


def sentences(parts: list[Part]) -> list[str]:
    return [sentence for part in parts for sentence in part.sentences]


@st.composite
def texts(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=40))
    return "".join(token + draw(st.sampled_from(SEPARATORS)) for token in tokens)


@st.composite
def splits(draw: st.DrawFn) -> tuple[str, list[str]]:
    source = draw(texts())
    cuts = sorted(draw(st.lists(st.integers(0, len(source)), max_size=30)))
    bounds = [0, *cuts, len(source)]
    return source, [source[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(splits())
def test_any_split_gives_the_sentences_of_the_whole_text(case: tuple[str, list[str]]) -> None:
    source, fragments = case
    assert sentences(fed(fragments)) == whole(source)


@settings(max_examples=200, deadline=None)
@given(texts())
def test_one_character_at_a_time_gives_the_sentences_of_the_whole_text(source: str) -> None:
    assert sentences(fed(list(source))) == whole(source)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["word ", "wörd, ", "12345 ", "😀 ", "x" * 20, " "]), max_size=150), st.data())
def test_sentences_past_the_length_bound_are_cut_as_the_whole_text_is(tokens: list[str], data: st.DataObject) -> None:
    source = "".join(tokens) + "."
    size = data.draw(st.integers(1, 9))
    fragments = [source[i : i + size] for i in range(0, len(source), size)]
    parts = fed(fragments)
    assert sentences(parts) == whole(source)


@settings(max_examples=200, deadline=None)
@given(splits())
def test_parts_map_their_characters_to_the_input(case: tuple[str, list[str]]) -> None:
    source, fragments = case
    splitter = Splitter()
    for part in fed(fragments, splitter):
        assert len(part.origins) == len(part.normalized)
        assert all(0 <= start <= end <= len(source) for start, end in part.origins)
        at = 0
        for sentence in part.sentences:  # each sentence is in the part's text, in order
            at = part.normalized.index(sentence, at) + len(sentence)
    assert splitter.text == source


def test_a_sentence_is_given_out_once_the_next_word_begins() -> None:
    splitter = Splitter()
    for fragment in ["Dr", ". Smith paid 3", ".", "5 dollars", "."]:
        splitter.feed(fragment)
        assert splitter.take() is None
    splitter.feed(" ")  # "dollars. " can no longer become "dollars.5"
    part = splitter.take()
    assert part is not None
    assert part.sentences == ["Dr. Smith paid 3.5 dollars."]
    assert not splitter.pending


def test_a_cut_gives_up_to_the_last_clause_end_or_word() -> None:
    splitter = Splitter()
    splitter.feed("Well, this is a long thought that go")
    assert splitter.take() is None
    part = splitter.cut()
    assert part is not None
    assert part.sentences == ["Well,"]
    part = splitter.cut()
    assert part is not None
    assert part.sentences == ["this is a long thought that"]  # "go" may be "going"
    splitter.feed("es on")
    part = splitter.flush()
    assert part is not None
    assert part.sentences == ["goes on"]


def test_a_cut_takes_a_punctuated_end_whole() -> None:
    splitter = Splitter()
    splitter.feed("Hello there.")
    assert splitter.take() is None
    part = splitter.cut()
    assert part is not None
    assert part.sentences == ["Hello there."]
    assert splitter.flush() is None


def test_origins_name_the_characters_as_sent() -> None:
    source = "Caf\u0065\u0301 one.  Two\r\nthree."
    parts = fed(list(source))
    spans = [source[part.origins[0][0] : part.origins[-1][1]].strip() for part in parts]
    assert spans == ["Cafe\u0301 one.", "Two", "three."]


def test_import_speech_stays_cheap_and_the_response_is_there_once_django_is() -> None:
    script = "import sys, speech; assert 'django' not in sys.modules, sorted(sys.modules); print(speech.__version__)"
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)

    from speech import SpeechResponse
    from speech.live.response import SpeechResponse as Defined

    assert SpeechResponse is Defined
    with pytest.raises(AttributeError):
        speech.NoSuchThing  # noqa: B018


@pytest.mark.parametrize(
    ("pending", "ends"),
    [("Hello there.", True), ('He said "stop."', True), ("Why?", True), ("Dr.", False), ("It cost 3.", False),
     ("e.g.", False), ("U.S.", False), ("a word", False), ("line one\nJ.", False), ("", False)],
)  # fmt: skip
def test_text_that_ends_as_a_sentence_would(pending: str, ends: bool) -> None:
    splitter = Splitter()
    splitter.feed(pending)
    assert splitter.ends_sentence() is ends
