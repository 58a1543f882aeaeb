"""The upstream engine through the real server, against a fake OpenAI that streams real audio."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator

import openai
import pytest
import requests

from bench.support.fake_upstream import Behaviour, FakeUpstream, audio_body
from bench.support.server import Server, free_port, start_server, stop_server
from tests.support.audio_check import duration

KEY = "sk-test-0123456789abcdefSECRET"
TEXT = "Hello from upstream. This is proxied chunk for chunk."


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(KEY).start()
    yield fake
    fake.stop()


def proxy_env(upstream: FakeUpstream) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_TIMEOUT": "1",
        "SPEECH_MAX_INPUT_CHARS": "50000",
        "SPEECH_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture(scope="module")
def proxy(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("proxy"), proxy_env(upstream))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def patient_proxy(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The proxy waiting 10 s for the upstream's first byte, for an upstream slow to start."""
    server = start_server(tmp_path_factory.mktemp("patient-proxy"), {**proxy_env(upstream), "OPENAI_TIMEOUT": "10"})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def asgi_proxy(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The proxy under uvicorn, for the hang-up tests: ASGI reports a hang-up differently."""
    server = start_server(tmp_path_factory.mktemp("asgi-proxy"), proxy_env(upstream), kind="uvicorn")
    yield server
    stop_server(server)


@pytest.fixture(autouse=True)
def fresh(upstream: FakeUpstream) -> None:
    upstream.behaviour = Behaviour()
    upstream.api_key = KEY
    upstream.exchanges.clear()


# Upstream waits this long for each chunk to reach the client before it sends the next one anyway.
HELD_BACK = 10.0


def post(server: Server, **body: object) -> requests.Response:
    payload: dict[str, object] = {"model": "tts-1", "input": TEXT, **body}
    return server.post_speech(True, **payload)


def receive(response: requests.Response) -> list[tuple[float, int]]:
    """(arrival time, end offset) of every chunk, read as soon as it arrives."""
    arrivals = []
    offset = 0
    for chunk in response.iter_content(chunk_size=None):
        offset += len(chunk)
        arrivals.append((time.monotonic(), offset))
    return arrivals


class Receipts:
    """What the client has received, for an upstream that sends a chunk only once the one before arrived."""

    def __init__(self) -> None:
        self.offset = 0
        self.held: list[int] = []  # ends of chunks that did not arrive before upstream gave up waiting
        self._arrived = threading.Condition()

    def got(self, size: int) -> None:
        with self._arrived:
            self.offset += size
            self._arrived.notify_all()

    def wait_for(self, end: int) -> None:
        """In the upstream's thread: wait for the client to have every byte up to ``end``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.offset >= end, timeout=HELD_BACK):
                self.held.append(end)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_each_chunk_reaches_the_client_before_upstream_sends_the_next(
    proxy: Server, upstream: FakeUpstream, chunked: bool
) -> None:
    # A proxy that holds a chunk back until more comes would wait for ever here: upstream sends
    # nothing more until the client has it. No clock is read, so a busy machine cannot fail it.
    receipts = Receipts()
    upstream.behaviour = Behaviour(ttfb=0.3, chunk_size=4096, chunked=chunked, after_chunk=receipts.wait_for)
    response = post(proxy)
    for chunk in response.iter_content(chunk_size=None):
        receipts.got(len(chunk))

    assert receipts.offset == len(audio_body("mp3"))
    assert receipts.held == [], f"bytes up to {receipts.held} waited for the next chunk from upstream"


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("mp3", "audio/mpeg"),
        ("opus", "audio/opus"),  # upstream's own type, relayed (ours for local opus differs)
        ("aac", "audio/aac"),
        ("flac", "audio/flac"),
        ("wav", "audio/wav"),
        ("pcm", "audio/pcm"),
    ],
)
def test_bytes_identical_end_to_end(proxy: Server, upstream: FakeUpstream, fmt: str, content_type: str) -> None:
    upstream.behaviour = Behaviour(chunk_size=1000)
    response = post(proxy, response_format=fmt)

    assert response.status_code == 200
    assert response.content == audio_body(fmt)
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Speech-Engine"] == "openai"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert response.headers["X-Accel-Buffering"] == "no"


