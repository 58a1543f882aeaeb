"""Issue 31 E: the GET fallback's text and page token (in its query string) never reach the logs."""

from __future__ import annotations

import requests

from bench.support.server import Server, page_config


def test_the_access_log_names_the_stream_path_without_its_query(server: Server) -> None:
    browser = requests.Session()
    token = page_config(browser, server.url)["pageToken"]
    secret_text = "Private words nobody logs"
    params = {"model": "piper", "input": secret_text, "voice": "alloy", "response_format": "mp3", "token": token}
    with browser.get(f"{server.url}/speech/stream", params=params, timeout=60) as spoken:
        assert spoken.status_code == 200, spoken.text
        assert spoken.content
    refused = requests.get(f"{server.url}/speech/stream", params={**params, "token": "forged-token-xyz"}, timeout=10)
    assert refused.status_code == 401
    log = server.log_text()
    assert "GET /speech/stream HTTP/1.1" in log  # the access log has the request, without its query
    assert "Private" not in log
    assert token not in log
    assert "forged-token-xyz" not in log
