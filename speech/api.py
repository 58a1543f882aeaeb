"""The OpenAI-compatible API: /v1/audio/speech, /v1/audio/voices, /v1/models."""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse, UnreadablePostError
from django.http.response import HttpResponseBase
from ninja import NinjaAPI, Router
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from speech import cache as audio_cache
from speech import schemas, security, text, timings, transcripts, usage
from speech.conf import get_config
from speech.engines.base import SpeechRequest, SpeechStream, engine_for_model, get_engine
from speech.errors import InvalidRequest, MethodNotAllowed, NotFound, SpeechError
from speech.hangup import Cancellation, watcher

logger = logging.getLogger(__name__)

router = Router(tags=["audio"])

ERRORS: dict[int | str, Any] = {
    400: schemas.ErrorBody, 401: schemas.ErrorBody, 429: schemas.ErrorBody,
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
    if not text.normalize(body.input):  # blank once control and invisible characters are dropped
        raise InvalidRequest("'input' must not be empty.", param="input", code="empty_input")
    speech = SpeechRequest(**body.dict())
    if (replay := audio_cache.replay(request, speech)) is not None:
        return replay
    cancel = Cancellation()
    # Track: a stream slot (429/503) and the usage record. Watch for a hang-up from the start: an
    # upstream may take seconds to send its first byte.
    with usage.Track(request, speech) as track, watcher.watch(request.META.get("gunicorn.socket"), cancel):
        stream = transcripts.keep(engine_for_model(speech.model).speak(speech, cancel))
    stream = track.stream(audio_cache.tee(request, speech, stream, cancel))  # cache as it streams; record at the end
    return _streaming_response(request, speech, stream, cancel)


@router.api_operation(["GET", "PUT", "PATCH", "DELETE"], "/audio/speech", include_in_schema=False)
def speech_wrong_method(request: HttpRequest) -> HttpResponse:
    raise MethodNotAllowed(f"Method {request.method} is not allowed here; use POST.", headers={"Allow": "POST"})


@router.get("/audio/speech/{speech_id}/words", response={200: schemas.WordList, 404: schemas.ErrorBody, **ERRORS})
def speech_words(request: HttpRequest, speech_id: str) -> dict[str, Any]:
    """The word timings of a finished synthesis, by the ``X-Speech-Id`` its response carried."""
    return {"id": speech_id, "data": _finished_words(speech_id)}


@router.get(
    "/audio/speech/{speech_id}/subtitles",
    response={200: None, 404: schemas.ErrorBody, **ERRORS},
    summary="Subtitles (WebVTT or SRT) of a finished synthesis",
)
def speech_subtitles(request: HttpRequest, speech_id: str, format: schemas.SubtitleFormat = "vtt") -> HttpResponse:
    words = _finished_words(speech_id)
    if format == "srt":
        response = HttpResponse(timings.srt(words), content_type="application/x-subrip; charset=utf-8")
    else:
        response = HttpResponse(timings.webvtt(words), content_type="text/vtt; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="speech.{format}"'
    return response


def _finished_words(speech_id: str) -> list[timings.Word]:
    words = transcripts.load(speech_id)
    if words is None:
        raise NotFound(
            f"No finished synthesis '{speech_id}' has word timings (unknown, still speaking, expired, or from an "
            "engine without timings).",
            param="speech_id",
            code="speech_not_found",
        )
    return words


@router.get("/audio/voices", response=schemas.VoiceList, summary="List voices")
def list_voices(request: HttpRequest) -> dict[str, Any]:
    voices = []
    for alias in dict.fromkeys(get_config()["MODELS"].values()):
        engine = get_engine(alias)
        speaks_as = getattr(engine, "aliases", {})
        for name in engine.voices():
            voices.append({"id": name, "name": name, "engine": alias, "speaks_as": speaks_as.get(name, name)})
    return {"data": voices}


@router.get("/models", response=schemas.ModelList, summary="List models")
def list_models(request: HttpRequest) -> dict[str, Any]:
    models = get_config()["MODELS"]
    return {"data": [{"id": model, "owned_by": alias} for model, alias in models.items()]}


def _streaming_response(
    request: HttpRequest, speech: SpeechRequest, stream: SpeechStream, cancel: Cancellation
) -> StreamingHttpResponse:
    chunks = stream.chunks
    content_type = stream.content_type
    if speech.stream_format == "sse" and not stream.sse:
        chunks = _sse_events(chunks, speech, stream.words)
    if speech.stream_format == "sse":
        content_type = "text/event-stream"
    response = StreamingHttpResponse(
        _watched(chunks, request.META.get("gunicorn.socket"), cancel), content_type=content_type
    )
    for name, value in stream.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    response["X-Speech-Engine"] = stream.engine
    return response


def _watched(chunks: Iterator[bytes], sock: Any, cancel: Cancellation) -> Iterator[bytes]:
    with watcher.watch(sock, cancel):
        yield from chunks


def _sse_events(chunks: Iterator[bytes], speech: SpeechRequest, words: timings.Timeline | None) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        # The engine adds a piece's words before yielding its audio: each word comes before its sound.
        for word in words.take() if words else ():
            yield _sse(word.event())
        yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
    for word in words.take() if words else ():
        yield _sse(word.event())
    input_tokens = math.ceil(len(speech.input) / 4)
    output_tokens = math.ceil(sent / 1000)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage})


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


def error_response(error: SpeechError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


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


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The first of pydantic's (or ninja's) validation errors, OpenAI-shaped, ``param`` naming the field."""
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "payload", "query")]
    param = ".".join(loc) or None
    message = first.get("msg", "Invalid request.")
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'."
    elif param:
        message = f"Invalid value for '{param}': {message}."
    return InvalidRequest(message, param=param, code=first.get("type"))


def _validation_error(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(invalid_request(exc.errors))


def _http_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if isinstance(exc.__cause__, SpeechError):
        return error_response(exc.__cause__)
    return error_response(SpeechError(str(exc), status=exc.status_code))


def _too_big(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(SpeechError("The request body is too large.", status=413, code="request_too_large"))


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
        auth=security.authenticate,
    )
    api.add_router("/", router)
    api.add_exception_handler(SpeechError, _speech_error)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(RequestDataTooBig, _too_big)
    api.add_exception_handler(UnreadablePostError, _unreadable)
    return api