def test_request_fields_and_key_reach_upstream(proxy: Server, upstream: FakeUpstream) -> None:
    body: dict[str, object] = {
        "model": "gpt-4o-mini-tts",
        "input": TEXT,
        "voice": "coral",
        "response_format": "aac",
        "speed": 1.25,
        "instructions": "Speak like a lighthouse keeper.",
    }
    assert proxy.post_speech(True, **body).status_code == 200
    (exchange,) = upstream.exchanges
    assert exchange.body == body
    assert exchange.headers["Authorization"] == f"Bearer {KEY}"


def test_piper_stays_local_when_upstream_is_configured(proxy: Server, upstream: FakeUpstream) -> None:
    response = proxy.post_speech(model="piper", input="Local.", response_format="pcm")
    assert response.status_code == 200
    assert response.headers["X-Speech-Engine"] == "piper"
    assert upstream.exchanges == []


def test_sse_is_relayed_as_sse(proxy: Server, upstream: FakeUpstream) -> None:
    upstream.behaviour = Behaviour(chunk_size=3000)
    response = post(proxy, model="gpt-4o-mini-tts", stream_format="sse")

    assert response.headers["Content-Type"] == "text/event-stream"
    assert upstream.exchanges[0].body["stream_format"] == "sse"
    events = [line for line in response.text.split("\n\n") if line]
    assert len(events) == len(range(0, len(audio_body("mp3")), 3000)) + 1
    assert events[-1] == 'data: {"type": "speech.audio.done", "usage": {"input_tokens": 1}}'


@pytest.mark.parametrize(
    ("behaviour", "status", "message"),
    [
        (Behaviour(status=400, message="Input is not speakable."), 400, "Input is not speakable."),
        (Behaviour(status=404, message="Model tts-9 does not exist."), 404, "Model tts-9 does not exist."),
        (Behaviour(status=422, message="Voice is unknown."), 422, "Voice is unknown."),
        (Behaviour(status=403), 502, "refused this server's credentials"),
        (Behaviour(status=429, retry_after="7"), 429, "rate limiting"),
        (Behaviour(status=500), 502, "failed (HTTP 500)"),
        (Behaviour(status=503), 502, "failed (HTTP 503)"),
        (Behaviour(hang=True), 504, "did not answer in time"),
        (Behaviour(hang_after_headers=True), 504, "sent no audio in time"),
        (Behaviour(drop_after=0), 502, "broke off before any audio"),
    ],
    ids=["400", "404", "422", "403", "429", "500", "503", "hang", "hang-after-headers", "drop-at-once"],
)
def test_upstream_errors_are_mapped(
    proxy: Server, upstream: FakeUpstream, behaviour: Behaviour, status: int, message: str
) -> None:
    upstream.behaviour = behaviour
    response = post(proxy)
    error = response.json()["error"]

    assert response.status_code == status
    assert message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    if status in (400, 404, 422):
        assert error["param"] == "input"  # upstream's own detail, relayed
    assert response.headers.get("Retry-After") == ("7" if status == 429 else None)


def test_bad_key_is_502_and_upstream_words_about_it_are_not_relayed(proxy: Server, upstream: FakeUpstream) -> None:
    upstream.api_key = "sk-the-right-one"  # ours is now wrong; the fake names it in its 401 body
    response = post(proxy)

    assert upstream.exchanges[0].headers["Authorization"] == f"Bearer {KEY}"
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unauthorized"
    assert KEY not in response.text
    assert "Incorrect API key" not in response.text


def test_unreachable_upstream_is_502(make_server: object) -> None:
    closed_port = free_port()
    server = make_server(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=f"http://127.0.0.1:{closed_port}/v1")  # type: ignore[operator]
    response = post(server)
    assert response.status_code == 502
    assert "unreachable" in response.json()["error"]["message"]
    assert KEY not in response.text + server.log_text()


