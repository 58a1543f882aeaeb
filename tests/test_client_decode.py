"""speech.client decodes every format incrementally: pieces in, the same samples out, and early."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator

import av
import pytest

from bench.support.server import FIXTURES, ROOT
from speech import audio, client

# mp3 pads the end of the stream with up to one frame of the encoder's silence; only a seekable
# file lets FFmpeg trim it (it reads the padding from the end). Nothing else may differ.
MP3_FRAME_BYTES = 1152 * 2


def reference(fmt: str) -> bytes:
    """The whole fixture decoded from disk in one go, as s16le 24 kHz mono."""
    path = FIXTURES / f"sample.{fmt}"
    if fmt == "pcm":
        return path.read_bytes()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=24_000)
    frames = []
    with av.open(str(path), mode="r") as container:
        for frame in container.decode(audio=0):
            frames += resampler.resample(frame)
    frames += resampler.resample(None)
    return b"".join(bytes(frame.planes[0])[: frame.samples * 2] for frame in frames)


class Pieces:
    """Feeds ``data`` in random pieces of 1..``largest`` bytes and counts what has been taken."""

    def __init__(self, data: bytes, seed: int, largest: int = 700) -> None:
        self.data = data
        self.rng = random.Random(seed)
        self.largest = largest
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < len(self.data):
            size = self.rng.randint(1, self.largest)
            piece = self.data[self.taken : self.taken + size]
            self.taken += len(piece)
            yield piece


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_pieces_decode_to_the_same_samples_as_the_whole_file(fmt: str, seed: int) -> None:
    data = (FIXTURES / f"sample.{fmt}").read_bytes()
    expected = reference(fmt)

    decoded = b"".join(client.decode(iter(Pieces(data, seed)), fmt))

    assert len(expected) > 24_000 * 2 * 9  # the fixture is about 9.8 s long
    if fmt == "mp3":
        assert decoded[: len(expected)] == expected
        assert len(decoded) - len(expected) <= MP3_FRAME_BYTES
    else:
        assert decoded == expected


@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_first_pcm_comes_out_after_a_fraction_of_the_input(fmt: str) -> None:
    data = (FIXTURES / f"sample.{fmt}").read_bytes()
    pieces = Pieces(data, seed=3)
    frames = client.decode(iter(pieces), fmt)

    first = next(frames)
    taken_seconds = pieces.taken / len(data) * len(reference(fmt)) / 2 / 24_000
    frames.close()

    assert len(first) > 0
    assert len(first) % 2 == 0
    # FLAC needs FFmpeg's parser to see ten frame headers (about 1 s), and the Ogg fixture has
    # pages of 1 s; everything else decodes from its first packet.
    assert taken_seconds < (1.4 if fmt in ("flac", "opus") else 0.25)


def test_closing_the_pcm_closes_the_source() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield from Pieces((FIXTURES / "sample.mp3").read_bytes(), seed=4)
        finally:
            closed.append(True)

    frames = client.decode(source(), "mp3")
    next(frames)
    frames.close()
    assert closed == [True]


def test_wav_that_is_not_ours_is_refused_with_a_reason() -> None:
    wav = bytearray((FIXTURES / "sample.wav").read_bytes())
    wav[22:24] = (2).to_bytes(2, "little")  # two channels
    with pytest.raises(client.ClientError, match=r"want 16-bit mono 24 kHz"):
        list(client.decode([bytes(wav)], "wav"))


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_a_stream_in_another_format_is_refused(fmt: str) -> None:
    other = "wav" if fmt == "mp3" else "mp3"
    with pytest.raises(client.ClientError, match=f"{fmt} audio"):
        list(client.decode([(FIXTURES / f"sample.{other}").read_bytes()], fmt))


@pytest.mark.parametrize("error", [KeyboardInterrupt, ConnectionError])
@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_errors_of_the_source_come_through_unchanged(fmt: str, error: type[BaseException]) -> None:
    data = (FIXTURES / f"sample.{fmt}").read_bytes()

    def source() -> Iterator[bytes]:
        yield data[: len(data) // 2]
        raise error

    # Ctrl+C inside FFmpeg's read callback would otherwise end the stream as if it were complete.
    with pytest.raises(error):
        list(client.decode(source(), fmt))


def test_imports_without_django() -> None:
    code = "import sys, speech.client; assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
