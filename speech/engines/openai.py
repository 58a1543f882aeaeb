"""The upstream engine: proxies OpenAI's speech API, or any compatible server, chunk for chunk.

Each upstream read returns whatever bytes have arrived (``raw.read1``), so a chunk is forwarded
the moment it lands, whether upstream frames its body as chunks or with a Content-Length
(``iter_content(n)`` would wait for ``n`` bytes on the latter, ``iter_content(None)`` for all).

Long inputs are split at sentence ends into parts of at most ``max_chars`` characters (OpenAI's
limit is 4,096). The next part is requested as soon as the current one starts streaming, so its
first byte is waiting when the current one ends. ``mp3`` (a leading ID3 tag is dropped from later
parts), ``aac`` (ADTS) and ``pcm`` streams join by concatenation. ``wav``, ``flac`` and ``opus``
carry one container header per stream, so a long input in those formats is declined with a 400
that names the formats that work. A long input asked for as SSE is fetched as audio and wrapped
by the API, so the client gets one ``speech.audio.done`` event.

The API key is sent upstream in the Authorization header and nowhere else. Upstream error bodies
are never relayed: a 401/403 becomes our own 502, a 4xx our own error with upstream's message
scrubbed (the key in any case, anything shaped like an OpenAI key), a ``param`` only if it names a
field we forward (``FORWARDED``) and a ``code`` only if it is a plain identifier.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import logging
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from speech.audio import CONTENT_TYPES
from speech.cancellation import Cancellation, Cancelled
from speech.conf import OPENAI_URL
from speech.engines.base import Engine, SpeechRequest, SpeechStream
from speech.errors import ClientClosed, InvalidRequest, RateLimited, SpeechError, UpstreamError, UpstreamTimeout
from speech.openai_names import OPENAI_VOICES
from speech.text import normalize, sentences

logger = logging.getLogger(__name__)

JOINABLE = ("mp3", "aac", "pcm")
# The request's fields sent upstream: an upstream error's ``param`` is relayed only when it names one.
FORWARDED = ("model", "input", "voice", "response_format", "speed", "instructions", "stream_format")
READ_SIZE = 65_536  # an upper bound per read; a read returns as soon as any bytes are there
_Opened = tuple[requests.Response, Iterator[bytes]]
# What a speech response may be labelled; anything else (text/html from a proxy's error page) is not audio.
_AUDIO_TYPES = ("audio/", "application/octet-stream", "text/event-stream")
_UPSTREAM_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, SpeechError)
# A JSON or HTML document where audio should be (an upstream that sends no Content-Type).
_DOCUMENT = re.compile(rb'\s*(\{\s*"|<[!?a-zA-Z])')
_SECRET = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
_CODE = re.compile(r"[a-z0-9_]{1,64}")
MAX_MESSAGE = 1000
MAX_RETRY_AFTER = 600


class OpenAIEngine(Engine):
    def __init__(
        self,
        alias: str,
        api_key: str,
        base_url: str = OPENAI_URL,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        pool_size: int = 256,
        max_chars: int = 4096,
        voices: list[str] | None = None,
    ) -> None:
        super().__init__(alias)
        self.max_chars = max_chars
        self._key = api_key
        self._url = base_url.rstrip("/") + "/audio/speech"
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept-Encoding": "identity"}
        self._timeout = (connect_timeout, read_timeout)
        self._voices = list(voices or OPENAI_VOICES)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._prefetch = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"speech-{alias}")

    def voices(self) -> list[str]:
        return self._voices

    def speak(self, request: SpeechRequest, cancel: Cancellation) -> SpeechStream:
        parts = self._parts(request)
        stream_format = request.stream_format if len(parts) == 1 else "audio"
        # Opened on the pool so that a listener who hangs up while upstream thinks frees us at once.
        first = self._open_later(request, parts[0], stream_format)
        try:
            response, chunks = _result(first, cancel)
        except Cancelled:
            _discard(first)
            raise ClientClosed("The client closed the connection.", code="client_closed_request") from None
        content_type = response.headers.get("Content-Type") or CONTENT_TYPES[request.response_format]
        return SpeechStream(
            chunks=self._stream(request, parts, (response, chunks), cancel),
            content_type=content_type,
            engine=self.alias,
            sse=content_type.startswith("text/event-stream"),
            cacheable=_framed(response),
        )

    def _parts(self, request: SpeechRequest) -> list[str]:
        if len(request.input) <= self.max_chars:
            return [request.input]
        if request.response_format not in JOINABLE:
            raise InvalidRequest(
                f"Inputs longer than {self.max_chars} characters are spoken in parts, and only "
                f"{', '.join(JOINABLE)} streams can be joined; ask for one of those formats or send "
                f"at most {self.max_chars} characters.",
                param="response_format",
                code="unsupported_format_for_long_input",
            )
        parts: list[str] = []
        for sentence in sentences(normalize(request.input), self.max_chars):
            if parts and len(parts[-1]) + 1 + len(sentence) <= self.max_chars:
                parts[-1] += " " + sentence
            else:
                parts.append(sentence)
        return parts

    def _open_later(self, request: SpeechRequest, text: str, stream_format: str) -> Future[_Opened]:
        """``_open`` on the pool, in this request's context (its logs name the request id)."""
        return self._prefetch.submit(contextvars.copy_context().run, self._open, request, text, stream_format)

    def _open(self, request: SpeechRequest, text: str, stream_format: str) -> _Opened:
        """Send one request and wait for its first byte; failures become ``SpeechError``."""
        body: dict[str, Any] = {
            "model": request.model,
            "input": text,
            "voice": request.voice,
            "response_format": request.response_format,
            "speed": request.speed,
        }
        if request.instructions is not None:
            body["instructions"] = request.instructions
        if stream_format != "audio":
            body["stream_format"] = stream_format
        try:
            response = self._session.post(
                self._url, json=body, headers=self._headers, stream=True, timeout=self._timeout
            )
        except requests.Timeout:
            raise UpstreamTimeout(f"The upstream speech service '{self.alias}' did not answer in time.") from None
        except requests.RequestException:
            logger.warning("upstream %r is unreachable at %s", self.alias, self._url)
            raise UpstreamError(f"The upstream speech service '{self.alias}' is unreachable.") from None
        if response.status_code != 200:
            with response:
                raise self._error(response)
        content_type = response.headers.get("Content-Type", "")
        if content_type and not content_type.startswith(_AUDIO_TYPES):  # an HTML page, a JSON document
            response.close()
            raise UpstreamError(
                f"The upstream speech service '{self.alias}' answered with {content_type.split(';')[0]}, not audio.",
                code="upstream_not_audio",
            )
        chunks = _read(response)
        try:
            first = next(chunks, b"")
        except urllib3.exceptions.ReadTimeoutError:
            response.close()
            raise UpstreamTimeout(f"The upstream speech service '{self.alias}' sent no audio in time.") from None
        except _UPSTREAM_FAILURES:
            response.close()
            raise UpstreamError(f"The upstream speech service '{self.alias}' broke off before any audio.") from None
        if not first:  # a 200 with an empty body
            response.close()
            raise UpstreamError(f"The upstream speech service '{self.alias}' broke off before any audio.")
        if not content_type and _DOCUMENT.match(first):
            response.close()
            raise UpstreamError(
                f"The upstream speech service '{self.alias}' answered with a document, not audio.",
                code="upstream_not_audio",
            )
        return response, itertools.chain([first], chunks)

    def _error(self, response: requests.Response) -> SpeechError:
        status = response.status_code
        logger.warning(
            "upstream %r answered HTTP %d (its request id %s)",
            self.alias,
            status,
            response.headers.get("x-request-id", "-"),
        )
        if status in (400, 404, 422):
            return self._refusal(response)
        if status in (401, 403):
            return UpstreamError(
                f"The upstream speech service '{self.alias}' refused this server's credentials.",
                code="upstream_unauthorized",
            )
        if status == 429:
            return RateLimited(
                f"The upstream speech service '{self.alias}' is rate limiting this server; retry later.",
                code="rate_limit_exceeded",
                headers=_retry_after(response.headers.get("Retry-After", "")),
            )
        return UpstreamError(f"The upstream speech service '{self.alias}' failed (HTTP {status}).")

    def _refusal(self, response: requests.Response) -> InvalidRequest:
        """Upstream's 4xx in our own words: its message scrubbed, a ``param`` we know, a plain ``code``."""
        try:
            error = response.json()["error"]
            message, param, code = error["message"], error.get("param"), error.get("code")
        except (ValueError, KeyError, TypeError):
            message, param, code = None, None, None
        if not isinstance(message, str):
            message = f"The upstream speech service '{self.alias}' refused the request."
        return InvalidRequest(
            self._scrub(message)[:MAX_MESSAGE],
            param=param if isinstance(param, str) and param in FORWARDED else None,
            code=code if isinstance(code, str) and _CODE.fullmatch(code) and self._scrub(code) == code else None,
            status=response.status_code,
        )

    def _scrub(self, text: str) -> str:
        """``text`` without this server's key (in any case) or anything shaped like an OpenAI key."""
        if self._key:
            text = re.sub(re.escape(self._key), "[redacted]", text, flags=re.IGNORECASE)
        return _SECRET.sub("[redacted]", text)

    def _stream(
        self, request: SpeechRequest, parts: list[str], opened: _Opened, cancel: Cancellation
    ) -> Iterator[bytes]:
        response, chunks = opened
        pending: Future[_Opened] | None = None
        sent = 0
        try:
            for index in range(len(parts)):
                if pending is not None:
                    response, chunks = _result(pending, cancel)
                    pending = None
                    if request.response_format == "mp3":
                        chunks = _without_id3(chunks)
                with cancel.on_cancel(functools.partial(_hang_up, response)):
                    for chunk in chunks:
                        if index + 1 < len(parts) and pending is None:
                            pending = self._prefetch.submit(
                                contextvars.copy_context().run, self._open, request, parts[index + 1], "audio"
                            )
                        sent += len(chunk)
                        yield chunk
                response.close()
        except _UPSTREAM_FAILURES as error:
            if cancel.cancelled:
                return
            logger.warning("upstream %r stream broke off after %d bytes: %s", self.alias, sent, error)
            raise UpstreamError(f"The upstream speech service '{self.alias}' broke off mid-stream.") from None
        except Cancelled:
            return
        finally:
            response.close()
            if pending is not None:
                _discard(pending)