def test_upstream_dropping_mid_stream_ends_the_stream_without_garbage(proxy: Server, upstream: FakeUpstream) -> None:
    upstream.behaviour = Behaviour(chunk_size=1000, interval=0.01, drop_after=20_500)
    response = post(proxy)
    chunks: list[bytes] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # cut, not a clean end
        chunks.extend(response.iter_content(chunk_size=None))
    data = b"".join(chunks)

    assert data == audio_body("mp3")[:20_500]
    wait_for_log(proxy, "upstream 'openai' stream broke off after 20500 bytes")


def wait_for_log(server: Server, text: str) -> None:
    deadline = time.monotonic() + 5
    while text not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()[-2000:]
        time.sleep(0.05)


def send_speech_request(server: Server) -> socket.socket:
    """POST a speech request on a raw socket, which the caller closes like a browser tab closing."""
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": TEXT}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body)
    )
    return sock


def hang_up_after_first_bytes(server: Server) -> float:
    """Start a stream, read its first audio bytes, then close the socket like a closed browser tab."""
    with send_speech_request(server) as sock:
        received = b""
        while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return time.monotonic()


@pytest.mark.parametrize("served_by", ["proxy", "asgi_proxy"])
@pytest.mark.parametrize(
    "behaviour",
    [Behaviour(interval=0.05, chunk_size=500), Behaviour(interval=30, chunk_size=500)],
    ids=["streaming", "upstream-stalled"],
)
def test_client_hang_up_closes_the_upstream_connection(
    request: pytest.FixtureRequest, upstream: FakeUpstream, behaviour: Behaviour, served_by: str
) -> None:
    upstream.behaviour = behaviour
    closed = hang_up_after_first_bytes(request.getfixturevalue(served_by))
    (exchange,) = upstream.exchanges
    seen = upstream.wait_closed(exchange, timeout=3)

    assert seen is not None, "upstream never saw the connection close"
    assert seen - closed < 0.5  # the issue allows a second
    assert exchange.finished is None


