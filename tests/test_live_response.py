"""``speech.SpeechResponse`` from a host's own view: text spoken while it is still arriving.

Real servers (gunicorn, uvicorn) serve tests/host_site/live.py, whose sources record when each
fragment was taken and when they were closed. Claims about timing are made causal, never a matter
of speed: a source that waits before its last fragment for a file the test writes when the first
audio byte arrives proves that the audio began before the text ended.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.support.fake_upstream import Behaviour, Chat, FakeUpstream, audio_body
from bench.support.server import STREAMING_SERVERS, Server, start_server, stop_server
from tests.support.audio_check import duration

LIVE_SITE = {"DJANGO_SETTINGS_MODULE": "tests.host_site.live_settings", "SPEECH_LOG_LEVEL": "DEBUG"}
TEXT = (
    "Dr. Smith paid 3.5 dollars for the map, e.g. the old one. The sea was calm, and the sky was grey. "
    "We walked along the shore for an hour or so. Then it rained, and we went home."
)
LONG = " ".join(f"This is sentence number {n}, which keeps the source talking for a while." for n in range(40))
KEY = "sk-live-tests"
SAMPLE_SECONDS = len(audio_body("pcm")) / 2 / 24_000


@pytest.fixture(scope="module")
def live_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Server]]:
    started: dict[str, Server] = {}

    def get(kind: str) -> Server:
        if kind not in started:
            started[kind] = start_server(tmp_path_factory.mktemp(f"live-{kind}"), LIVE_SITE, kind)
        return started[kind]

    yield get
    for server in started.values():
        stop_server(server)


@pytest.fixture(params=STREAMING_SERVERS)
def live(request: pytest.FixtureRequest, live_servers: Callable[[str], Server]) -> Server:
    return live_servers(request.param)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(KEY).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def proxied(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The live site with an upstream engine (tts-1) and chat completions from the fake upstream,
    one stream per client at most."""
    env = {**LIVE_SITE, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url, "SPEECH_MAX_STREAMS_PER_CLIENT": "1"}
    server = start_server(tmp_path_factory.mktemp("live-proxied"), env)
    yield server
    stop_server(server)


@pytest.fixture
def fresh(upstream: FakeUpstream) -> FakeUpstream:
    upstream.behaviour = Behaviour()
    upstream.chat = Chat()
    upstream.exchanges.clear()
    return upstream


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for(log: Path, key: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events(log):
            if key in event:
                return event
        time.sleep(0.01)
    return None


def whole_duration(server: Server, text: str, fmt: str = "mp3") -> float:
    response = server.post_speech(input=text, response_format=fmt, stream=False)
    assert response.status_code == 200
    return duration(response.content, fmt)


def speak(server: Server, view: str = "live/speak", stream: bool = False, **params: object) -> requests.Response:
    """GET a live view (read whole unless ``stream``)."""
    return requests.get(f"{server.url}/{view}", params=params, stream=stream, timeout=120)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("view", "source"), [("live/speak", "sync"), ("live/speak", "async"), ("live/speak-async", "")]
)
def test_first_audio_leaves_before_the_last_fragment(live: Server, tmp_path: Path, view: str, source: str) -> None:
    log, go = tmp_path / "source.log", tmp_path / "go"
    response = speak(live, view, stream=True, text=TEXT, wps=25, size=3, source=source, log=log, go=go)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    body = b""
    for chunk in response.iter_content(chunk_size=None):
        if not body:
            first_byte = time.monotonic()
            go.touch()  # the source's last fragment waits for this
        body += chunk

    taken = events(log)
    went = next(event for event in taken if "went" in event)
    assert went["went"], "the source waited a minute for the first audio byte: the response held the audio back"
    first_sentence_end = next(event["t"] for event in taken if event.get("taken") == _fragment_index(TEXT, "one."))
    assert first_sentence_end < first_byte < went["t"]
    assert any("end" in event for event in taken)
    # All of it, as long as the whole text spoken at once.
    assert duration(body, "mp3") == pytest.approx(whole_duration(live, TEXT), rel=0.10)


def _fragment_index(text: str, word: str, size: int = 3) -> int:
    """The index of the fragment that ends ``word`` when tests/host_site/live.py cuts ``text`` (``size``)."""
    words = re.findall(r"\s*\S+", text)
    at = next(i for i, w in enumerate(words) if w.strip() == word)
    return sum(len(range(0, len(w), size)) for w in words[: at + 1]) - 1


