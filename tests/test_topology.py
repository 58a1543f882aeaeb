"""The production topology, for real: Debian's nginx (configured with deploy/nginx.conf, the file
docs/deploying.md shows) in front of two app servers (gunicorn and uvicorn) sharing a redis-server and a PostgreSQL.
Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3, …), as users on the internet would.

The tests run in file order and the last one kills a server.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from requests.adapters import HTTPAdapter

from bench.support.server import ROOT, Server, free_port, page_config, start_server, stop_server
from speech.conf import DEFAULTS
from tests.support.audio_check import duration
from tests.support.services import nginx, postgres, redis_server
from ttsproject import database

pytestmark = pytest.mark.topology

SITE = ROOT / "deploy" / "nginx.conf"
# The second server's kind (bench/support/server.py SERVERS): sites behind one nginx may mix WSGI and ASGI.
SECOND_SERVER = "uvicorn"
# Which server answered: only the tests' nginx says so.
WHICH = "add_header X-Upstream $upstream_addr always;"
# Every limit at its default: nginx must not turn distinct clients into one.
DEFAULT_LIMITS = {
    "SPEECH_RATE_LIMIT": DEFAULTS["RATE_LIMIT"],
    "SPEECH_MAX_STREAMS_PER_CLIENT": str(DEFAULTS["MAX_STREAMS_PER_CLIENT"]),
    "SPEECH_MAX_STREAMS": str(DEFAULTS["MAX_STREAMS"]),
}
REQUESTS = itertools.count()
TEXT = "Through nginx, this sentence is spoken while the rest of it is still being made, as it is directly. " * 6


GUIDE = (ROOT / "docs" / "deploying.md").read_text()
# The environment the deploying guide's "Behind nginx" section gives every app server.
GUIDE_ENVIRONMENT = set(re.findall(r"^([A-Z_]+)=", GUIDE.split("\n## Behind nginx")[1].split("```")[1], re.M))


def test_the_deploying_guide_shows_the_nginx_configuration_the_tests_run() -> None:
    assert f"```nginx\n{SITE.read_text()}```" in GUIDE


@dataclass
class Topology:
    url: str
    servers: list[Server]
    database_url: str
    access_log: Path


def site_config(upstreams: list[str], port: int, logs: Path) -> str:
    """deploy/nginx.conf with the test's servers, port and log folder in place of the example ones."""
    lines = "".join(f"    server {upstream};\n" for upstream in upstreams)
    site, replaced = re.subn(r"(    server 127\.0\.0\.1:800\d;\n)+", lines, SITE.read_text())
    assert replaced == 1
    for name in ("speech.access.log", "speech.error.log"):
        assert f"/var/log/nginx/{name}" in site
        site = site.replace(f"/var/log/nginx/{name}", str(logs / name))
    return site.replace("listen 80;", f"listen 127.0.0.1:{port};")


def address(server: Server) -> str:
    return server.url.removeprefix("http://")


def answered(response: requests.Response) -> str:
    """The server that answered (after any that nginx tried first and found down)."""
    return response.headers["X-Upstream"].rsplit(", ", 1)[-1]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("topology")
    with redis_server(tmp) as redis_url, postgres() as database_url:
        deployment = {
            "SPEECH_REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "SPEECH_TRUSTED_PROXIES": "127.0.0.1",
        }
        assert set(deployment) == GUIDE_ENVIRONMENT
        env = {**DEFAULT_LIMITS, **deployment, "SPEECH_CACHE_AUDIO": "1"}
        servers = [start_server(tmp, env)]
        try:
            servers.append(start_server(tmp, env, kind=SECOND_SERVER))
            port = free_port()
            site = site_config([address(server) for server in servers], port, tmp / "nginx")
            with nginx(tmp / "nginx", site, WHICH):
                yield Topology(f"http://127.0.0.1:{port}", servers, database_url, tmp / "nginx" / "speech.access.log")
        finally:
            for server in servers:
                stop_server(server)


