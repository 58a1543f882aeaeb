"""What an engine is, and the registry that loads engines from ``SPEECH["ENGINES"]``."""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from speech.cancellation import Cancellation
from speech.conf import get_config
from speech.errors import InvalidRequest
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
    language: str | None = None  # BCP 47 hint: OpenAI's names then speak as a voice of this language


@dataclass
class SpeechStream:
    """An open stream of encoded audio; ``chunks`` is a generator that cleans up when closed."""

    chunks: Iterator[bytes]
    content_type: str
    engine: str
    # True when ``chunks`` are already server-sent events (an upstream relaying its own SSE).
    sse: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200  # 206 for a replayed range
    # False when a cut stream would end like a complete one (an upstream body with neither length nor
    # chunks): such a stream is never cached.
    cacheable: bool = True
    # Word timings, filled as the audio is made; None for engines that have none (upstream).
    words: Timeline | None = None


class Engine(abc.ABC):
    """What the API needs from an engine; ``SPEECH["ENGINES"]`` backends subclass it."""

    # Counted against SPEECH["MAX_STREAMS"]: the engine synthesises on this machine's cores.
    synthesises_locally = False

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def aliases(self) -> dict[str, str]:
        """Voice name a client may send -> the voice that speaks for it (OpenAI's names onto local voices)."""
        return {}

    def speaks_as(self, voice: str, language: str | None = None) -> str:
        """The voice that would speak for ``voice`` now: an alias followed (the audio cache keys on it)."""
        return self.aliases.get(voice, voice)

    @abc.abstractmethod
    def voices(self) -> list[str]:
        """Voice names this engine accepts, OpenAI's names included."""

    @abc.abstractmethod
    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        """Start speaking. Raise ``SpeechError`` for failures known before the first byte."""

    def describe(self) -> list[dict[str, Any]]:
        """Each voice for ``GET /v1/audio/voices``: ``id``, ``speaks_as`` and what else the engine knows."""
        return [{"id": name, "speaks_as": self.aliases.get(name, name)} for name in self.voices()]

    def warm_up(self) -> None:  # noqa: B027 - most engines have nothing to warm
        """Load and run once at start, so the first request is as fast as the rest."""


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


@receiver(setting_changed)
def _clear_engines(*, setting: str, **kwargs: object) -> None:
    if setting == "SPEECH":
        get_engine.cache_clear()
