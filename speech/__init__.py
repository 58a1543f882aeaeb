"""Streaming text-to-speech for Django: an OpenAI-compatible endpoint that plays from the first chunk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from speech.live.response import SpeechResponse

__version__ = "0.1.0"
__all__ = ["SpeechResponse"]

# The name on the package index; the import name and app label stay `speech`.
DISTRIBUTION = "django-speech-stream"


def install_command(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def __getattr__(name: str) -> Any:
    # Imported on first use: `import speech` stays cheap and needs no configured Django.
    if name == "SpeechResponse":
        from speech.live.response import SpeechResponse

        return SpeechResponse
    raise AttributeError(f"module 'speech' has no attribute {name!r}")