class FromAddress(HTTPAdapter):
    """Connections from one loopback address: a client of its own, as far as any server can tell."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs, source_address=(self.address, 0))


def client(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session


def speak(url: str, address: str, text: str = "", **headers: str) -> requests.Response:
    """A request for speech from ``address``; unless told, a text never asked for before (no cache hit)."""
    text = text or f"Request {next(REQUESTS)}. {TEXT}"
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "mp3"}
    return client(address).post(f"{url}/v1/audio/speech", json=body, headers=headers, stream=True, timeout=120)


def opened(response: requests.Response) -> Iterator[bytes]:
    """The stream, its first chunk read; the connection stays open while the iterator is kept."""
    assert response.status_code == 200, response.text
    chunks = response.iter_content(None)
    assert next(chunks)
    return chunks


def refused(response: requests.Response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["error"]["code"] == code


def first_byte(url: str, address: str) -> float:
    started = time.monotonic()
    with speak(url, address) as response:
        opened(response)
        return time.monotonic() - started


def test_the_first_byte_comes_as_early_through_nginx_as_directly(topology: Topology) -> None:
    """Were nginx to buffer, the first byte would wait for the whole text (seconds of synthesis)."""
    direct, proxied = [], []
    for _ in range(7):  # interleaved, so that both see the same machine
        direct.append(first_byte(topology.servers[0].url, "127.0.0.2"))
        proxied.append(first_byte(topology.url, "127.0.0.2"))

    assert statistics.median(proxied) < 2 * statistics.median(direct)


def test_eight_clients_stream_at_once_with_the_default_per_client_cap(topology: Topology) -> None:
    addresses = [f"127.0.0.{10 + number}" for number in range(8)]
    streams = [speak(topology.url, address) for address in addresses]
    try:
        flowing = [opened(stream) for stream in streams]
        assert all(next(chunks) for chunks in flowing)  # all eight still streaming together
    finally:
        for stream in streams:
            stream.close()


def test_each_client_has_its_own_stream_cap_whatever_it_claims(topology: Topology) -> None:
    cap = DEFAULTS["MAX_STREAMS_PER_CLIENT"]
    held = [speak(topology.url, "127.0.0.20", **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(cap)]
    try:
        flowing = [opened(stream) for stream in held]
        one_more = speak(topology.url, "127.0.0.20", **{"X-Forwarded-For": "203.0.113.99"})
        assert refused(one_more, 429, "too_many_streams")
        with speak(topology.url, "127.0.0.21") as neighbour:
            opened(neighbour)
        assert all(next(chunks) for chunks in flowing)
    finally:
        for stream in held:
            stream.close()


def test_each_client_has_its_own_rate_limit(topology: Topology) -> None:
    allowed = int(DEFAULTS["RATE_LIMIT"].split("/")[0])
    greedy = client("127.0.0.30")
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) <= 2 * allowed:  # two windows at most, whatever the algorithm
        statuses.append(greedy.get(f"{topology.url}/v1/models", timeout=10).status_code)
    assert statuses[-1] == 429
    assert statuses.count(200) >= allowed
    assert client("127.0.0.31").get(f"{topology.url}/v1/models", timeout=10).status_code == 200


def test_a_client_talking_to_a_server_directly_cannot_claim_another_address(topology: Topology) -> None:
    with speak(topology.servers[0].url, "127.0.0.40", "Spoofed, directly.", **{"X-Forwarded-For": "127.0.0.41"}) as r:
        assert r.status_code == 200
        r.content  # noqa: B018 (read to the end: the record is written when the stream ends)
    assert "ip:127.0.0.40" in usage_clients(topology, "ip:127.0.0.40")


def test_a_request_id_the_client_chose_never_passes_nginx(topology: Topology) -> None:
    """The servers keep a trusted proxy's X-Request-ID: nginx sets its own, so a client cannot name its
    request after another one in the logs and usage records (through either server)."""
    chosen = "req_chosen-by-the-client"
    ids: dict[str, str] = {}
    for _ in range(8):  # nginx takes the servers in turn
        response = client("127.0.0.2").get(f"{topology.url}/v1/models", headers={"X-Request-ID": chosen}, timeout=10)
        assert response.status_code == 200
        ids[answered(response)] = response.headers["X-Request-ID"]
    assert set(ids) == {address(server) for server in topology.servers}
    for request_id in ids.values():
        assert request_id != chosen
        assert re.fullmatch(r"(req_)?[0-9a-f]{32}", request_id), request_id


def test_nginx_logs_the_stream_url_without_its_page_token_or_text(topology: Topology) -> None:
    """The GET fallback carries the page token and the text in its query: nginx's access log (the
    shipped log_format) names the request by method and path only, allowed or refused, on either server."""
    browser = client("127.0.0.2")
    token = page_config(browser, topology.url)["pageToken"]
    secret = "Private words for nginx to forget"
    params = {"model": "piper", "input": secret, "voice": "alloy", "response_format": "mp3", "token": token}
    for _ in range(2):  # nginx takes the servers in turn
        with browser.get(f"{topology.url}/speech/stream", params=params, timeout=60) as spoken:
            assert spoken.status_code == 200, [server.log_text()[-3000:] for server in topology.servers]
            assert spoken.content
    forged = client("127.0.0.2").get(
        f"{topology.url}/speech/stream", params={**params, "token": "forged-token-xyz"}, timeout=10
    )
    assert forged.status_code == 401
    deadline = time.monotonic() + 5
    while topology.access_log.read_text().count("/speech/stream") < 3:  # written as each request ends
        assert time.monotonic() < deadline, topology.access_log.read_text()
        time.sleep(0.05)
    log = topology.access_log.read_text()
    assert '"GET /speech/stream HTTP/1.1" 200' in log
    assert '"GET /speech/stream HTTP/1.1" 401' in log
    for leaked in (token, "forged-token-xyz", "Private", "Private+words", "Private%20words", "input="):
        assert leaked not in log, leaked


def test_nginx_logs_no_error_with_the_stream_urls_token_or_text(tmp_path: Path) -> None:
    """nginx's error log writes a failing request's line whole, query and all. With no server up, the
    GET stream URL fails and is logged nowhere with its token or text, while a failing POST still is."""
    port = free_port()
    with nginx(tmp_path, site_config([f"127.0.0.1:{free_port()}"], port, tmp_path)):  # nothing listens there
        url = f"http://127.0.0.1:{port}"
        params = {"model": "piper", "input": "Private words", "voice": "alloy", "token": "page-token-xyz"}
        assert requests.get(f"{url}/speech/stream", params=params, timeout=10).status_code == 502
        assert requests.post(f"{url}/v1/audio/speech", json=params, timeout=10).status_code == 502
        deadline = time.monotonic() + 5
        while "POST /v1/audio/speech" not in (logs := (tmp_path / "error.log").read_text()):
            assert time.monotonic() < deadline, logs
            time.sleep(0.05)
    written = "".join(log.read_text() for log in tmp_path.glob("*.log"))
    assert "GET /speech/stream" in written  # the access log
    for leaked in ("page-token-xyz", "Private", "input="):
        assert leaked not in written, leaked


def test_a_cache_entry_made_through_one_server_replays_through_the_other(topology: Topology) -> None:
    text = "Cached by one server behind nginx, replayed by the other."
    with speak(topology.url, "127.0.0.50", text) as made:
        assert made.headers["X-Speech-Cache"] == "miss"
        audio, maker = made.content, answered(made)
    for _ in range(8):  # nginx takes turns; stop when the other server answers
        with speak(topology.url, "127.0.0.50", text) as again:
            replay, replayer, cache = again.content, answered(again), again.headers["X-Speech-Cache"]
        if replayer != maker:
            break
    assert replayer != maker
    assert cache == "hit"
    assert replay == audio


def usage_clients(topology: Topology, awaited: str) -> set[str]:
    """The clients of the usage records in PostgreSQL, once ``awaited`` has one (records come at stream end)."""
    deadline = time.monotonic() + 30
    settings = database.parse(topology.database_url)
    where = {"dbname": settings["NAME"], "user": settings["USER"], "port": settings["PORT"], **settings["OPTIONS"]}
    while True:
        with psycopg.connect(**where) as connection:
            rows = connection.execute("SELECT DISTINCT client FROM speech_usage").fetchall()
        clients = {client for (client,) in rows}
        if awaited in clients or time.monotonic() > deadline:
            return clients
        time.sleep(0.2)


def test_usage_records_land_in_postgresql_with_the_real_client_address(topology: Topology) -> None:
    clients = usage_clients(topology, "ip:127.0.0.17")
    assert {f"ip:127.0.0.{10 + number}" for number in range(8)} <= clients  # the eight at once
    assert {"ip:127.0.0.2", "ip:127.0.0.20", "ip:127.0.0.21", "ip:127.0.0.40", "ip:127.0.0.50"} <= clients
    assert not [client for client in clients if client in ("ip:127.0.0.1", "ip:127.0.0.41")]
    assert not [client for client in clients if client.startswith("ip:203.0.113.")]


def connections_to(port: int) -> int:
    """Open TCP connections whose server side is ``port`` (from /proc/net/tcp: state 01 is ESTABLISHED)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "01")


