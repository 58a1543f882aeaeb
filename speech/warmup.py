"""Load and warm every configured engine and encoder, so the first request is as fast as the rest."""

from __future__ import annotations

from speech import audio
from speech.audio import FORMATS
from speech.conf import get_config
from speech.engines.base import get_engine


def warm_up() -> None:
    for fmt in FORMATS:
        encoder = audio.encoder(fmt, 22_050)
        encoder.write(bytes(4410))
        encoder.close()
    for alias in get_config()["ENGINES"]:
        get_engine(alias).warm_up()
