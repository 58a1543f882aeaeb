"""speech.client against the real server: PCM while it downloads, errors, playback, saving."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.support.server import Server
from speech import audio, client
from tests.support.audio_check import duration

TEXT = " ".join(
    [
        "The first sentence is short.",
        "The second one goes on a little longer, with a clause or two, and a pause in the middle.",
        "Streaming means that the listener hears this while the rest is still being made.",
        "Nothing waits for the last byte before the first one leaves the server.",
    ]
)


class FakeOutput:
    """Stands in for ``sounddevice.RawOutputStream`` where there is no sound card."""

    latency = 0.0

    def __init__(self, events: list[str], interrupt_after: int | None = None) -> None:
        self.events = events
        self.active = False
        self.closed = False
        self.writes: list[bytes] = []
        self.interrupt_after = interrupt_after

    def start(self) -> None:
        self.active = True
        self.events.append("start")

    def write(self, data: bytes) -> None:
        assert self.active, "written before start"
        if self.interrupt_after is not None and len(self.writes) == self.interrupt_after:
            raise KeyboardInterrupt
        self.writes.append(bytes(data))
        self.events.append("write")

    def stop(self) -> None:
        self.active = False
        self.events.append("stop")

    def abort(self) -> None:
        self.active = False
        self.events.append("abort")

    def close(self) -> None:
        self.closed = True


def recorded(frames: Iterator[bytes], got: list[bytes], events: list[str]) -> Iterator[bytes]:
    try:
        for frame in frames:
            got.append(frame)
            yield frame
        events.append("end")
    finally:
        events.append("closed")


@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_first_pcm_arrives_long_before_the_server_finishes(server: Server, fmt: str) -> None:
    start = time.monotonic()
    arrivals = []
    pcm = b""
    for frame in client.stream(TEXT, base_url=f"{server.url}/v1", response_format=fmt):
        arrivals.append(time.monotonic() - start)
        pcm += frame

    assert client.seconds(pcm) > 10
    # Relative and generous: the machine is shared. Decoding starts while most is still being made.
    assert arrivals[0] < arrivals[-1] / 3
    assert len(arrivals) > 10


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"text": "   "}, "input", "must not be empty"),
        ({"text": "Hi.", "voice": "nobody"}, "voice", "Voice 'nobody' is not available"),
        ({"text": "Hi.", "speed": 9.0}, "speed", "speed"),
    ],
)
def test_server_errors_carry_the_api_message(server: Server, body: dict[str, object], param: str, message: str) -> None:
    text = str(body.pop("text"))
    with pytest.raises(client.APIError, match=message) as raised:
        next(client.stream(text, base_url=f"{server.url}/v1", **body))
    assert raised.value.status == 400
    assert raised.value.param == param


def test_play_starts_before_the_stream_ends_and_writes_frames_in_order(server: Server) -> None:
    events: list[str] = []
    got: list[bytes] = []
    output = FakeOutput(events)
    frames = recorded(client.stream(TEXT, base_url=f"{server.url}/v1", response_format="opus"), got, events)

    played = client.play_pcm(frames, output)

    assert events.index("start") < events.index("end")
    assert events.index("write") < events.index("end")
    assert events[-3:] == ["end", "closed", "stop"]
    assert b"".join(output.writes) == b"".join(got)
    assert len(output.writes) > 10
    assert played == pytest.approx(client.seconds(b"".join(got)))
    assert output.closed


def test_play_waits_for_the_jitter_buffer_before_starting() -> None:
    events: list[str] = []
    output = FakeOutput(events)
    tenth = b"\x01\x00" * 2_400  # 0.1 s
    client.play_pcm(recorded(iter([tenth] * 5), [], events), output)
    # 0.15 s must be held before the card starts: two frames in, then one write of both.
    assert output.writes[0] == tenth * 2
    assert output.writes[1:] == [tenth] * 3


def test_ctrl_c_while_playing_aborts_and_closes_the_download(server: Server) -> None:
    events: list[str] = []
    output = FakeOutput(events, interrupt_after=3)
    frames = recorded(client.stream(TEXT, base_url=f"{server.url}/v1"), [], events)

    with pytest.raises(KeyboardInterrupt):
        client.play_pcm(frames, output)

    assert "end" not in events
    assert events[-2:] == ["abort", "closed"]
    assert output.closed


def test_play_fetches_and_plays(server: Server) -> None:
    output = FakeOutput([])
    seconds = client.play("Hello there.", output=output, base_url=f"{server.url}/v1", response_format="mp3")
    assert 0.5 < seconds < 3
    assert client.seconds(b"".join(output.writes)) == pytest.approx(seconds)


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_save_writes_the_format_its_suffix_names(server: Server, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"hello{suffix}"
    progress: list[tuple[float, float]] = []
    seconds = client.save("Hello there.", path, base_url=f"{server.url}/v1", progress=lambda *p: progress.append(p))
    fmt = client.format_for(path)
    assert duration(path.read_bytes(), fmt) == pytest.approx(seconds, abs=0.01)
    assert progress[-1] == (seconds, seconds)
    assert 0.5 < seconds < 3


def test_no_sounddevice_says_to_use_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(client.NoAudioDevice, match=r"--out"):
        client.play("Hello.", base_url="http://127.0.0.1:9/v1")
