"""Word timings from Python: ``client.words`` and ``manage.py speak --subtitles``."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from django.core.management import call_command

from bench.support.server import Server
from speech import client
from speech.timings import Word
from tests.test_speak_command import speak

TEXT = "Dr. Smith paid $5. Then he left."


def test_client_words_arrive_in_order_with_times(server: Server) -> None:
    words = list(client.words(TEXT, model="piper", base_url=f"{server.url}/v1"))
    assert [word.text for word in words] == ["Dr.", "Smith", "paid", "$5", "Then", "he", "left"]
    assert all(TEXT[word.char_start : word.char_end] == word.text for word in words)
    assert all(a.start <= a.end <= b.start for a, b in itertools.pairwise(words))


def test_fetch_collects_words_beside_the_audio(server: Server) -> None:
    found: list[Word] = []
    pcm = b"".join(client.fetch(TEXT, model="piper", base_url=f"{server.url}/v1", words=found))
    assert len(found) == 7
    assert found[-1].end <= client.seconds(pcm)


def test_speak_writes_subtitles_locally_and_through_a_server(server: Server, tmp_path: Path) -> None:
    vtt, srt = tmp_path / "out.vtt", tmp_path / "out.srt"
    call_command("speak", TEXT, out=str(tmp_path / "a.mp3"), subtitles=str(vtt), stderr=io.StringIO())  # no server
    assert vtt.read_text().startswith("WEBVTT\n\n00:00:00.")
    assert "Dr. Smith paid $5" in vtt.read_text()

    remote = speak(TEXT, "--server", f"{server.url}/v1", "--model", "piper", "--out", str(tmp_path / "b.wav"),
                   "--subtitles", str(srt))  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert srt.read_text().startswith("1\n00:00:00,")
    assert "left" in srt.read_text()
