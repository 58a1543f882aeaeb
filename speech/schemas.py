"""Request and response models: the single source of validation and of the OpenAPI docs."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from speech.audio import Format

SPEEDS = (0.25, 4.0)  # OpenAI's range; the widget's slider covers it too
SubtitleFormat = Literal["vtt", "srt"]


class SpeechBody(Schema):
    # Strict: JSON clients send JSON types (no "2" or true for a speed); the GET stream validates leniently.
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(..., max_length=200, description="`piper` (local) or an OpenAI model name.")
    # Not empty, as the schema says; checked in the view (blank after normalising is refused too), since
    # pydantic's own length check refuses the lone surrogates that normalising drops.
    input: str = Field(
        ...,
        description="The text to speak. At most `SPEECH['MAX_INPUT_CHARS']` characters.",
        json_schema_extra={"minLength": 1},
    )
    voice: str = Field(..., max_length=200, description="A local voice, or one of OpenAI's voice names.")
    response_format: Format = "mp3"
    speed: float = Field(1.0, ge=SPEEDS[0], le=SPEEDS[1])
    instructions: str | None = Field(None, max_length=4096, description="Passed upstream; ignored by piper.")
    stream_format: Literal["audio", "sse"] = "audio"
    language: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        max_length=35,
        description="BCP 47 language of the input (e.g. `de`); OpenAI's voice names then speak as a voice of it.",
    )


class Word(Schema):
    text: str = Field(..., description="The word as it is in `input`.")
    start: float = Field(..., description="Seconds from the start of the audio.")
    end: float
    char_start: int = Field(..., description="Offset of the word in `input` (Python string index).")
    char_end: int
    estimated: bool = Field(..., description="True when the voice gave no alignments and times are estimated.")


class WordList(Schema):
    object: Literal["list"] = "list"
    id: str
    data: list[Word]


class Voice(Schema):
    id: str
    name: str
    engine: str
    model: str = Field(description="The `model` to ask for to speak with this voice (one that picks its engine).")
    speaks_as: str = Field(description="The voice this name speaks as (itself unless it is an alias).")
    language: str | None = Field(None, description="BCP 47, e.g. `de-DE`.")
    language_name: str | None = Field(None, description="The language in English.")
    language_native: str | None = Field(None, description="The language in itself, e.g. `Deutsch`.")
    quality: str | None = None
    sample_rate: int | None = Field(None, description="The model's own rate; audio is always sent at 24 kHz.")
    speakers: int | None = Field(None, description="Speakers of the model; each is a voice `MODEL#SPEAKER`.")
    speaker: str | None = None


class VoiceList(Schema):
    object: Literal["list"] = "list"
    data: list[Voice]
    voices: list[Voice]  # the same list: Open WebUI reads "voices" (with "id" and "name")


class Model(Schema):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(Schema):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorDetail(Schema):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(Schema):
    error: ErrorDetail
