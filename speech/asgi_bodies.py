"""Request bodies under ASGI: whole, bounded and on time before the application sees them.

Django's ``ASGIHandler`` reads a body to its end before it checks ``DATA_UPLOAD_MAX_MEMORY_SIZE``,
spooling it to a temporary file, and waits for it with no time limit: under uvicorn a client could
send 100 MB to disk before its 413, or dribble a byte a second for as long as it liked. Wrapped
in ``bounded_bodies``, a request announcing too much is refused unread, one sending too much is cut
off at the limit (what it is still sending is read on and thrown away for up to ``LINGER`` seconds,
as nginx's lingering close does: closing on unread bytes resets the connection, and the reset can
destroy the 413 before the client reads it), and one whose body has not arrived within ``seconds``
gets a 408. The body is then handed to the application in one piece; later ``receive`` calls (a
hang-up) pass straight through. The gunicorn worker (``speech.workers``) does the same for WSGI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings

from speech.errors import SpeechError

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


LINGER = 1.0


class _Gone(Exception):
    """The client hung up while sending its body."""


class _CutOff(SpeechError):
    """The body grew past the limit while it was being read."""


def bounded_bodies(app: App, seconds: float = 10.0) -> App:
    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            body = await asyncio.wait_for(_read(scope, receive, limit), seconds)
        except TimeoutError:
            late = f"The request body did not arrive within {seconds:g} s."
            return await _refuse(send, SpeechError(late, status=408, code="request_timeout"))
        except _CutOff as refused:
            await _linger(receive)
            return await _refuse(send, refused)
        except SpeechError as refused:
            return await _refuse(send, refused)
        except _Gone:
            return None
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await app(scope, replay, send)

    return application


async def _read(scope: Scope, receive: Receive, limit: int | None) -> bytes:
    too_large = f"The request body is larger than {limit} bytes."
    announced = dict(scope.get("headers") or []).get(b"content-length", b"").strip()
    if limit is not None and announced.isdigit() and len(announced) < 20 and int(announced) > limit:
        raise SpeechError(too_large, status=413, code="request_too_large")
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        part = message.get("body", b"")
        size += len(part)
        if limit is not None and size > limit:
            raise _CutOff(too_large, status=413, code="request_too_large")
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _linger(receive: Receive) -> None:
    try:
        async with asyncio.timeout(LINGER):
            while (message := await receive())["type"] == "http.request" and message.get("more_body", False):
                pass
    except TimeoutError:
        pass


async def _refuse(send: Send, error: SpeechError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
