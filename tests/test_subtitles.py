"""Subtitles for reading: cues of a sentence or less, two lines of about 42 characters, at most ~7 s,
the input's punctuation kept; read back by the subtitle parsers players use (webvtt-py, srt)."""

from __future__ import annotations

import html
import io
import re

import pytest
import requests
import srt
import webvtt

from bench.support.server import Server
from speech import subtitles
from speech.timings import Word
from tests.support.audio_check import duration

WORDS_PER_SECOND = 2.5


def timed(text: str) -> list[Word]:
    """Words of ``text`` as a voice would time them: evenly paced, a pause after a sentence."""
    words, at = [], 0.1
    for match in re.finditer(r"\S+", text):
        inner = match.group().strip("\"'.,;:!?“”")
        start = match.start() + match.group().index(inner)
        words.append(Word(inner, at, at + 0.3, start, start + len(inner)))
        at += 1 / WORDS_PER_SECOND + (0.3 if match.group()[-1] in ".!?" else 0)
    return words


def ms(seconds: float) -> float:
    return round(seconds, 3)


def read_vtt(text: str) -> list[tuple[float, float, str]]:
    cues = webvtt.from_buffer(io.StringIO(text)).captions
    return [(seconds(c.start), seconds(c.end), html.unescape(c.text)) for c in cues]


def seconds(clock: str) -> float:
    hours, minutes, rest = clock.split(":")
    return round(int(hours) * 3600 + int(minutes) * 60 + float(rest), 3)


def read_srt(text: str) -> list[tuple[float, float, str]]:
    cues = srt.parse(text)
    return [(round(s.start.total_seconds(), 3), round(s.end.total_seconds(), 3), s.content) for s in cues]


def test_a_cue_per_sentence_with_its_punctuation() -> None:
    text = "Hello there. This starts playing at once."
    words = timed(text)
    first, last = (words[0].start, words[1].end), (words[2].start, words[-1].end)
    expected = [(*map(ms, first), "Hello there."), (*map(ms, last), "This starts playing at once.")]

    assert read_vtt(subtitles.webvtt(words, text)) == expected
    assert read_srt(subtitles.srt(words, text)) == expected


def test_abbreviations_and_amounts_stay_as_written() -> None:
    text = 'Dr. Smith paid $5, e.g. for "the book". Then he left!'
    cues = read_vtt(subtitles.webvtt(timed(text), text))
    assert [cue[2] for cue in cues] == ['Dr. Smith paid $5, e.g. for "the book".', "Then he left!"]


def test_long_sentences_are_cut_into_readable_cues() -> None:
    text = (
        "The committee, having considered every proposal that was submitted during the long consultation, "
        "decided that the new bridge would be built of stone rather than steel, because stone lasts longer, "
        "costs less to keep and looks better beside the old town walls that have stood there for centuries."
    )
    words = timed(text)
    for parse, made in ((read_vtt, subtitles.webvtt), (read_srt, subtitles.srt)):
        cues = parse(made(words, text))
        assert len(cues) > 3
        for start, end, cue in cues:
            lines = cue.split("\n")
            assert len(lines) <= 2, cue
            assert all(len(line) <= 42 for line in lines), cue
            assert end - start <= 7.0, cue
        # Nothing lost or reordered: the cues read back as the input.
        assert " ".join(cue.replace("\n", " ") for _, _, cue in cues) == text
        assert [start for start, _, _ in cues] == sorted(start for start, _, _ in cues)


def test_a_pause_starts_a_new_cue() -> None:
    text = "one two three"
    words = timed(text)
    words[2] = Word("three", 5.0, 5.3, 8, 13)
    assert [cue[2] for cue in read_vtt(subtitles.webvtt(words, text))] == ["one two", "three"]


@pytest.mark.parametrize("raw", ["x--->", "a --> b", "<b>&amp;</b>", "x-->y-->z"])
def test_text_that_looks_like_markup_or_timing_reads_back(raw: str) -> None:
    text = f"{raw} end."
    words = timed(text)
    vtt = read_vtt(subtitles.webvtt(words, text))
    assert [cue[2] for cue in vtt] == [text]  # character references decoded by the parser
    made = subtitles.srt(words, text)
    assert made.count("-->") == 1  # only the timing line
    shown = made.split("\n")[2]
    assert subtitles.srt(words, shown) == made  # escaping what was escaped changes nothing


def test_without_the_input_the_words_are_joined() -> None:
    words = [Word("Hello", 0.05, 0.4, 0, 5), Word("there.", 0.45, 0.9, 6, 12), Word("again", 2.0, 2.5, 14, 19)]
    assert read_srt(subtitles.srt(words)) == [(0.05, 0.9, "Hello there."), (2.0, 2.5, "again")]


def test_the_real_voice_s_subtitles_over_http(server: Server) -> None:
    text = "Hello there. This starts playing at once."
    response = server.post_speech(input=text, response_format="mp3")
    assert response.content  # the whole stream: the words are kept when it ends
    base = f"{server.url}/v1/audio/speech/{response.headers['X-Speech-Id']}/subtitles"

    vtt = read_vtt(requests.get(base, params={"format": "vtt"}, timeout=10).text)
    srt_cues = read_srt(requests.get(base, params={"format": "srt"}, timeout=10).text)

    assert [cue[2] for cue in vtt] == ["Hello there.", "This starts playing at once."]
    assert srt_cues == vtt
    assert vtt[0][0] < vtt[0][1] <= vtt[1][0] < vtt[1][1] < duration(response.content, "mp3")
