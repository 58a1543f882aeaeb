"""Host views that answer with ``SpeechResponse`` over text sources, for tests/test_live_response.py and bench.live.

Served by the repository's own site (``tests.host_site.live_settings``: ttsproject plus these URLs).
A paced source records, in the JSON-lines file ``?log=``, when each fragment was taken and when the
source was closed; with ``?go=PATH`` it waits (up to a minute) for that file before its last fragment,
so a test can make "audio arrived before the text ended" a matter of cause and effect, not of speed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path

from speech import SpeechResponse

GO_TIMEOUT = 60.0


def fragments(text: str, size: int) -> list[str]:
    """Words with the space before them, each cut into pieces of ``size`` characters (0: whole words)."""
    words = re.findall(r"\s*\S+", text)
    if not size:
        return words
    return [word[i : i + size] for word in words for i in range(0, len(word), size)]


class Paced:
    """Fragments of ``text`` at ``wps`` words per second, each recorded in ``log`` as it is taken."""

    def __init__(self, request: HttpRequest) -> None:
        params = request.GET
        self.text = params.get("text", "")
        self.wps = float(params.get("wps", "25"))
        self.size = int(params.get("size", "0"))
        self.log = Path(params["log"]) if params.get("log") else None
        self.go = Path(params["go"]) if params.get("go") else None
        self.go_before = int(params["go_before"]) if params.get("go_before") else None
        self.raise_at = int(params["raise_at"]) if params.get("raise_at") else None
        self.stall_at = int(params["stall_at"]) if params.get("stall_at") else None
        self.parts = fragments(self.text, self.size)

    def note(self, **event: object) -> None:
        if self.log is not None:
            with self.log.open("a") as log:
                log.write(json.dumps({"t": time.monotonic(), **event}) + "\n")

    def delay(self, index: int) -> float:
        """Seconds before fragment ``index``: a word's worth for a fragment that starts a word."""
        return 1 / self.wps if self.parts[index][:1].isspace() or index == 0 else 0.0

    def must_wait(self, index: int) -> bool:
        before = len(self.parts) - 1 if self.go_before is None else self.go_before
        return self.go is not None and index == before

    def sync(self) -> Iterator[str]:
        try:
            for index, part in enumerate(self.parts):
                time.sleep(self.delay(index))
                if self.must_wait(index):
                    self.note(waiting=index)
                    deadline = time.monotonic() + GO_TIMEOUT
                    while self.go is not None and not self.go.exists() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    self.note(went=self.go is not None and self.go.exists())
                if index == self.raise_at:
                    raise RuntimeError("the language model broke off")
                if index == self.stall_at:
                    time.sleep(3600)
                self.note(taken=index)
                yield part
            self.note(end=True)
        finally:
            self.note(closed=True)

    async def asynchronous(self) -> AsyncIterator[str]:
        try:
            for index, part in enumerate(self.parts):
                await asyncio.sleep(self.delay(index))
                if self.must_wait(index):
                    self.note(waiting=index)
                    deadline = time.monotonic() + GO_TIMEOUT
                    while self.go is not None and not self.go.exists() and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                    self.note(went=self.go is not None and self.go.exists())
                if index == self.raise_at:
                    raise RuntimeError("the language model broke off")
                if index == self.stall_at:
                    await asyncio.sleep(3600)
                self.note(taken=index)
                yield part
            self.note(end=True)
        finally:
            self.note(closed=True)


def _options(request: HttpRequest) -> dict[str, object]:
    params = request.GET
    options: dict[str, object] = {
        "voice": params.get("voice", "alloy"),
        "model": params.get("model", "piper"),
        "response_format": params.get("format", "mp3"),
        "stream_format": params.get("stream_format", "audio"),
    }
    if params.get("wait"):
        options["wait"] = float(params["wait"])
    return options


def speak(request: HttpRequest) -> SpeechResponse:
    """A sync view; ``?source=`` ``sync`` (a generator, default), ``async`` (an async generator),
    ``str`` (the whole text at once) or ``empty`` (a generator that yields nothing)."""
    paced = Paced(request)
    kind = request.GET.get("source", "sync")
    source: Any = paced.text
    if kind == "sync":
        source = paced.sync()
    elif kind == "async":
        source = paced.asynchronous()
    elif kind == "empty":
        source = iter(())
    return SpeechResponse(source, request=request, **_options(request))  # type: ignore[arg-type]


async def speak_async(request: HttpRequest) -> SpeechResponse:
    """An async view over an async source: under ASGI the source is read on the request's event loop."""
    return SpeechResponse(Paced(request).asynchronous(), request=request, **_options(request))  # type: ignore[arg-type]


def docs_example(request: HttpRequest) -> HttpResponseBase:
    """The view in docs/live-text.md, run as written (loaded on first use: it makes an OpenAI client)."""
    global _docs_view
    if _docs_view is None:
        source = (Path(__file__).resolve().parents[2] / "docs" / "live-text.md").read_text()
        section = source.split("## From a Django view", 1)[1]
        code = re.search(r"```python\n(.*?)```", section, re.S)
        assert code is not None
        namespace: dict[str, Any] = {"__name__": "live_text_docs"}
        exec(compile(code[1], "docs/live-text.md", "exec"), namespace)
        _docs_view = namespace["answer"]
    return _docs_view(request)


_docs_view: Callable[[HttpRequest], HttpResponseBase] | None = None


urlpatterns = [
    path("live/speak", speak),
    path("live/speak-async", speak_async),
    path("live/docs-example", docs_example),
    path("", include("ttsproject.urls")),
]
