"""Streaming encoders over PyAV: int16 mono PCM in, encoded bytes out as soon as the muxer has them.

Every format is 24 kHz mono, like OpenAI's. ``write()`` returns whatever bytes are ready now;
``close()`` flushes the rest. Nothing is held beyond what the codec itself needs to look ahead.
"""

from __future__ import annotations

import struct
from typing import Literal, Protocol, cast, get_args

import av
import av.audio.resampler
import numpy as np

OUTPUT_RATE = 24_000
Format = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
FORMATS: tuple[Format, ...] = get_args(Format)

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

# format -> (muxer, codec, bit rate, muxer options)
_CONTAINERS: dict[str, tuple[str, str, int | None, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", 64_000, {"write_xing": "0", "id3v2_version": "0"}),
    "opus": ("ogg", "libopus", 32_000, {"page_duration": "20000"}),
    "aac": ("adts", "aac", 64_000, {}),
    "flac": ("flac", "flac", None, {}),
}


class Encoder(Protocol):
    content_type: str

    def write(self, pcm: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class _Resampler:
    """int16 mono at ``rate`` -> av frames (or bytes) at 24 kHz."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=OUTPUT_RATE)
        self._pts = 0

    def frames(self, pcm: bytes) -> list[av.AudioFrame]:
        samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
        if samples.shape[1] == 0:
            return []
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return self._resampler.resample(frame)

    def flush(self) -> list[av.AudioFrame]:
        return self._resampler.resample(None)


def frame_bytes(frames: list[av.AudioFrame]) -> bytes:
    """The s16 mono samples of ``frames``, without the padding of their planes."""
    return b"".join(bytes(frame.planes[0])[: frame.samples * 2] for frame in frames)


class PcmEncoder:
    content_type = CONTENT_TYPES["pcm"]

    def __init__(self, rate: int) -> None:
        self._resampler = _Resampler(rate)

    def write(self, pcm: bytes) -> bytes:
        return frame_bytes(self._resampler.frames(pcm))

    def close(self) -> bytes:
        return frame_bytes(self._resampler.flush())


class WavEncoder(PcmEncoder):
    """A RIFF header whose sizes say "unknown" (0xFFFFFFFF), then raw samples as they come."""

    content_type = CONTENT_TYPES["wav"]

    def __init__(self, rate: int) -> None:
        super().__init__(rate)
        self._header: bytes | None = wav_header()

    def write(self, pcm: bytes) -> bytes:
        header, self._header = self._header or b"", None
        return header + super().write(pcm)

    def close(self) -> bytes:
        header, self._header = self._header or b"", None
        return header + super().close()


def wav_header(rate: int = OUTPUT_RATE, unknown: int = 0xFFFFFFFF) -> bytes:
    return (
        b"RIFF" + struct.pack("<I", unknown) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", unknown)
    )  # fmt: skip


class _Sink:
    """A write-only file for the muxer. No ``seek``: muxers must not go back to patch headers."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


class ContainerEncoder:
    def __init__(self, fmt: str, rate: int) -> None:
        muxer, codec, bit_rate, options = _CONTAINERS[fmt]
        self.content_type = CONTENT_TYPES[fmt]
        self._resampler = _Resampler(rate)
        self._sink = _Sink()
        self._container = av.open(self._sink, mode="w", format=muxer, options={"flush_packets": "1", **options})
        self._stream = cast(av.AudioStream, self._container.add_stream(codec, rate=OUTPUT_RATE, layout="mono"))
        if bit_rate:
            self._stream.bit_rate = bit_rate

    def _mux(self, frames: list[av.AudioFrame | None]) -> bytes:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def write(self, pcm: bytes) -> bytes:
        return self._mux(list(self._resampler.frames(pcm)))

    def close(self) -> bytes:
        data = self._mux([*self._resampler.flush(), None])
        self._container.close()
        return data + self._sink.take()


def encoder(fmt: str, rate: int) -> Encoder:
    if fmt == "pcm":
        return PcmEncoder(rate)
    if fmt == "wav":
        return WavEncoder(rate)
    return ContainerEncoder(fmt, rate)