@pytest.mark.parametrize("source", ["sync", "async"])
def test_a_hang_up_closes_the_source_and_stops_synthesis(live: Server, tmp_path: Path, source: str) -> None:
    log = tmp_path / "source.log"
    response = speak(live, stream=True, text=LONG, wps=25, source=source, log=log, format="pcm")
    assert response.status_code == 200
    next(response.iter_content(chunk_size=4096))
    hung_up = time.monotonic()
    response.close()

    closed = wait_for(log, "closed", timeout=10)
    assert closed is not None, "the source was never closed"
    assert closed["t"] - hung_up < 2.0
    assert not any("end" in event for event in events(log))  # closed, not run to its end
    deadline = time.monotonic() + 10
    while "live: listener gone" not in live.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "live: listener gone" in live.log_text()


def test_a_source_that_raises_ends_the_audio_at_its_last_complete_sentence(live: Server, tmp_path: Path) -> None:
    text = "The first sentence is here. The second one follows it. The third is cut off in the"
    broken_at = len(text.split()) - 2  # "in"
    response = speak(live, text=text, wps=50, raise_at=broken_at, log=tmp_path / "source.log", format="wav")
    assert response.status_code == 200
    body = response.content  # a complete stream: the server ended it, it did not break off
    spoken = duration(body, "wav")
    assert spoken == pytest.approx(
        whole_duration(live, "The first sentence is here. The second one follows it.", "wav"), rel=0.10
    )
    assert "the text source raised" in live.log_text()
    assert "RuntimeError: the language model broke off" in live.log_text()


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_an_empty_source_gives_a_short_valid_stream(live: Server, fmt: str) -> None:
    response = speak(live, source="empty", format=fmt)
    assert response.status_code == 200
    assert 0.1 < duration(response.content, fmt) < 0.5  # 0.2 s of silence (and the codec's padding)


def test_an_empty_string_gives_the_same(live: Server) -> None:
    response = speak(live, source="str", text="")
    assert response.status_code == 200
    assert 0.1 < duration(response.content, "mp3") < 0.5


def test_a_sentence_that_never_ends_is_spoken_after_the_wait(live: Server, tmp_path: Path) -> None:
    text = "well this is a thought that goes on and on without ever reaching its end"
    log, go = tmp_path / "source.log", tmp_path / "go"
    response = speak(live, stream=True, text=text, wps=25, log=log, go=go, wait=0.5)
    body = b""
    for chunk in response.iter_content(chunk_size=None):
        if not body:
            go.touch()
        body += chunk
    went = next(event for event in events(log) if "went" in event)
    assert went["went"], "nothing was spoken until the text ended"
    assert duration(body, "mp3") == pytest.approx(whole_duration(live, text), rel=0.25)


def test_a_source_without_sentence_ends_is_spoken_whole_when_it_ends(live: Server) -> None:
    text = "no full stop here either"
    response = speak(live, text=text, wps=100)
    assert duration(response.content, "mp3") == pytest.approx(whole_duration(live, text), rel=0.25)


def test_words_by_the_speech_id(live: Server, tmp_path: Path) -> None:
    response = speak(live, text=TEXT, wps=100, size=2, log=tmp_path / "source.log")
    speech_id = response.headers["X-Speech-Id"]
    assert response.content
    words = requests.get(f"{live.url}/v1/audio/speech/{speech_id}/words", timeout=10)
    assert words.status_code == 200
    data = words.json()["data"]
    assert [word["text"] for word in data][:5] == ["Dr.", "Smith", "paid", "3.5", "dollars"]
    assert all(TEXT[word["char_start"] : word["char_end"]] == word["text"] for word in data)
    assert data[-1]["text"] == "home"
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(data))
    subtitles = requests.get(f"{live.url}/v1/audio/speech/{speech_id}/subtitles", timeout=10)
    assert subtitles.status_code == 200
    assert subtitles.text.startswith("WEBVTT")


def test_sse_carries_words_and_audio(live: Server) -> None:
    response = speak(live, text="Hello there. How are you?", wps=100, stream_format="sse")
    assert response.headers["Content-Type"] == "text/event-stream"
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"  # as OpenAI's stream (and the endpoint's) ends
    kinds = [json.loads(line[6:])["type"] for line in lines[:-1]]
    assert kinds[0] == "speech.word"
    assert "speech.audio.delta" in kinds
    assert kinds[-1] == "speech.audio.done"


def test_one_usage_record_with_the_whole_text(live_servers: Callable[[str], Server]) -> None:
    server = live_servers("gunicorn")
    response = speak(server, text=TEXT, wps=100, size=5)
    assert response.content
    database = Path(server.log).parent / "db.sqlite3"
    rows: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            rows = db.execute(
                "SELECT characters, status, client, bytes FROM speech_usage WHERE request_id = ?",
                (response.headers["X-Request-ID"],),
            ).fetchall()
        time.sleep(0.05)
    assert rows == [(len(TEXT), 200, "page:ip:127.0.0.1", len(response.content))]