def long_text(characters: int) -> str:
    sentence = "Long text is spoken in parts, each one ending where a sentence ends. "
    return (sentence * (characters // len(sentence) + 1))[:characters].rsplit(". ", 1)[0] + "."


def joined(fmt: str, parts: int) -> bytes:
    data = audio_body(fmt)
    later = data[10 + 35 :] if fmt == "mp3" else data  # the fixture's ID3 tag: 10 + 35 bytes
    assert fmt != "mp3" or later[:2] == b"\xff\xf3"  # an MPEG frame starts right after it
    return data + later * (parts - 1)


def test_long_text_is_split_at_sentences_and_joined_seamlessly(patient_proxy: Server, upstream: FakeUpstream) -> None:
    """Timed for mp3 alone (6 s of the fake's pauses): the parts are asked for and joined alike in every
    format; mp3's join also drops each later part's ID3 tag. The bytes of each format's join:
    test_long_text_output_is_one_decodable_stream."""
    text, fmt = long_text(10_000), "mp3"
    # A slow first byte, so that a join that waited for it stands far above any stall of a busy machine.
    upstream.behaviour = Behaviour(ttfb=1.2, interval=0.1, chunk_size=len(audio_body(fmt)) // 20 + 1)
    response = post(patient_proxy, input=text, response_format=fmt)
    arrivals = receive(response)
    inputs = [exchange.body["input"] for exchange in upstream.exchanges]

    assert len(inputs) == 3
    assert all(len(part) <= 4096 and part.endswith(".") for part in inputs)
    assert " ".join(inputs) == text
    # Each next part was asked for while the current one was still streaming ...
    for current, following in itertools.pairwise(upstream.exchanges):
        assert current.finished is not None
        assert following.started < current.finished
    # ... so its 1.2 s time to first byte never shows as a pause between parts.
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrivals)]
    assert max(gaps) < 0.6, gaps
    assert arrivals[-1][1] == len(joined(fmt, 3))


@pytest.mark.parametrize("fmt", ["mp3", "aac", "pcm"])
def test_long_text_output_is_one_decodable_stream(proxy: Server, upstream: FakeUpstream, fmt: str) -> None:
    response = post(proxy, input=long_text(10_000), response_format=fmt)
    data = response.content
    one = duration(audio_body(fmt), fmt)

    assert data == joined(fmt, 3)
    # Three parts' worth of audio; mp3 keeps each later part's encoder delay (~0.05 s).
    assert 3 * one - 0.01 < duration(data, fmt) < 3 * one + 0.2


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus"])
def test_long_text_in_a_container_format_is_declined(proxy: Server, upstream: FakeUpstream, fmt: str) -> None:
    response = post(proxy, input=long_text(5000), response_format=fmt)
    error = response.json()["error"]

    assert response.status_code == 400
    assert error["param"] == "response_format"
    assert "mp3, aac, pcm" in error["message"]
    assert upstream.exchanges == []


def test_long_text_as_sse_ends_with_one_done_event(proxy: Server, upstream: FakeUpstream) -> None:
    response = post(proxy, model="gpt-4o-mini-tts", input=long_text(6000), stream_format="sse")
    events = [line for line in response.text.split("\n\n") if line]

    assert response.headers["Content-Type"] == "text/event-stream"
    assert [exchange.body.get("stream_format") for exchange in upstream.exchanges] == [None, None]
    assert sum('"speech.audio.done"' in event for event in events) == 1
    assert events[-2].startswith('data: {"type": "speech.audio.done"')
    assert events[-1] == "data: [DONE]"  # as OpenAI's own stream ends


def test_openai_client_streams_through_us(proxy: Server, upstream: FakeUpstream) -> None:
    upstream.behaviour = Behaviour(chunk_size=4096, interval=0.01)
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="client-side-key", max_retries=0)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="opus"
    ) as response:
        data = b"".join(response.iter_bytes())
    assert data == audio_body("opus")
    assert response.headers["X-Speech-Engine"] == "openai"

    upstream.behaviour = Behaviour(status=400, message="Input is not speakable.")
    with pytest.raises(openai.BadRequestError, match="Input is not speakable"):
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    upstream.behaviour = Behaviour(status=429, retry_after="3")
    with pytest.raises(openai.RateLimitError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    assert caught.value.response.headers["Retry-After"] == "3"


def test_the_key_appears_in_no_response_and_no_log(proxy: Server, upstream: FakeUpstream) -> None:
    texts: list[str] = []

    def record(response: requests.Response) -> None:
        texts.append(str(response.headers))
        texts.append(response.content.decode("latin-1"))

    scenarios = [
        Behaviour(),
        Behaviour(status=400, message=f"Your request with {KEY} was odd."),  # an upstream echoing it
        Behaviour(status=401),
        Behaviour(status=500, message=KEY),
        Behaviour(hang=True),
    ]
    for behaviour in scenarios:
        upstream.behaviour = behaviour
        record(post(proxy))
        record(post(proxy, stream_format="sse", model="gpt-4o-mini-tts"))
    upstream.api_key = "sk-another"
    record(post(proxy))
    for path in ("/", "/v1/models", "/v1/audio/voices", "/v1/openapi.json", "/v1/docs"):
        record(requests.get(f"{proxy.url}{path}", timeout=10))

    assert "[redacted]" in "".join(texts)  # the echoing 400 was relayed, scrubbed
    assert all(KEY not in text for text in texts)
    assert KEY not in proxy.log_text()
    assert len(upstream.exchanges) == 2 * len(scenarios) + 1


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_hang_up_while_upstream_thinks_frees_the_stream_at_once(
    upstream: FakeUpstream, make_server: object, kind: str
) -> None:
    """One stream per client: the next request must not wait for upstream's late first byte."""
    server: Server = make_server(  # type: ignore[operator]
        kind, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=upstream.url, SPEECH_MAX_STREAMS_PER_CLIENT="1"
    )
    upstream.behaviour = Behaviour(ttfb=4.0)
    with send_speech_request(server):
        time.sleep(0.5)  # upstream is still thinking
    time.sleep(0.5)  # the hang-up is noticed within a poll or two

    upstream.behaviour = Behaviour()
    started = time.monotonic()
    response = post(server)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 2.5  # not held until the first request's upstream answered
    response.close()
