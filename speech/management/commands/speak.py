"""``manage.py speak "text"``: play speech as it streams, or write it to a file."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from speech import audio, client, subtitles, timings
from speech.cancellation import close


class ProgressLine:
    """One line on stderr, redrawn at most ten times a second: seconds received vs played (or saved)."""

    def __init__(self, out: OutputWrapper, label: str) -> None:
        self.out = out
        self.label = label
        self.shown_at = 0.0
        self.state = (0.0, 0.0)

    def __call__(self, received: float, done: float) -> None:
        self.state = (received, done)
        if time.monotonic() - self.shown_at >= 0.1:
            self.show()

    def show(self, ending: str = "") -> None:
        self.shown_at = time.monotonic()
        received, done = self.state
        line = f"\rreceived {received:6.1f} s   {self.label} {done:6.1f} s"
        self.out.write(line, style_func=str, ending=ending)  # plain, not in the error colour
        self.out.flush()


class Command(BaseCommand):
    help = "Speak text: play it from the first chunk, or write it to a file while it streams."
    requires_system_checks: list[str] = []  # needs no database, static files or site checks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text", help='The text to speak; "-" reads it from standard input.')
        parser.add_argument("--voice", default="alloy", help="Voice name (default: alloy).")
        parser.add_argument("--speed", type=float, default=1.0, help="0.25 to 4.0 (default: 1.0).")
        parser.add_argument(
            "--format",
            choices=audio.FORMATS,
            help="Response format (default: from --out's suffix, else pcm).",
        )
        parser.add_argument("--out", help="Write the audio to this file instead of playing it.")
        parser.add_argument(
            "--subtitles", help="Also write the words' timings to this file: WebVTT, or SRT for a .srt name."
        )
        parser.add_argument(
            "--server",
            help="API base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
            "or https://api.openai.com/v1. Without it the embedded engine speaks, no server needed.",
        )
        parser.add_argument(
            "--model", default="gpt-4o-mini-tts", help="Model, with --server (default: gpt-4o-mini-tts)."
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("SPEECH_API_KEY"),
            help="Bearer key for --server (default: $SPEECH_API_KEY).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = sys.stdin.read() if options["text"] == "-" else options["text"]
        if not text.strip():
            raise CommandError("Nothing to say: the text is empty.")
        if not 0.25 <= options["speed"] <= 4.0:
            raise CommandError("--speed must be between 0.25 and 4.0.")
        out = options["out"]
        fmt = options["format"] or (client.format_for(out) if out else "pcm")
        # Ctrl+C is taken between chunks: raised anywhere, it could land inside FFmpeg's read callback and be lost.
        interrupted = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
        try:
            output = None if out else client.open_output()  # no device: say so before synthesising
            progress = ProgressLine(self.stderr, "saved" if out else "played")
            words: list[timings.Word] = []
            chunks = _until(interrupted, self._chunks(text, fmt, options, words))
            if out:
                client.write(chunks, out, fmt, progress)
            else:
                client.play_pcm(client.decode(chunks, fmt), output, progress)
            progress.show(ending="\n")
            if options["subtitles"]:
                self._subtitles(Path(options["subtitles"]), words, text)
        except KeyboardInterrupt:
            self.stderr.write("\nStopped.")
            sys.exit(130)
        except client.ClientError as error:
            raise CommandError(str(error)) from None
        except requests.RequestException as error:
            raise CommandError(f"Cannot reach {options['server']}: {error}") from None
        finally:
            signal.signal(signal.SIGINT, previous)

    def _subtitles(self, path: Path, words: list[timings.Word], text: str) -> None:
        if not words:
            raise CommandError("The engine sent no word timings (upstream engines have none): no subtitles.")
        made = subtitles.srt if path.suffix.lower() == ".srt" else subtitles.webvtt
        path.write_text(made(words, text), "utf-8")

    def _chunks(self, text: str, fmt: str, options: dict[str, Any], words: list[timings.Word]) -> Iterator[bytes]:
        if options["server"]:
            return client.fetch(
                text,
                voice=options["voice"],
                model=options["model"],
                response_format=fmt,
                speed=options["speed"],
                base_url=options["server"],
                api_key=options["api_key"],
                words=words if options["subtitles"] else None,
            )
        from speech.cancellation import Cancellation
        from speech.engines.base import SpeechRequest, get_engine
        from speech.errors import SpeechError

        request = SpeechRequest(
            model="piper", input=text, voice=options["voice"], response_format=fmt, speed=options["speed"]
        )
        try:
            stream = get_engine("piper").speak(request, Cancellation())
        except SpeechError as error:
            raise CommandError(error.message) from None
        return _collected(stream.chunks, stream.words, words)


def _collected(
    chunks: Iterator[bytes], timeline: timings.Timeline | None, words: list[timings.Word]
) -> Iterator[bytes]:
    """The engine's chunks, its words copied to ``words`` as they come; closing stops the engine."""
    try:
        for chunk in chunks:
            words.extend(timeline.take() if timeline else ())
            yield chunk
        words.extend(timeline.take() if timeline else ())
    finally:
        getattr(chunks, "close", lambda: None)()


def _until(interrupted: threading.Event, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        for chunk in chunks:
            if interrupted.is_set():
                raise KeyboardInterrupt
            yield chunk
        if interrupted.is_set():
            raise KeyboardInterrupt
    finally:
        close(chunks)
