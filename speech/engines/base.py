"""What an engine is, and the registry that loads engines from ``SPEECH["ENGINES"]``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.module_loading import import_string

from speech.conf import get_config
from speech.errors import InvalidRequest
from speech.hangup import Cancellation
from speech.timings import Timeline


@dataclass(frozen=True)
class SpeechRequest:
    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    instructions: str | None = None
    stream_format: str = "audio"


@dataclass
class SpeechStream:
    """An open stream of encoded audio; ``chunks`` is a generator that cleans up when closed."""

    chunks: Iterator[bytes]
    content_type: str
    engine: str
    # True when ``chunks`` are already server-sent events (an upstream relaying its own SSE).
    sse: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # Word timings, filled as the audio is made; None for engines that have none (upstream).
    words: Timeline | None = None


class Engine(Protocol):
    alias: str

    def voices(self) -> list[str]:
        """Voice names this engine accepts, OpenAI's names included."""
        ...

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        """Start speaking. Raise ``SpeechError`` for failures known before the first byte."""
        ...


@functools.cache
def get_engine(alias: str) -> Engine:
    engines: dict[str, Any] = get_config()["ENGINES"]
    spec = engines[alias]
    backend = import_string(spec["BACKEND"])
    engine: Engine = backend(alias=alias, **spec.get("OPTIONS", {}))
    return engine


def engine_for_model(model: str) -> Engine:
    models: dict[str, str] = get_config()["MODELS"]
    if model not in models:
        raise InvalidRequest(
            f"Model '{model}' does not exist. Available models: {', '.join(models)}.",
            param="model",
            code="model_not_found",
        )
    return get_engine(models[model])
