"""Decode what the server sent, the way a player would."""

from __future__ import annotations

import io

import av

DEMUXERS = {"mp3": "mp3", "opus": "ogg", "aac": "aac", "flac": "flac", "wav": "wav"}


def duration(data: bytes, fmt: str) -> float:
    """Seconds of audio in ``data``; raises if any packet fails to decode."""
    if fmt == "pcm":
        return len(data) / 2 / 24_000
    samples = 0
    rate = 0
    with av.open(io.BytesIO(data), mode="r", format=DEMUXERS[fmt]) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate if rate else 0.0
