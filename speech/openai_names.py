"""OpenAI's voice and model names, part of the API: clients send them unchanged, whatever engine speaks.

Plain constants, imported by settings code (``conf``), the voice store and the engines alike.
"""

from __future__ import annotations

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx",
    "nova", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
