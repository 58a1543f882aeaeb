"""Subtitles from word timings: WebVTT and SRT cues made for reading.

A cue holds a sentence or less: at most two lines of about ``LINE_CHARS`` characters and at most
``MAX_SECONDS`` on screen, broken at a sentence end, else at a clause (a comma, a colon), else where
it is full, and at a pause in the speech. Its text is the input as written (punctuation, "Dr.",
"$5") when the input is known, else the words joined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from speech.text import is_abbreviation
from speech.timings import Word

LINE_CHARS = 42
MAX_LINES = 2
MAX_SECONDS = 7.0
MAX_GAP = 0.6  # a pause this long starts a new cue
_SPACES = re.compile(r"\s+")
_CLOSING = "\"')]}»”’"
_SENTENCE_END = ".!?…。！？"
_CLAUSE_END = ",;:—–、，；："


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: list[str]


def cues(words: Sequence[Word], text: str | None = None) -> list[Cue]:
    groups: list[list[Word]] = []
    for word in words:
        group = groups[-1] if groups else None
        if group is None or _ends_cue(group, word, text):
            groups.append([word])
        else:
            group.append(word)
    return [Cue(group[0].start, group[-1].end, _lines(_words_text(group, text))) for group in groups]


def _ends_cue(group: list[Word], word: Word, text: str | None) -> bool:
    last = group[-1]
    if word.start - last.end > MAX_GAP or word.end - group[0].start > MAX_SECONDS:
        return True
    if len(_lines(_words_text([*group, word], text))) > MAX_LINES:
        return True
    mark = _after(last, text).rstrip(_CLOSING)[-1:]
    if mark and mark in _SENTENCE_END and not is_abbreviation(last.text + mark):
        return True
    # A long cue breaks at a clause rather than run on to the limit.
    return bool(mark) and mark in _CLAUSE_END and len(_words_text(group, text)) > LINE_CHARS


def _after(word: Word, text: str | None) -> str:
    """The punctuation that follows a word in the input, up to the next space ("," or ".”")."""
    if text is None:
        return ""  # the words' own text ends with a full stop only where it belongs to them ("Dr.")
    end = word.char_end
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[word.char_end : end]


def _words_text(group: Sequence[Word], text: str | None) -> str:
    if text is None:
        return " ".join(word.text for word in group)
    start, end = group[0].char_start, group[-1].char_end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end += len(_after(group[-1], text))
    return _SPACES.sub(" ", text[start:end]).strip()


def _lines(text: str) -> list[str]:
    """One line; or two split at the space that balances them best, each fitting; else as many as it takes."""
    if len(text) <= LINE_CHARS:
        return [text]
    fitting = [i for i, ch in enumerate(text) if ch == " " and i <= LINE_CHARS and len(text) - i - 1 <= LINE_CHARS]
    if fitting:
        middle = min(fitting, key=lambda i: abs(len(text) / 2 - i))
        return [text[:middle], text[middle + 1 :]]
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= LINE_CHARS:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def webvtt(words: Sequence[Word], text: str | None = None) -> str:
    lines = ["WEBVTT", ""]
    for cue in cues(words, text):
        lines += [f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}", *map(_vtt_escape, cue.lines), ""]
    return "\n".join(lines)


def srt(words: Sequence[Word], text: str | None = None) -> str:
    lines = []
    for number, cue in enumerate(cues(words, text), 1):
        timing = f"{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}"
        lines += [str(number), timing, *map(_srt_escape, cue.lines), ""]
    return "\n".join(lines)


def _vtt_escape(line: str) -> str:
    # As character references, "-->" cannot end the cue's text early.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _srt_escape(line: str) -> str:
    # SRT has no character references: a hyphen that would make "-->" becomes an en dash ("x--->" -> "x––->").
    return re.sub(r"-(?=-+>)", "–", line)


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
