"""Behind a trusted proxy each client is its own: admin lockouts and request ids believe only the proxy.

The site trusts 127.0.0.1 (nginx's address) and nothing else; requests from 127.0.0.1 play the
proxy, naming the client in ``X-Forwarded-For``, and requests from 127.0.0.5 play a client that
reaches the server directly and writes the proxy's headers itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from bench.support.server import Server, client_at, start_server, stop_server

FAILURES_ALLOWED = 3
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SPEECH_TRUSTED_PROXIES": "127.0.0.1", "DJANGO_LOGIN_FAILURE_LIMIT": str(FAILURES_ALLOWED)}
    server = start_server(tmp_path_factory.mktemp("proxied"), env)
    yield server
    stop_server(server)


def failed_login(browser: requests.Session, site: Server, headers: dict[str, str]) -> int:
    """One wrong admin password; the status of the answer (200: the form again, 429: locked out)."""
    form = browser.get(f"{site.url}/admin/login/", headers=headers, timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    data = {"username": "admin", "password": "wrong", "csrfmiddlewaretoken": token[1] if token else ""}
    headers = {**headers, "Referer": f"{site.url}/admin/login/"}
    return browser.post(f"{site.url}/admin/login/", data=data, headers=headers, timeout=30).status_code


def test_clients_behind_the_proxy_are_locked_out_one_by_one(site: Server) -> None:
    guesser = {"X-Forwarded-For": "203.0.113.1"}
    statuses = [failed_login(requests.Session(), site, guesser) for _ in range(FAILURES_ALLOWED + 1)]
    assert statuses == [200] * (FAILURES_ALLOWED - 1) + [429, 429]
    neighbour = {"X-Forwarded-For": "203.0.113.2"}  # another user of the same nginx
    assert failed_login(requests.Session(), site, neighbour) == 200


def test_a_direct_client_cannot_dodge_the_lockout_with_forwarded_for(site: Server) -> None:
    attacker = client_at("127.0.0.5")
    statuses = [
        failed_login(attacker, site, {"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(FAILURES_ALLOWED + 1)
    ]
    assert statuses == [200] * (FAILURES_ALLOWED - 1) + [429, 429]


def test_the_proxy_s_plain_request_id_is_kept_anything_else_replaced(site: Server) -> None:
    kept = requests.get(f"{site.url}/v1/models", headers={"X-Request-ID": "lb-7f3a.2:9"}, timeout=30)
    assert kept.headers["x-request-id"] == "lb-7f3a.2:9"
    for hostile in ("a b", "x" * 101, "<script>", "id\\n", "-leading-dash", "a\tb", "caf\xe9"):
        replaced = requests.get(f"{site.url}/v1/models", headers={"X-Request-ID": hostile}, timeout=30)
        assert REQUEST_ID.fullmatch(replaced.headers["x-request-id"]), hostile


def test_a_direct_client_cannot_choose_its_request_id(site: Server) -> None:
    direct = client_at("127.0.0.5").get(f"{site.url}/v1/models", headers={"X-Request-ID": "lb-7f3a.2:9"}, timeout=30)
    assert REQUEST_ID.fullmatch(direct.headers["x-request-id"])
