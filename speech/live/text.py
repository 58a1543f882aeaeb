"""Sentences out of text that arrives in fragments, exactly as the whole text would be split.

``Splitter.feed`` takes fragments however they are cut (inside a word, a number, "e.g.", a surrogate
pair, between a letter and its combining mark); ``take`` returns the sentences that no later text can
change, ``flush`` the rest at the end. Fed any split of a text, ``take`` and ``flush`` together give
``text.sentences(text.normalize(whole))``: what the REST endpoint would speak for the whole text.

A sentence is final once the character after its end (and the white space after it) is known: only
then is "3." not "3.5" and "end." not "end.\u0301". A fragment that ends in white space counts as
that: whatever comes next starts a new word. To decide, the pending text is normalised with a
sentinel letter appended, which stands for "any continuation".

``cut`` is for a source that pauses mid-sentence: it gives up the unfinished sentence up to its last
clause end (or word end), so a listener is not kept waiting for a full stop that is slow to come.
Sentences then differ from the whole text's, which is the point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from speech import text

# Stands for "whatever comes next": a letter never composed with what precedes it.
_SENTINEL = "a"
_GAP = re.compile(r"\s+")
_PUNCTUATED = re.compile(r"[.!?…。！？]+[\"'”’)\]]*\Z")
# Text pending without a sentence end beyond this (in normalised characters) is cut anyway: a source
# of letters without spaces must not make every fragment renormalise megabytes.
MAX_PENDING_CHARS = 4 * text.MAX_SEGMENT_CHARS


@dataclass(frozen=True)
class Part:
    """Sentences ready to speak, in the normalised text they were cut from.

    ``origins[i]`` is the span of the whole input (every fragment so far) that ``normalized[i]``
    came from, so word timings name characters of the text as the source sent it.
    """

    sentences: list[str]
    normalized: str = ""
    origins: list[tuple[int, int]] = field(default_factory=list)


class Splitter:
    def __init__(self, max_chars: int = text.MAX_SEGMENT_CHARS) -> None:
        self.max_chars = max_chars
        self._fragments: list[str] = []
        self._length = 0  # characters received
        self._pending = ""  # received, not yet given out
        self._offset = 0  # where ``_pending`` starts in the whole input

    @property
    def text(self) -> str:
        """Everything received so far."""
        if len(self._fragments) > 1:
            self._fragments = ["".join(self._fragments)]
        return self._fragments[0] if self._fragments else ""

    @property
    def pending(self) -> bool:
        """Whether text waits that would be spoken (not only white space or invisible characters)."""
        return not text.is_blank(self._pending)

    def feed(self, fragment: str) -> None:
        self._fragments.append(fragment)
        self._length += len(fragment)
        self._pending += fragment

    def take(self) -> Part | None:
        """The sentences no later text can change, or None."""
        normalized, origins = text.normalize_mapped(self._pending + _SENTINEL)
        normalized, origins = normalized[:-1], origins[:-1]
        lines = normalized.split("\n")
        sentences: list[str] = []
        line_start = 0
        for line in lines[:-1]:  # a line followed by another is complete
            sentences += text.sentences(line, self.max_chars)
            line_start += len(line) + 1
        last = lines[-1]
        start = 0
        for match in text._SENTENCE_END.finditer(last):
            if text._is_abbreviation(last, match.end()):
                continue
            sentences += text._bounded(last[start : match.end()].strip(), self.max_chars)
            gap = _GAP.match(last, match.end())
            start = gap.end() if gap else match.end()
        bounded, start = self._long(last, start)
        sentences += bounded
        if len(last) - start > MAX_PENDING_CHARS:
            space = last.rfind(" ", start)
            end = space if space > start else len(last)
            sentences += text._bounded(last[start:end].strip(), self.max_chars)
            start = end
        return self._give(normalized, origins, line_start + start, sentences)

    def ends_sentence(self) -> bool:
        """Whether the pending text ends as a sentence would ("end.", not "Dr." or "3."), though the next
        character, which would settle it, has not come yet."""
        normalized = text.normalize(self._pending)
        tail = normalized[normalized.rfind("\n") + 1 :]
        punctuation = _PUNCTUATED.search(tail)
        if punctuation is None or text._is_abbreviation(tail, len(tail.rstrip("\"'”’)]"))):
            return False
        return not tail[: punctuation.start()][-1:].isdigit()

    def cut(self) -> Part | None:
        """The unfinished sentence up to its last clause end, else its last complete word (else all)."""
        part = self.take()
        if part is not None or not self.pending:
            return part
        normalized, origins = text.normalize_mapped(self._pending + _SENTINEL)
        normalized, origins = normalized[:-1], origins[:-1]
        line_start = normalized.rfind("\n") + 1  # take() has given out every complete line
        last = normalized[line_start:]
        if _PUNCTUATED.search(last):
            end = len(last)
        else:
            clauses = [m.end() for m in text._CLAUSE_END.finditer(last)]
            end = clauses[-1] if clauses else last.rfind(" ")
            if end <= 0:
                end = len(last)
        sentences = text._bounded(last[:end].strip(), self.max_chars)
        gap = _GAP.match(last, end)
        return self._give(normalized, origins, line_start + (gap.end() if gap else end), sentences)

    def flush(self) -> Part | None:
        """Everything left (the source has ended)."""
        normalized, origins = text.normalize_mapped(self._pending)
        part = self._part(text.sentences(normalized, self.max_chars), normalized, origins)
        self._offset += len(self._pending)
        self._pending = ""
        return part

    def complete(self) -> Part | None:
        """Everything left up to its last sentence end (the source failed: an unfinished sentence is dropped)."""
        normalized, origins = text.normalize_mapped(self._pending)
        sentences = text.sentences(normalized, self.max_chars)
        line_ended = self._pending.rstrip(" \t").endswith(("\n", "\r"))
        if sentences and not _PUNCTUATED.search(sentences[-1]) and not line_ended:
            sentences.pop()
        part = self._part(sentences, normalized, origins)
        self._offset += len(self._pending)
        self._pending = ""
        return part

    def _long(self, line: str, start: int) -> tuple[list[str], int]:
        """Pieces of an unfinished sentence already past the length bound, cut as the whole text would be.

        Only the words before the last space are settled; a piece is given out only where the whole
        text's cut would fall on white space, so the rest starts a word as it would there.
        """
        pieces: list[str] = []
        while True:
            settled = line[start : line.rfind(" ", start) if " " in line[start:] else start]
            if text._spoken_length(settled) <= self.max_chars:
                return pieces, start
            cut = text._cut_point(settled, text._fit_count(settled, self.max_chars))
            if cut >= len(settled) or not line[start + cut].isspace():
                return pieces, start
            pieces.append(settled[:cut].strip())
            gap = _GAP.match(line, start + cut)
            start = gap.end() if gap else start + cut

    def _give(self, normalized: str, origins: list[tuple[int, int]], end: int, sentences: list[str]) -> Part | None:
        """Give out ``normalized[:end]`` (``sentences``); the pending text then starts at ``end``."""
        raw_end = origins[end][0] if end < len(origins) else len(self._pending)
        part = self._part(sentences, normalized[:end], origins[:end])
        if part is None:
            return None
        self._offset += raw_end
        self._pending = self._pending[raw_end:]
        return part

    def _part(self, sentences: list[str], normalized: str, origins: list[tuple[int, int]]) -> Part | None:
        sentences = [sentence for sentence in sentences if sentence]
        if not sentences:
            return None
        shifted = [(start + self._offset, end + self._offset) for start, end in origins]
        return Part(sentences, normalized, shifted)
