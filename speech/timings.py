"""Word timings: which word of the input is heard when, from a voice's phoneme alignments.

A voice reports, per piece of text, how many samples each phoneme lasts. The words of the piece
are phonemised one by one and matched against the piece's phonemes (``difflib``), so each phoneme
knows the word it belongs to even where the voice reads a word differently in context or joins
two ("in the" said as one) or expands one ("$5" -> "five dollars"). Voices without alignments get
times spread evenly over their phonemes, flagged ``estimated``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from speech.text import is_abbreviation

# Phonemes that are pauses or word breaks, never part of a word's sound.
_BREAKS = frozenset(" ,.;:!?…—–-\"'()")
_TOKEN = re.compile(r"\S+")
# Characters trimmed off a token's ends for its highlighted span ("paid," -> "paid").
_LEADING = "\"'([{«“‘¿¡"
_TRAILING = "\"')]}»”’,;:!?…"


@dataclass(frozen=True)
class Phone:
    """One phoneme of a piece and the samples it spans in the piece's audio."""

    symbol: str
    start: int
    end: int


@dataclass(frozen=True)
class Mark:
    """A word within one piece: its characters in the piece's text, its samples in the piece's audio."""

    char_start: int
    char_end: int
    start: int
    end: int
    estimated: bool


@dataclass(frozen=True)
class Voiced:
    """What a voice made of one piece: s16le mono PCM and the words in it."""

    pcm: bytes
    marks: list[Mark] = field(default_factory=list)


@dataclass(frozen=True)
class Word:
    """A word of the request's input: seconds in the stream, character offsets in ``input``."""

    text: str
    start: float
    end: float
    char_start: int
    char_end: int
    estimated: bool = False

    def event(self) -> dict[str, Any]:
        return {"type": "speech.word", **asdict(self)}


class Timeline:
    """The words of one stream, appended by the engine before the audio that holds them is yielded."""

    def __init__(self, text: str | None = None) -> None:
        self.text = text  # the input the words' offsets point into, for subtitles that show it as written
        self.words: list[Word] = []
        self.complete = False
        self._taken = 0

    def add(self, words: Sequence[Word]) -> None:
        self.words.extend(words)

    def take(self) -> list[Word]:
        """The words added since the last call."""
        new, self._taken = self.words[self._taken :], len(self.words)
        return new


def tokens(piece: str) -> list[tuple[int, int, int, int]]:
    """(start, end) of each whitespace-separated token, and (start, end) of its highlighted part."""
    result = []
    for match in _TOKEN.finditer(piece):
        start, end = match.span()
        inner_start, inner_end = start, end
        while inner_end - inner_start > 1 and piece[inner_start] in _LEADING:
            inner_start += 1
        while inner_end - inner_start > 1 and (
            piece[inner_end - 1] in _TRAILING
            or (piece[inner_end - 1] == "." and not is_abbreviation(piece[inner_start:inner_end]))
        ):
            inner_end -= 1
        result.append((start, end, inner_start, inner_end))
    return result


def marks(piece: str, phones: Sequence[Phone], phonemize: Callable[[str], list[str]], estimated: bool) -> list[Mark]:
    """The words of ``piece`` located in ``phones`` (the piece's phonemes in order, with samples)."""
    owners: list[int] = []  # per phoneme of the words spoken one by one: which token it belongs to
    spoken: list[str] = []
    found = tokens(piece)
    for index, (start, end, _, _) in enumerate(found):
        symbols = [p for p in phonemize(piece[start:end]) if p not in _BREAKS]
        spoken.extend(symbols)
        owners.extend([index] * len(symbols))
    heard = [phone.symbol for phone in phones]
    owner: list[int | None] = [None] * len(heard)
    matcher = difflib.SequenceMatcher(None, spoken, heard, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if heard[block.b + k] not in _BREAKS:
                owner[block.b + k] = owners[block.a + k]
    _fill(heard, owner, sorted(set(owners)))
    where: dict[int, tuple[int, int]] = {}  # token -> (first, last) index into phones
    for i, who in enumerate(owner):
        if who is not None:
            where[who] = (where.get(who, (i, i))[0], i)
    said = set(owners)
    result: list[Mark] = []
    at, previous = (phones[0].start if phones else 0), None
    for index, (_, _, inner_start, inner_end) in enumerate(found):
        if index not in said:
            continue  # nothing a voice says ("—")
        if index in where:
            first, last = where[index]
            start, end = max(at, phones[first].start), phones[last].end
            # Words said in one breath are contiguous: the transition to this word belongs to the last.
            if previous is not None and all(heard[k] == " " for k in range(where[previous][1] + 1, first)):
                result[-1] = replace(result[-1], end=start)
            previous = index
        else:
            start = end = at  # said, but not found: an instant where it belongs
        result.append(Mark(inner_start, inner_end, start, max(start, end), estimated))
        at = max(start, end)
    return result


def _runs(heard: list[str]) -> list[list[int]]:
    """Indices of the phonemes between breaks: the words as the voice said them."""
    runs: list[list[int]] = [[]]
    for i, symbol in enumerate(heard):
        if symbol in _BREAKS:
            runs.append([])
        else:
            runs[-1].append(i)
    return [run for run in runs if run]


def _fill(heard: list[str], owner: list[int | None], spoken: list[int]) -> None:
    """Give unmatched phonemes an owner: their neighbours' in the same run, else the token skipped there.

    A run none of whose phonemes matched is a word said unlike its dictionary form ("a" said
    weakly, not as the letter's name): it belongs to the next token that has no phonemes yet, if that token comes
    before the next run that did match.
    """
    runs = _runs(heard)
    claimed = {who for who in owner if who is not None}
    last: int | None = None
    for number, run in enumerate(runs):
        known = [owner[j] for j in run if owner[j] is not None]
        if known:
            fill = known[0]
            for j in run:
                fill = owner[j] if owner[j] is not None else fill
                owner[j] = fill
            last = fill
            continue
        later = next((who for r in runs[number + 1 :] for j in r if (who := owner[j]) is not None), None)
        upcoming = [t for t in spoken if (last is None or t > last) and (later is None or t < later)]
        if upcoming and upcoming[0] not in claimed:
            for j in run:
                owner[j] = upcoming[0]
            claimed.add(upcoming[0])
            last = upcoming[0]


def even_phones(symbols: Sequence[str], start: int, samples: int) -> list[Phone]:
    """Phonemes spread evenly over ``samples``: the estimate for voices without alignments."""
    count = max(1, len(symbols))
    return [
        Phone(symbol, start + samples * i // count, start + samples * (i + 1) // count)
        for i, symbol in enumerate(symbols)
    ]
