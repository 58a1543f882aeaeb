"""Streaming text-to-speech for Django: an OpenAI-compatible endpoint that plays from the first chunk."""

__version__ = "0.1.0"
