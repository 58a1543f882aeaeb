"""Text -> pieces -> local voice -> encoder -> byte chunks, paced by how far ahead the listener is."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from speech import audio, text, timings
from speech.cancellation import Cancellation, Cancelled, close
from speech.conf import get_config
from speech.scheduler import Grant, scheduler
from speech.timings import Timeline, Voiced, Word

logger = logging.getLogger(__name__)

FIRST_PIECE_WORDS = 3
# A piece may hold this many words per second of audio the listener has in hand. With ~2.5 words
# per second of speech, a piece then lasts about twice the lead, so the lead grows geometrically
# while each piece stays small enough to finish before the listener runs dry, even under load.
WORDS_PER_SECOND_OF_LEAD = 5
# A listener still waiting for its first audio yields, for this long, to listeners about to fall
# silent mid-speech: a gap in speech is worse than a start a little later. Alone, it waits for nobody.
START_GRACE = 1.0
# The first piece's opening is encoded and sent on its own: encoding a whole second of mp3 or opus
# takes 10-20 ms, which the listener would otherwise wait for before the first byte.
OPENING_SECONDS = 0.2
SILENCE_SECONDS = 0.2  # what a text with nothing to say gives: a valid, short stream
# A piece holds at most this many of its voice's own phonemes (at 1x; fewer when slower), about 15 s
# of speech: what a model run costs in memory grows with the audio it makes (~13 MB a second for a
# medium piper voice), and a text's characters say little about that ("1234567890" is ~100 phonemes,
# an emoji or a CJK character is read by its name). Ordinary sentences are well under it.
MAX_PIECE_PHONEMES = 300
# Phonemes a piece may hold per word of the lead's budget: English averages ~6 with its space, so
# ordinary words never hit it, while a "word" that expands (a number, a symbol's name) does.
PHONEMES_PER_WORD = 12


class Segmenter(Protocol):
    def sentences(self, text: str) -> list[str]: ...

    def head(self, sentence: str, max_words: int) -> tuple[str, str]: ...


class Voice(Protocol):
    @property
    def rate(self) -> int: ...

    def synthesize(self, text: str, speed: float, grant: Grant, cancel: Cancellation) -> Voiced: ...


# A voice may also count a text's phonemes as it would speak them (``phonemes(text) -> int``): pieces
# are then bounded by that count, not only by speech.text's estimate.
Phonemes = Callable[[str], int]


def phoneme_limit(speed: float) -> int:
    """The most phonemes one piece, and one model run, may hold at ``speed``: slower speech makes more
    audio of each phoneme, so fewer fit."""
    return max(FIRST_PIECE_WORDS * PHONEMES_PER_WORD, int(MAX_PIECE_PHONEMES * min(1.0, speed)))


def runs(phonemes: list[str], limit: int) -> list[list[str]]:
    """``phonemes`` (one of a voice's sentences) cut into runs of at most ``limit``, of about equal
    length: at a space after a clause's punctuation near the aim, else at a space, else anywhere."""
    result: list[list[str]] = []
    rest = phonemes
    while len(rest) > limit:
        aim = -(-len(rest) // -(-len(rest) // limit))  # len / runs needed, rounded up: at most limit
        spaces = [i for i in range(limit // 3, limit + 1) if rest[i] == " "]
        clauses = [i for i in spaces if i >= aim // 2 and rest[i - 1] in (",", ";", ":")]
        if chosen := clauses or spaces:
            cut = min(chosen, key=lambda i: abs(i - aim))
            result.append(rest[:cut])
            rest = rest[cut + 1 :]
        else:  # one "word" longer than a run: cut inside it
            result.append(rest[:aim])
            rest = rest[aim:]
    result.append(rest)
    return [run for run in result if run]


class Listener:
    """Tracks when a listener playing at 1x will run out of audio."""

    def __init__(self) -> None:
        self.arrived = time.monotonic()
        self.runs_dry: float | None = None  # None until the first audio leaves

    @property
    def deadline(self) -> float:
        return self.arrived + START_GRACE if self.runs_dry is None else self.runs_dry

    def lead(self) -> float:
        return 0.0 if self.runs_dry is None else max(0.0, self.runs_dry - time.monotonic())

    def received(self, seconds: float) -> None:
        now = time.monotonic()
        self.runs_dry = max(self.runs_dry or now, now) + seconds


def next_piece(
    pending: deque[str],
    lead: float,
    head: Callable[[str, int], tuple[str, str]] = text.head,
    phonemes: Phonemes | None = None,
    speed: float = 1.0,
) -> str:
    """Take the next piece: a short head when the listener is close to silence, else a sentence.

    With the voice's ``phonemes``, a piece that would speak more than its budget (the head's words
    at ``PHONEMES_PER_WORD``, at most ``phoneme_limit``) is cut shorter between words, and a single
    word beyond the limit inside it: the rest goes back to ``pending``.
    """
    max_words = max(FIRST_PIECE_WORDS, int(lead * WORDS_PER_SECOND_OF_LEAD))
    piece, rest = head(pending.popleft(), max_words)
    if phonemes is not None:
        most = phoneme_limit(speed)
        end = _phoneme_fit(piece, min(most, (max_words + 2) * PHONEMES_PER_WORD), most, phonemes)
        if end < len(piece):
            rest = piece[end:].strip() + (" " + rest if rest else "")
            piece = piece[:end].strip()
    if rest:
        pending.appendleft(rest)
    return piece


def _phoneme_fit(piece: str, budget: int, most: int, phonemes: Phonemes) -> int:
    """How many leading characters of ``piece`` speak at most ``budget`` phonemes: cut at the last clause
    end or space within the share that fits, or after the first word; a single word may take up to
    ``most``."""
    end, spoken = len(piece), phonemes(piece)
    while spoken > budget:
        first_space = piece.find(" ", 0, end)
        if first_space < 0:  # one word
            if spoken <= most:
                break
            cut = end * most // spoken
        else:  # as speech.text cuts a long sentence: at a clause end past a third of the share, else a space
            share = end * budget // spoken
            window = piece[: share + 1]
            clauses = [m.end() for m in text._CLAUSE_END.finditer(window) if m.end() > share // 3]
            space = window.rfind(" ")
            cut = clauses[-1] if clauses else space if space > 0 else first_space
        if not 0 < cut < end:
            break
        end = cut
        spoken = phonemes(piece[:end])
    return end


class _Words:
    """Turns a piece's marks into words of the input: times in the stream, offsets in ``input``."""

    def __init__(
        self, input_text: str, normalized: str, origins: list[tuple[int, int]], rate: int, spaced: bool = True
    ) -> None:
        self.input, self.normalized, self.origins, self.rate = input_text, normalized, origins, rate
        self.cursor = 0  # where the next piece starts in the normalised text
        # Words end at spaces; False: a voice's own segmenter cuts only between whole words (Japanese).
        self.spaced = spaced

    def of(self, piece: str, voiced: Voiced, samples_before: int) -> list[Word]:
        at = self.normalized.find(piece, self.cursor)
        self.cursor = end = at + len(piece)
        marks = list(voiced.marks)
        # A piece cut inside a long word (a script the cutter weighs heavily): the word is the
        # previous piece's, which spoke its start and named all of it.
        if self.spaced and marks and marks[0].char_start == 0 and at > 0 and not self.normalized[at - 1].isspace():
            marks.pop(0)
        words = []
        for mark in marks:
            first, last = at + mark.char_start, at + mark.char_end
            if self.spaced and last == end and end < len(self.normalized) and not self.normalized[end].isspace():
                first, last = self._whole_token(first)
            char_start, char_end = self.origins[first][0], self.origins[last - 1][1]
            words.append(
                Word(
                    text=self.input[char_start:char_end],
                    start=round((samples_before + mark.start) / self.rate, 3),
                    end=round((samples_before + mark.end) / self.rate, 3),
                    char_start=char_start,
                    char_end=char_end,
                    estimated=mark.estimated,
                )
            )
        return words

    def _whole_token(self, inside: int) -> tuple[int, int]:
        start = max(self.normalized.rfind(" ", 0, inside), self.normalized.rfind("\n", 0, inside)) + 1
        end = len(self.normalized)
        for space in (" ", "\n"):
            found = self.normalized.find(space, inside)
            end = found if 0 <= found < end else end
        _, _, inner_start, inner_end = timings.tokens(self.normalized[start:end])[0]
        return start + inner_start, start + inner_end


def stream(
    voice: Voice, input_text: str, fmt: str, speed: float, cancel: Cancellation, timeline: Timeline | None = None
) -> Iterator[bytes]:
    yield from encode(_voiced(voice, input_text, speed, cancel, timeline), fmt, voice.rate, cancel, timeline)


def encode(
    pieces: Iterator[tuple[bytes, int]],
    fmt: str,
    rate: int,
    cancel: Cancellation,
    timeline: Timeline | None,
    quiet: tuple[type[Exception], ...] = (Cancelled,),
) -> Iterator[bytes]:
    """The PCM ``pieces`` as one encoded stream, each piece's first ``opening`` bytes (its second item)
    encoded and sent on their own. Nothing voiced ends as a moment of silence (still valid audio); a
    complete stream completes ``timeline``. Cut short (the listener gone, one of ``quiet`` raised): the
    pieces are closed, ``cancel`` is cancelled, so nothing goes on running for this listener."""
    encoder = audio.encoder(fmt, rate)
    finished = False
    voiced = 0
    try:
        for pcm, opening in pieces:
            voiced += len(pcm)
            for part in (pcm[:opening], pcm[opening:]):
                if part and (data := encoder.write(part)):
                    yield data
        if not cancel.cancelled:
            if not voiced:  # nothing to say (";", an empty source): a moment of silence is still valid audio
                yield encoder.write(bytes(int(rate * SILENCE_SECONDS) * 2))
            finished = True
            if timeline is not None:
                timeline.complete = True
            yield encoder.close()
    except quiet:
        return
    finally:
        if not finished:
            close(pieces)
            cancel.cancel()
            with contextlib.suppress(Exception):
                encoder.close()


def _voiced(
    voice: Voice, input_text: str, speed: float, cancel: Cancellation, timeline: Timeline | None
) -> Iterator[tuple[bytes, int]]:
    """The voice's PCM piece by piece, with how much of the first goes out on its own (for ``encode``)."""
    normalized, origins = text.normalize_mapped(input_text)
    # A voice may cut its language its own way (Kokoro's Japanese: no spaces); else speech.text's rule.
    segmenter: Segmenter = getattr(voice, "segmenter", None) or text
    count: Phonemes | None = getattr(voice, "phonemes", None)
    pending = deque(segmenter.sentences(normalized))
    words = _Words(input_text, normalized, origins, voice.rate, spaced=segmenter is text)
    listener = Listener()
    spoken_all = False
    pieces = voiced = 0
    # A text within MAX_INPUT_CHARS can still speak for hours ("1234567890 " repeated): a cost bomb.
    most: float | None = get_config()["MAX_AUDIO_SECONDS"]
    try:
        while pending and not cancel.cancelled:
            if most and voiced / 2 / voice.rate >= most:
                logger.warning("audio cut at MAX_AUDIO_SECONDS (%g s): %d pieces left unspoken", most, len(pending))
                break
            with scheduler.slot(listener.deadline, cancel, first=not voiced) as grant:
                # Sized now, not before the wait: the lead has shrunk while other listeners ran.
                piece = next_piece(pending, listener.lead(), segmenter.head, count, speed)
                pieces += 1
                logger.debug("piece %d: %d characters, lead %.2f s", pieces, len(piece), listener.lead())
                spoken = voice.synthesize(piece, speed, grant, cancel)
            if timeline is not None:  # before the audio: a word never arrives after its sound
                timeline.add(words.of(piece, spoken, voiced // 2))
            pcm = spoken.pcm
            listener.received(len(pcm) / 2 / voice.rate)
            opening = 0 if voiced else int(OPENING_SECONDS * voice.rate) * 2
            voiced += len(pcm)
            yield pcm, opening
        spoken_all = not cancel.cancelled
    finally:
        if not spoken_all:
            logger.info("listener gone after %d pieces; synthesis stopped", pieces)