def test_upstream_gets_one_request_per_sentence_pipelined(proxied: Server, fresh: FakeUpstream) -> None:
    fresh.behaviour = Behaviour(interval=0.02, chunk_size=8192)  # each sentence's audio takes over a second
    text = "One sentence here. Another one there. And a third."
    response = speak(proxied, source="str", text=text, model="tts-1", format="opus")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/ogg; codecs=opus"
    assert response.headers["X-Speech-Engine"] == "openai"
    assert "X-Speech-Id" not in response.headers
    spoken = duration(response.content, "opus")  # one Ogg stream, made here from upstream's PCM

    # Requests opened at once may reach the upstream in either order.
    speech = {exchange.body["input"]: exchange for exchange in fresh.exchanges if exchange.path == "/v1/audio/speech"}
    assert sorted(speech) == sorted(["One sentence here.", "Another one there.", "And a third."])
    assert {exchange.body["response_format"] for exchange in speech.values()} == {"pcm"}
    first_end = speech["One sentence here."].finished
    assert first_end is not None
    # The next sentence was asked for while the first still streamed.
    assert speech["Another one there."].started < first_end
    assert spoken == pytest.approx(3 * SAMPLE_SECONDS, rel=0.02)


def test_a_second_stream_over_the_client_limit_is_refused_and_its_source_never_read(
    proxied: Server, fresh: FakeUpstream, tmp_path: Path
) -> None:
    holding = speak(proxied, stream=True, text=LONG, wps=5, log=tmp_path / "first.log", format="pcm")
    assert holding.status_code == 200
    refused = speak(proxied, text=TEXT, log=tmp_path / "second.log")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_streams"
    # The documented view's generator is closed before it starts: the chat completion is never requested.
    refused = requests.get(f"{proxied.url}/live/docs-example", timeout=60)
    assert refused.status_code == 429
    holding.close()
    assert wait_for(tmp_path / "first.log", "closed", timeout=10) is not None
    assert events(tmp_path / "second.log") == []
    assert not [exchange for exchange in fresh.exchanges if exchange.path == "/v1/chat/completions"]
    # The slot comes back once the hung-up stream has unwound. (Each answer is read to its end, which
    # arrives only after its own slot is given back.)
    deadline = time.monotonic() + 10
    while speak(proxied, source="empty").status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_documented_view_speaks_a_chat_completion(proxied: Server, fresh: FakeUpstream) -> None:
    question = "What is the sea like?"
    response = requests.get(f"{proxied.url}/live/docs-example", params={"q": question}, timeout=120)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    chats = [exchange for exchange in fresh.exchanges if exchange.path == "/v1/chat/completions"]
    assert len(chats) == 1
    assert chats[0].body["stream"] is True
    assert chats[0].body["messages"] == [{"role": "user", "content": question}]
    speech = [exchange.body["input"] for exchange in fresh.exchanges if exchange.path == "/v1/audio/speech"]
    assert sorted(speech) == sorted(["The sea is wide.", "It is deep, and it is cold.", "Ships cross it every day."])
    assert duration(response.content, "mp3") == pytest.approx(3 * SAMPLE_SECONDS, rel=0.05)


def test_hanging_up_on_the_documented_view_ends_the_chat_request(proxied: Server, fresh: FakeUpstream) -> None:
    fresh.chat = Chat(reply=LONG, interval=0.02)
    response = requests.get(f"{proxied.url}/live/docs-example", stream=True, timeout=120)
    assert response.status_code == 200
    next(response.iter_content(chunk_size=1024))
    hung_up = time.monotonic()
    response.close()
    [chat] = [exchange for exchange in fresh.exchanges if exchange.path == "/v1/chat/completions"]
    closed = fresh.wait_closed(chat, timeout=10)
    assert closed is not None, "the chat completion went on after the listener left"
    assert closed - hung_up < 2.0
    assert chat.finished is None


class Recorded:
    """A source that notes whether it was read and closed."""

    def __init__(self) -> None:
        self.read = self.closed = False

    def __iter__(self) -> Iterator[str]:
        self.read = True
        yield "Never spoken."

    def close(self) -> None:
        self.closed = True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"voice": "nobody", "model": "piper"}, "voice"),
        ({"model": "no-such-model"}, "model"),
        ({"response_format": "ogg"}, "response_format"),
        ({"speed": 9.0}, "speed"),
        ({"stream_format": "json"}, "stream_format"),
    ],
)
def test_a_bad_request_is_an_openai_shaped_error_and_the_source_is_closed_unread(
    rf: Any, options: dict[str, Any], param: str
) -> None:
    from speech import SpeechResponse

    source = Recorded()
    response = SpeechResponse(source, request=rf.get("/"), **options)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert json.loads(b"".join(response.streaming_content))["error"]["param"] == param  # type: ignore[arg-type]
    assert source.closed
    assert not source.read
    response.close()


def test_a_source_must_be_text() -> None:
    from speech import SpeechResponse

    with pytest.raises(TypeError):
        SpeechResponse(42, request=None)  # type: ignore[arg-type]