def _retry_after(value: str) -> dict[str, str]:
    """Upstream's Retry-After in whole seconds, at most ``MAX_RETRY_AFTER``; a date or nonsense is dropped."""
    digits = value.strip()
    if not re.fullmatch(r"[0-9]+", digits):
        return {}
    seconds = MAX_RETRY_AFTER if len(digits) > 6 else min(int(digits), MAX_RETRY_AFTER)
    return {"Retry-After": str(seconds)}


def _framed(response: requests.Response) -> bool:
    """The body has a length or chunks, so a cut is an error; otherwise its end is just the connection's."""
    encoding = response.headers.get("Transfer-Encoding", "").lower()
    return "Content-Length" in response.headers or "chunked" in encoding


def _read(response: requests.Response) -> Iterator[bytes]:
    while chunk := response.raw.read1(READ_SIZE):
        yield chunk


def _hang_up(response: requests.Response) -> None:
    """Close the upstream connection from another thread, waking a read blocked on it.

    ``response.close()`` would wait for that read to return; a socket shutdown ends it at once.
    """
    sock = getattr(response.raw.connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _result(future: Future[_Opened], cancel: Cancellation) -> _Opened:
    """The prefetched part, or ``Cancelled`` as soon as the listener hangs up while we wait."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    with cancel.on_cancel(done.set):
        done.wait()
    if cancel.cancelled:
        raise Cancelled
    return future.result()


def _discard(future: Future[_Opened]) -> None:
    """Close a prefetched part nobody will read, now or whenever it arrives."""

    def close(done: Future[_Opened]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result()[0].close()

    future.cancel()
    future.add_done_callback(close)


def _without_id3(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Drop a leading ID3v2 tag: decoders reject one in the middle of a joined MP3 stream."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 10:
            break
    skip = 0
    if head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for byte in head[6:10]:  # a "syncsafe" integer: 7 bits per byte
            size = size << 7 | (byte & 0x7F)
        skip = 10 + size + (10 if head[5] & 0x10 else 0)  # header, tag, optional footer
    for chunk in itertools.chain([head], chunks):
        cut = min(skip, len(chunk))
        skip -= cut
        if chunk[cut:]:
            yield chunk[cut:]
