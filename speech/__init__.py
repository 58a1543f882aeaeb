"""Streaming text-to-speech for Django: an OpenAI-compatible endpoint that plays from the first chunk."""

__version__ = "0.1.0"

# The name on the package index; the import name and app label stay `speech`.
DISTRIBUTION = "django-speech-stream"


def install_command(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"
