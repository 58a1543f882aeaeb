"""Play or save speech from any OpenAI-compatible server while it downloads. Needs no Django.

``stream()`` yields PCM (s16le, 24 kHz, mono) as the bytes come in, for every response format:
``pcm`` as is, ``wav`` after its header, and mp3/opus/aac/flac decoded incrementally by PyAV
reading from a file-like object that pulls the HTTP body chunk by chunk. ``play()`` sends that
PCM to the sound card through ``sounddevice`` (the ``client`` extra); ``save()`` writes the
encoded bytes to disk as they arrive. ``words()`` yields each word with its times as the server
speaks it, and ``fetch(..., words=[])`` collects them beside the audio (both ask for SSE).
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import requests

from speech import audio, install_command
from speech.cancellation import close
from speech.timings import Word

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# Audio held before the sound card starts, and the most it buffers: absorbs network jitter.
JITTER_SECONDS = 0.15
SUFFIXES = {".mp3": "mp3", ".opus": "opus", ".ogg": "opus", ".aac": "aac", ".flac": "flac", ".wav": "wav"}
_DEMUXERS = {"mp3": "mp3", "opus": "ogg", "aac": "aac", "flac": "flac"}
# Read no more than the demuxer needs before the first packet (FFmpeg probes 5 MB by default).
_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}

# Called with (seconds received, seconds played or saved).
Progress = Callable[[float, float], None]


class ClientError(Exception):
    """Something the user can fix: the message says what."""


class APIError(ClientError):
    """The server answered with an error; ``message`` is the API's own."""

    def __init__(self, status: int, message: str, type: str | None = None, param: str | None = None) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message
        self.type = type
        self.param = param


class NoAudioDevice(ClientError):
    pass


def fetch(
    text: str,
    *,
    voice: str = "alloy",
    model: str = "gpt-4o-mini-tts",
    response_format: str = "pcm",
    speed: float = 1.0,
    instructions: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    timeout: float = 60.0,
    words: list[Word] | None = None,
) -> Generator[bytes]:
    """POST ``/audio/speech`` and yield the encoded bytes as they arrive; closing stops the download.

    With a ``words`` list, the audio comes as server-sent events and each word the server times
    (``speech.word``) is appended to the list before the audio that holds it is yielded.
    """
    body: dict[str, Any] = {"model": model, "input": text, "voice": voice, "response_format": response_format}
    if words is not None:
        body["stream_format"] = "sse"
    if speed != 1.0:
        body["speed"] = speed
    if instructions:
        body["instructions"] = instructions
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base_url.rstrip('/')}/audio/speech"
    with requests.post(url, json=body, headers=headers, stream=True, timeout=(10.0, timeout)) as response:
        if not response.ok:
            raise _api_error(response)
        # read1 returns what has arrived (one HTTP chunk at most) instead of waiting for a full buffer.
        received = iter(lambda: response.raw.read1(65536, decode_content=True), b"")
        yield from received if words is None else _events(received, words)


def _events(received: Iterator[bytes], words: list[Word]) -> Iterator[bytes]:
    """Server-sent events -> the audio they carry; their words go to ``words``."""
    pending = b""
    for data in received:
        pending += data
        *events, pending = pending.split(b"\n\n")
        for event in events:
            if not event.startswith(b"data: ") or event == b"data: [DONE]":  # OpenAI's end of stream
                continue
            fields = json.loads(event[6:])
            if fields["type"] == "speech.word":
                words.append(Word(**{key: value for key, value in fields.items() if key != "type"}))
            elif fields["type"] == "speech.audio.delta":
                yield base64.b64decode(fields["audio"])


def words(text: str, **options: Any) -> Generator[Word]:
    """Each word of ``text`` with its times, as the server speaks it (the audio is received and dropped).

    Only servers that time words send any: this one's local voices do; OpenAI does not.
    """
    found: list[Word] = []
    for _ in fetch(text, words=found, **options):
        yield from found
        found.clear()
    yield from found


def _api_error(response: requests.Response) -> APIError:
    try:
        error = response.json()["error"]
        return APIError(response.status_code, str(error["message"]), error.get("type"), error.get("param"))
    except (ValueError, KeyError, TypeError):
        return APIError(response.status_code, response.text.strip()[:500] or str(response.reason))


def decode(chunks: Iterable[bytes], fmt: str) -> Generator[bytes]:
    """Encoded chunks in ``fmt`` -> PCM chunks (s16le, 24 kHz, mono), each as soon as it can be decoded.

    Closing the result (or reaching its end) closes ``chunks``.
    """
    if fmt not in audio.FORMATS:
        raise ClientError(f"Unknown format '{fmt}'; use one of {', '.join(audio.FORMATS)}.")
    chunks = iter(chunks)
    try:
        if fmt == "pcm":
            yield from _pcm(chunks)
        elif fmt == "wav":
            yield from _pcm(_wav_data(chunks))
        else:
            yield from _decoded(chunks, fmt)
    except av.FFmpegError as error:
        raise ClientError(f"Cannot decode the {fmt} audio: {error}") from error
    except _Interrupted:
        raise KeyboardInterrupt from None
    finally:
        close(chunks)


def stream(text: str, **options: Any) -> Generator[bytes]:
    """Speak ``text`` and yield PCM (s16le, 24 kHz, mono) while it downloads. Options as for ``fetch``."""
    return decode(fetch(text, **options), options.get("response_format", "pcm"))


def _pcm(chunks: Iterator[bytes]) -> Iterator[bytes]:
    odd = b""
    for chunk in chunks:
        data = odd + chunk
        whole = len(data) - len(data) % 2
        odd = data[whole:]
        if whole:
            yield data[:whole]


