"""``manage.py speak``, run the way users run it."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bench.support.server import ROOT, Server
from speech import audio, client
from tests.support.audio_check import duration
from tests.test_client import TEXT, FakeOutput

SHORT = "Hello there. This is the speak command."
ENV = {**os.environ, "DJANGO_SECRET_KEY": "tests-only-secret-key-tests-only-secret-key-0123456789"}
# Lossy codecs add priming and pad the last frame: up to two MP3 frames, three AAC frames.
PADDING = {"mp3": 2 * 1152 / 24_000, "aac": 3 * 1024 / 24_000}
VARIATION = 0.15
SUFFIXES = {"mp3": ".mp3", "opus": ".ogg", "aac": ".aac", "flac": ".flac", "wav": ".wav", "pcm": ".pcm"}


def speak(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "manage.py", "speak", *args]
    return subprocess.run(command, cwd=ROOT, env=ENV, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def spoken_seconds(server: Server) -> float:
    """How long SHORT lasts, from the server's raw PCM."""
    return duration(server.post_speech(input=SHORT, response_format="pcm", stream=False).content, "pcm")


@pytest.mark.parametrize("fmt", audio.FORMATS)
def test_out_file_decodes_to_the_right_duration(
    server: Server, tmp_path: Path, spoken_seconds: float, fmt: str
) -> None:
    out = tmp_path / f"speech{SUFFIXES[fmt]}"
    result = speak(SHORT, "--server", f"{server.url}/v1", "--out", str(out))

    assert result.returncode == 0, result.stderr
    # Piper's phoneme durations are sampled, so two renderings of one text differ by up to ~7 %.
    slack = VARIATION * spoken_seconds + PADDING.get(fmt, 0)
    assert duration(out.read_bytes(), fmt) == pytest.approx(spoken_seconds, abs=slack)
    assert f"saved {duration(out.read_bytes(), fmt):6.1f} s" in result.stderr


def test_text_from_stdin_with_format_and_speed(server: Server, tmp_path: Path, spoken_seconds: float) -> None:
    out = tmp_path / "speech.bin"
    options = ["--format", "wav", "--speed", "2", "--out", str(out)]
    result = speak("-", "--server", f"{server.url}/v1", *options, stdin=SHORT)

    assert result.returncode == 0, result.stderr
    assert duration(out.read_bytes(), "wav") < spoken_seconds * 0.7


def test_without_a_server_the_embedded_engine_speaks(tmp_path: Path, spoken_seconds: float) -> None:
    out = tmp_path / "speech.opus"
    stderr = io.StringIO()
    call_command("speak", SHORT, out=str(out), stderr=stderr)
    assert duration(out.read_bytes(), "opus") == pytest.approx(spoken_seconds, abs=VARIATION * spoken_seconds)
    assert "received" in stderr.getvalue()


def test_plays_through_the_output_with_a_progress_line(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    output = FakeOutput([])
    monkeypatch.setattr(client, "open_output", lambda: output)
    stderr = io.StringIO()

    call_command("speak", SHORT, server=f"{server.url}/v1", format="mp3", stderr=stderr)

    played = client.seconds(b"".join(output.writes))
    assert played > 1
    assert stderr.getvalue().endswith(f"\rreceived {played:6.1f} s   played {played:6.1f} s\n")
    assert output.closed


@pytest.mark.parametrize("module", [None, "no-device"])
def test_no_audio_device_says_to_use_out(monkeypatch: pytest.MonkeyPatch, module: str | None) -> None:
    fake = None
    if module:

        class PortAudioError(Exception):
            pass

        def no_device(**kwargs: object) -> None:
            raise PortAudioError("Error querying device -1")

        fake = types.SimpleNamespace(PortAudioError=PortAudioError, RawOutputStream=no_device)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)

    with pytest.raises(CommandError, match=r"--out"):
        call_command("speak", SHORT, server="http://127.0.0.1:9/v1")


def test_server_errors_show_the_api_message(server: Server, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"Voice 'nobody' is not available.*\(HTTP 400\)"):
        call_command("speak", SHORT, server=f"{server.url}/v1", voice="nobody", out=str(tmp_path / "x.mp3"))


def default_sigint() -> None:
    """Where the tests run in the background SIGINT is ignored, and children inherit that: undo it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def received_seconds(progress: bytes) -> float:
    """The latest "received N s" on the progress line (0 before the first line)."""
    values = re.findall(rb"received +([0-9.]+) s", progress)
    return float(values[-1]) if values else 0.0


def test_ctrl_c_stops_cleanly(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "long.mp3"
    command = [sys.executable, "manage.py", "speak", TEXT * 4, "--server", f"{server.url}/v1", "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, preexec_fn=default_sigint)
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    # Some audio is in, however much: a fast machine may jump from 0.0 s to several seconds at once.
    while received_seconds(seen) == 0 and process.poll() is None and time.monotonic() < deadline:
        if select.select([process.stderr], [], [], 1)[0]:
            seen += os.read(process.stderr.fileno(), 4096)
    assert process.poll() is None, f"speak ended before it could be interrupted: {seen!r}"

    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)  # a loaded machine may take a while to run the handler

    assert process.returncode == 130, rest  # interrupted, not finished: 0 would mean the whole text was saved
    assert b"Stopped." in rest
    assert b"Traceback" not in seen + rest
    # The whole text lasts at least four times TEXT, less the variation: a quarter of it synthesised, not all.
    whole = 4 * (1 - VARIATION) * duration(server.post_speech(input=TEXT, response_format="pcm").content, "pcm")
    assert 0 < duration(out.read_bytes(), "mp3") < whole
