"""Text normalisation and segmentation: sentences of bounded length, and short heads cut from them."""

from __future__ import annotations

import re
import unicodedata

MAX_SEGMENT_CHARS = 300
# A head holds at most this many characters per word it may hold, so that a "word" without spaces
# (4,096 letters, a run of emoji) cannot make a first piece that takes seconds to synthesise.
# Lengths of pieces are counted in Latin letters' worth of speech: see ``_weight``.
CHARS_PER_WORD = 12

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt vs etc fig no vol approx dept est inc ltd co corp
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    e.g i.e a.m p.m u.s u.k cf al""".split()
)
# A sentence ends at . ! ? … (with closing quotes/brackets) followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—–]+(?=\s)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
# What normalising would change in ASCII text: control characters (tabs and \r among them), runs
# of spaces and line breaks, space at either end.
_UNTIDY_ASCII = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]|[ \n][ \n]|\A[ \n]|[ \n]\Z")

# All that ``normalize`` leaves of a text made only of these is "": controls, white space (trimmed from
# the ends of lines), invisible formatting and lone surrogates.
_DROPPED = re.compile(r"[\x00-\x20\x7f-\xa0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2069\u3000\ufeff\ud800-\udfff]*")


def is_blank(text: str) -> bool:
    """``normalize(text) == ""``, decided at the first character that would be kept."""
    return _DROPPED.fullmatch(text) is not None


def normalize(text: str) -> str:
    """NFC, no control or invisible formatting characters, no lone surrogates, tidy whitespace."""
    return normalize_mapped(text)[0]


def normalize_mapped(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``normalize(text)`` and, for each of its characters, the span of ``text`` it came from."""
    if text.isascii() and not _UNTIDY_ASCII.search(text):  # most input: nothing to do, at C speed
        return text, list(zip(range(len(text)), range(1, len(text) + 1), strict=True))
    return _tidied(text)


def _tidied(text: str) -> tuple[str, list[tuple[int, int]]]:
    chars = _composed(text)
    kept: list[tuple[str, int, int]] = []
    for ch, start, end in chars:
        if ch == "\n" and kept and kept[-1] == ("\n", start - 1, start) and text[start - 1] == "\r":
            kept[-1] = ("\n", start - 1, end)  # \r\n: one line break
            continue
        if _INVISIBLE.match(ch):
            continue
        ch = "\n" if ch in "\r\n" else " " if _CONTROL.match(ch) or _SPACES.match(ch) else ch
        if ch == " " and kept and kept[-1][0] == " ":
            kept[-1] = (" ", kept[-1][1], end)
            continue
        kept.append((ch, start, end))
    lines: list[list[tuple[str, int, int]]] = [[]]
    for item in kept:
        if item[0] == "\n":
            lines.append([])
        else:
            lines[-1].append(item)
    result: list[tuple[str, int, int]] = []
    for line in lines:
        while line and line[0][0].isspace():
            line.pop(0)
        while line and line[-1][0].isspace():
            line.pop()
        if line:
            if result:
                result.append(("\n", result[-1][2], line[0][1]))
            result.extend(line)
    return "".join(ch for ch, _, _ in result), [(start, end) for _, start, end in result]


def _composed(text: str) -> list[tuple[str, int, int]]:
    """NFC per run of a starter and its combining marks, each result character spanning its run."""
    runs: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":  # a lone surrogate: dropped
            continue
        if runs and (unicodedata.combining(ch) or "\u1160" <= ch <= "\u11ff"):  # marks, Hangul vowels/finals
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    chars: list[tuple[str, int, int]] = []
    for start, end in runs:
        run = "".join(ch for ch in text[start:end] if not "\ud800" <= ch <= "\udfff")
        chars.extend((ch, start, end) for ch in unicodedata.normalize("NFC", run))
    return chars


def is_abbreviation(word: str) -> bool:
    """An abbreviation or an initial ("Dr.", "e.g.", "J."), whose full stop ends no sentence."""
    word = word.rstrip(".").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the full stop before ``end`` closes an abbreviation or an initial, not a sentence."""
    if text[end - 1] != ".":
        return False
    return is_abbreviation(text[:end].rsplit(None, 1)[-1])


def sentences(text: str, max_chars: int = MAX_SEGMENT_CHARS) -> list[str]:
    """Split normalised text into sentences; lines are separate; long ones are cut to ``max_chars``."""
    result: list[str] = []
    for line in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            if _is_abbreviation(line, match.end()):
                continue
            result.extend(_bounded(line[start : match.end()].strip(), max_chars))
            start = match.end()
        result.extend(_bounded(line[start:].strip(), max_chars))
    return [sentence for sentence in result if sentence]


def _bounded(sentence: str, max_chars: int) -> list[str]:
    pieces = []
    while _spoken_length(sentence) > max_chars:
        cut = _cut_point(sentence, _fit_count(sentence, max_chars))
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return pieces


def _cut_point(sentence: str, limit: int) -> int:
    """Where to cut a too-long sentence: the last clause end, else the last space, else ``limit``."""
    window = sentence[: limit + 1]
    clause_ends = [m.end() for m in _CLAUSE_END.finditer(window) if m.end() > limit // 3]
    if clause_ends:
        return clause_ends[-1]
    space = window.rfind(" ", limit // 3)
    return space if space > 0 else limit


def head(sentence: str, max_words: int) -> tuple[str, str]:
    """Cut at most ``max_words`` words off the front, at a clause end when one is near.

    Returns ``(head, rest)``. The whole sentence is returned when cutting would leave a tail of a
    word or two, which would sound choppy for no gain.
    """
    words = sentence.split(" ")
    if len(words) <= max_words + 2 and _spoken_length(sentence) <= (max_words + 2) * CHARS_PER_WORD:
        return sentence, ""
    window = _fit(" ".join(words[:max_words]), max_words * CHARS_PER_WORD)
    clause_ends = [m.end() for m in _CLAUSE_END.finditer(window + " ")]
    cut = clause_ends[-1] if clause_ends and clause_ends[-1] >= len(window) // 3 else len(window)
    return sentence[:cut].strip(), sentence[cut:].strip()


def _weight(ch: str) -> int:
    """Roughly how many phonemes a character costs, in units of one Latin letter.

    An English voice reads a digit as part of a number, and a symbol (emoji) or a letter of another
    script by its name: 10-20 phonemes each. Synthesis time and memory grow with phonemes (memory
    faster than linearly: 300 emoji in one piece took 2 GB), so pieces are bounded in this unit.
    """
    if ch.isdigit():
        return 4
    if ord(ch) < 0x250 and unicodedata.category(ch)[0] != "S":  # ASCII, Latin-1 and Latin Extended
        return 1
    return CHARS_PER_WORD


def _spoken_length(text: str) -> int:
    return sum(map(_weight, text))


def _fit_count(text: str, budget: int) -> int:
    """How many leading characters of ``text`` fit in ``budget`` (see ``_weight``); at least one."""
    used = 0
    for i, ch in enumerate(text):
        used += _weight(ch)
        if used > budget:
            return max(i, 1)
    return len(text)


def _fit(window: str, budget: int) -> str:
    """The longest prefix of ``window`` within ``budget``, cut at a space if there is one."""
    count = _fit_count(window, budget)
    if count == len(window):
        return window
    space = window.rfind(" ", 0, count + 1)
    return window[: space if space > 0 else count]