def test_slow_clients_stop_at_nginx(topology: Topology) -> None:
    """Half-sent headers and half-sent bodies, more than both servers have threads: nginx holds them all,
    the servers never see them, and everyone else is served."""
    port = int(topology.url.rsplit(":", 1)[1])
    slow = []
    try:
        for number in range(600):
            sock = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.60", 0))
            head = "POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            if number % 2:  # the whole head, then a body that never finishes
                head += 'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"input": "'
            sock.sendall(head.encode())
            slow.append(sock)
        assert connections_to(port) >= 600
        assert all(connections_to(int(server.url.rsplit(":", 1)[1])) < 40 for server in topology.servers)
        with speak(topology.url, "127.0.0.61", "Served while six hundred slow clients wait.") as served:
            assert served.status_code == 200
            assert duration(served.content, "mp3") > 1
    finally:
        for sock in slow:
            sock.close()


def test_behind_a_proxy_it_does_not_trust_every_client_is_one(topology: Topology, tmp_path: Path) -> None:
    """An nginx connecting from 127.0.0.5, which SPEECH_TRUSTED_PROXIES does not list (as none is when it is
    unset): its X-Forwarded-For changes nothing, so every client behind it is that nginx."""
    port = free_port()
    site = site_config([address(server) for server in topology.servers], port, tmp_path / "nginx")
    with nginx(tmp_path / "nginx", site, f"{WHICH} proxy_bind 127.0.0.5;"):
        url = f"http://127.0.0.1:{port}"
        held = [speak(url, f"127.0.0.{90 + number}") for number in range(DEFAULTS["MAX_STREAMS_PER_CLIENT"])]
        try:
            flowing = [opened(stream) for stream in held]
            assert refused(speak(url, "127.0.0.99"), 429, "too_many_streams")
            assert all(next(chunks) for chunks in flowing)
        finally:
            for stream in held:
                stream.close()
    assert "ip:127.0.0.5" in usage_clients(topology, "ip:127.0.0.5")


def test_killing_a_server_ends_only_its_streams(topology: Topology) -> None:
    streams: list[tuple[requests.Response, Iterator[bytes]]] = []
    for number in range(8):  # nginx takes turns, so both servers get some
        response = speak(topology.url, f"127.0.0.{70 + number}")
        streams.append((response, opened(response)))
    assert {answered(response) for response, _ in streams} == {address(server) for server in topology.servers}
    doomed = next(server for server in topology.servers if address(server) == answered(streams[0][0]))
    os.killpg(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()

    for response, chunks in streams:
        if answered(response) == address(doomed):
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                for _ in chunks:
                    pass
        else:  # still streaming
            assert all(next(chunks) for _ in range(3))
        response.close()
    survivor = next(server for server in topology.servers if server is not doomed)
    for number in range(4):
        with speak(topology.url, f"127.0.0.{80 + number}", "After the crash.") as after:
            assert after.status_code == 200
            assert answered(after) == address(survivor)
            assert duration(after.content, "mp3") > 0.3