def _wav_data(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The samples of a streamed WAV (its sizes may say 0xFFFFFFFF), once the header says they are ours."""
    buffer = b""
    fmt = (0, 0, 0, 0)  # format tag, channels, rate, bits
    for chunk in chunks:
        buffer += chunk
        if len(buffer) < 12:
            continue
        if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
            raise ClientError("The response is not a WAV file.")
        offset = 12  # walk the header's chunks again each time more of it has arrived
        while len(buffer) >= offset + 8:
            tag, size = buffer[offset : offset + 4], int.from_bytes(buffer[offset + 4 : offset + 8], "little")
            if tag == b"data":
                if fmt[0] not in (1, 0xFFFE) or fmt[1:] != (1, audio.OUTPUT_RATE, 16):
                    raise ClientError(f"Unsupported WAV (tag, channels, rate, bits) {fmt}; want 16-bit mono 24 kHz.")
                yield buffer[offset + 8 :]
                yield from chunks
                return
            if tag == b"fmt " and len(buffer) >= offset + 24:
                fmt = struct.unpack_from("<HHI6xH", buffer, offset + 8)
            offset += 8 + size + size % 2
    raise ClientError("The WAV stream ended before its audio started.")


class _Interrupted(Exception):
    """Carries Ctrl+C through FFmpeg's read callback, which passes on only ``Exception``s."""


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of chunks; ``read`` returns what the next chunk has."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:  # all of it: Ctrl+C lands on whichever line runs when FFmpeg calls back
            while not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return 0
                self._pending = memoryview(chunk)
            size = min(len(buffer), len(self._pending))
            buffer[:size] = self._pending[:size]
            self._pending = self._pending[size:]
            return size
        except KeyboardInterrupt:
            raise _Interrupted from None


def _decoded(chunks: Iterator[bytes], fmt: str) -> Iterator[bytes]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=audio.OUTPUT_RATE)
    decoded = False
    with av.open(_ChunkReader(chunks), format=_DEMUXERS[fmt], options=_OPEN_OPTIONS, mode="r") as container:
        for frame in container.decode(audio=0):
            decoded = True
            if pcm := audio.frame_bytes(resampler.resample(frame)):
                yield pcm
    if not decoded:  # e.g. FLAC's demuxer skips anything that is not FLAC without a word
        raise ClientError(f"The response holds no {fmt} audio.")
    if pcm := audio.frame_bytes(resampler.resample(None)):
        yield pcm


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / audio.OUTPUT_RATE


def open_output() -> Any:
    """A stopped ``sounddevice.RawOutputStream`` for our PCM, or ``NoAudioDevice`` saying why not."""
    hint = "Write the audio to a file instead (manage.py speak --out speech.mp3, or save())."
    try:
        import sounddevice
    except ImportError:
        raise NoAudioDevice(f"Playing needs sounddevice: {install_command('client')}. {hint}") from None
    except OSError as error:  # sounddevice imports but finds no PortAudio library
        raise NoAudioDevice(f"No audio output: {error}. {hint}") from None
    try:
        return sounddevice.RawOutputStream(
            samplerate=audio.OUTPUT_RATE, channels=1, dtype="int16", latency=JITTER_SECONDS
        )
    except sounddevice.PortAudioError as error:
        raise NoAudioDevice(f"No audio output device: {error}. {hint}") from None


def play_pcm(frames: Iterator[bytes], output: Any = None, progress: Progress | None = None) -> float:
    """Play PCM frames from the first ``JITTER_SECONDS`` on; return the seconds played once the card is done.

    ``output`` is a stopped ``sounddevice.RawOutputStream`` or alike; it and ``frames`` are closed at the end.
    """
    output = open_output() if output is None else output
    received = 0.0
    held: list[bytes] = []
    try:
        for pcm in frames:
            received += seconds(pcm)
            held.append(pcm)
            if not output.active and received < JITTER_SECONDS:
                continue
            if not output.active:
                output.start()
            output.write(b"".join(held))
            held.clear()
            if progress:
                progress(received, max(0.0, received - output.latency))
        if held:
            if not output.active:
                output.start()
            output.write(b"".join(held))
        output.stop()  # waits until everything written has been played
        if progress:
            progress(received, received)
        return received
    except BaseException:
        output.abort()
        raise
    finally:
        output.close()
        close(frames)


def play(text: str, *, output: Any = None, progress: Progress | None = None, **options: Any) -> float:
    """Speak ``text`` through the sound card, starting with the first chunk. Options as for ``fetch``."""
    output = open_output() if output is None else output  # no device: fail before asking for speech
    return play_pcm(stream(text, **options), output, progress)


def format_for(path: str | Path) -> str:
    return SUFFIXES.get(Path(path).suffix.lower(), "pcm")


def write(chunks: Iterable[bytes], path: str | Path, fmt: str, progress: Progress | None = None) -> float:
    """Write encoded chunks to ``path`` as they arrive (each flushed); return the seconds of audio written."""
    chunks = iter(chunks)
    total = 0.0
    with open(path, "wb") as file:

        def written() -> Iterator[bytes]:
            for chunk in chunks:
                file.write(chunk)
                file.flush()
                yield chunk

        try:
            for pcm in decode(written(), fmt):  # decoding tells how much audio is on disk
                total += seconds(pcm)
                if progress:
                    progress(total, total)
        finally:
            close(chunks)
    return total


def save(text: str, path: str | Path, *, progress: Progress | None = None, **options: Any) -> float:
    """Speak ``text`` into ``path`` (format from its suffix unless ``response_format`` is given)."""
    fmt = options.setdefault("response_format", format_for(path))
    return write(fetch(text, **options), path, fmt, progress)
