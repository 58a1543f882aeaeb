"""The OpenAI-compatible API: /v1/audio/speech, /v1/audio/voices, /v1/models."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.http.response import HttpResponseBase
from ninja import NinjaAPI, Router
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from speech import keys, schemas, subtitles, text, timings, transcripts
from speech.clients import client_of
from speech.conf import get_config
from speech.engines.base import SpeechRequest, get_engine
from speech.errors import InvalidRequest, NotFound, SpeechError, error_response, invalid_request
from speech.responses import speech_response

logger = logging.getLogger(__name__)

# Auth and limits live on the router: a host that mounts it on its own NinjaAPI keeps them.
router = Router(tags=["audio"], auth=keys.authenticate)

ERRORS: dict[int | str, Any] = {
    400: schemas.ErrorBody, 401: schemas.ErrorBody, 403: schemas.ErrorBody, 429: schemas.ErrorBody,
    502: schemas.ErrorBody, 504: schemas.ErrorBody,
}  # fmt: skip


@router.post("/audio/speech", response={200: None, **ERRORS}, summary="Create speech (streamed)")
def create_speech(request: HttpRequest, body: schemas.SpeechBody) -> HttpResponseBase:
    limit = get_config()["MAX_INPUT_CHARS"]
    if len(body.input) > limit:
        raise InvalidRequest(
            f"'input' is {len(body.input)} characters long; the limit is {limit}.",
            param="input",
            code="string_above_max_length",
        )
    if text.is_blank(body.input):  # nothing left once control and invisible characters are dropped
        raise InvalidRequest("'input' must not be empty.", param="input", code="empty_input")
    return speech_response(request, SpeechRequest(**body.dict()))


@router.get("/audio/speech/{speech_id}/words", response={200: schemas.WordList, 404: schemas.ErrorBody, **ERRORS})
def speech_words(request: HttpRequest, response: HttpResponse, speech_id: str) -> dict[str, Any]:
    """The word timings of a finished synthesis, by the ``X-Speech-Id`` its response carried; only for
    the client (API key, or the page's session) that made or replayed it."""
    words, _ = _finished_transcript(request, speech_id)
    response["Cache-Control"] = "no-store"
    return {"id": speech_id, "data": words}


@router.get(
    "/audio/speech/{speech_id}/subtitles",
    response={200: None, 404: schemas.ErrorBody, **ERRORS},
    summary="Subtitles (WebVTT or SRT) of a finished synthesis",
)
def speech_subtitles(request: HttpRequest, speech_id: str, format: schemas.SubtitleFormat = "vtt") -> HttpResponse:
    words, spoken = _finished_transcript(request, speech_id)
    if format == "srt":
        response = HttpResponse(subtitles.srt(words, spoken), content_type="application/x-subrip; charset=utf-8")
    else:
        response = HttpResponse(subtitles.webvtt(words, spoken), content_type="text/vtt; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="speech.{format}"'
    response["Cache-Control"] = "no-store"
    return response


def _finished_transcript(request: HttpRequest, speech_id: str) -> tuple[list[timings.Word], str | None]:
    found = transcripts.load_transcript(speech_id, client_of(request).resource_owner)
    if found is None:  # another client's synthesis is as unknown as one that never was
        raise NotFound(
            f"No finished synthesis '{speech_id}' has word timings (unknown, still speaking, expired, or from an "
            "engine without timings).",
            param="speech_id",
            code="speech_not_found",
        )
    return found


@router.get("/audio/voices", response=schemas.VoiceList, summary="List voices")
def list_voices(request: HttpRequest) -> dict[str, Any]:
    voices = []
    models = get_config()["MODELS"]
    for alias in dict.fromkeys(models.values()):
        engine = get_engine(alias)
        model = alias if models.get(alias) == alias else next(name for name, to in models.items() if to == alias)
        voices += [{"name": voice["id"], "engine": alias, "model": model, **voice} for voice in engine.describe()]
    return {"data": voices, "voices": voices}


@router.get("/models", response=schemas.ModelList, summary="List models")
def list_models(request: HttpRequest) -> dict[str, Any]:
    models = get_config()["MODELS"]
    return {"data": [{"id": model, "owned_by": alias} for model, alias in models.items()]}


@router.get("/models/{path:model}", response={200: schemas.Model, 404: schemas.ErrorBody}, summary="Retrieve a model")
def retrieve_model(request: HttpRequest, model: str) -> dict[str, Any]:
    models = get_config()["MODELS"]
    if model not in models:
        raise NotFound(f"The model '{model}' does not exist.", param="model", code="model_not_found")
    return {"id": model, "owned_by": models[model]}


class JsonOnlyParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        content_type = request.content_type or ""
        if content_type != "application/json":
            raise InvalidRequest(
                f"Content-Type must be application/json, not '{content_type or 'missing'}'.",
                code="unsupported_content_type",
            )
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidRequest(f"The body is not valid JSON: {error}.", code="invalid_json") from None
        if not isinstance(data, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
        return data


# Handlers take ``Any``: ninja types them loosely.
def _speech_error(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(exc)


def _validation_error(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(invalid_request(exc.errors))


def _http_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if isinstance(exc.__cause__, SpeechError):
        return error_response(exc.__cause__)
    return error_response(SpeechError(str(exc), status=exc.status_code))


def _too_big(request: HttpRequest, exc: Any) -> HttpResponse:
    message = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    return error_response(SpeechError(message, status=413, code="request_too_large"))


def _unreadable(request: HttpRequest, exc: Any) -> HttpResponse:
    # The client went away while sending its body: nobody reads this answer, but it is not our error.
    return error_response(InvalidRequest("The request body could not be read.", code="unreadable_body"))


def build_api(urls_namespace: str = "speech:api") -> NinjaAPI:
    api = NinjaAPI(
        title="speech",
        description="Streaming text-to-speech, compatible with OpenAI's audio API.",
        version="1",
        urls_namespace=urls_namespace,
        docs_url="/docs",
        openapi_url="/openapi.json",
        parser=JsonOnlyParser(),
    )
    api.add_router("/", router)
    api.add_exception_handler(SpeechError, _speech_error)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(RequestDataTooBig, _too_big)
    api.add_exception_handler(UnreadablePostError, _unreadable)
    return api
