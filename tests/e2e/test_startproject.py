"""The host-site guide (docs/host-site.md) followed literally in a new `django-admin startproject` site,
then served as in production, DEBUG off with collected static files, by gunicorn and by uvicorn with the
site's own untouched wsgi.py / asgi.py, in Chromium: every file of the widget loads, Speak plays, and the
first speech request after the server starts is as fast as the rest (the app warms itself at start).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, Response

from bench.support.docs_site import ReaderSite, reader_site, reader_venv, serve
from bench.support.player import first, log, open_player, wait_for
from bench.support.procstat import cpu_seconds, wait_idle, worker_pid
from bench.support.server import Server, page_config, stop_server

PRODUCTION = 'DEBUG = False\nALLOWED_HOSTS = ["127.0.0.1"]\n'
NO_STATIC_STEP = """
MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")
STATIC_ROOT = None
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
"""
SERVED_BY = ["gunicorn", "uvicorn", "daphne"]
# The server's CPU time for its first speech request, to its first audio: a warm server spends about
# 0.1-0.3 s (the synthesis of one short piece); one that loads the voice then spends 1.5 s and more on
# the load. CPU time, not wall time, so that a busy machine (other tests beside this one) changes nothing.
WARM_FIRST_AUDIO_CPU_SECONDS = 1.0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> ReaderSite:
    work = tmp_path_factory.mktemp("startproject")
    site = reader_site(reader_venv(work), work / "site", OPENAI_API_KEY="sk-docs-test")  # for Configuration
    site.append("settings.py", PRODUCTION)
    site.run(site.python, "manage.py", "check", "--deploy", "--fail-level", "ERROR")
    site.run(site.python, "manage.py", "collectstatic", "--noinput")
    return site


@pytest.fixture(scope="module", params=SERVED_BY)
def served(request: pytest.FixtureRequest, site: ReaderSite) -> Iterator[tuple[Server, float]]:
    """The site under one server, and the CPU seconds its very first speech request took to its first audio."""
    server, _ = serve(site, request.param)
    try:
        pid = worker_pid(server.process.pid) if request.param == "gunicorn" else server.process.pid
        wait_idle(pid)  # started, and nobody has asked for speech yet
        body = {"model": "piper", "voice": "alloy", "input": "The first words this server says."}
        browser = requests.Session()
        token = page_config(browser, f"{server.url}/page")["pageToken"]
        spent = cpu_seconds(pid)
        with browser.post(
            f"{server.url}/tts/v1/audio/speech", json=body, headers={"X-Speech-Page": token}, stream=True, timeout=60
        ) as response:
            assert response.status_code == 200, response.text
            next(response.iter_content(chunk_size=None))
            first_audio = cpu_seconds(pid) - spent
        yield server, first_audio
    finally:
        stop_server(server)


def test_the_first_request_after_start_is_warm(served: tuple[Server, float]) -> None:
    server, first_audio = served
    assert first_audio < WARM_FIRST_AUDIO_CPU_SECONDS, server.log_text()


def test_every_widget_file_loads_and_speak_plays(page: Page, served: tuple[Server, float]) -> None:
    server, _ = served
    static: list[Response] = []
    page.on("response", lambda response: static.append(response) if "/static/" in response.url else None)
    open_player(page, f"{server.url}/page")
    page.fill(".sp-text", "A page of a brand new site. It speaks at once.")
    page.click(".sp-speak")
    wait_for(page, "ended", "error")
    events = log(page)

    assert [event for event in events if event["name"] == "error"] == []
    assert first(events, "ended")["duration"] > 1.5
    assert page.locator(".sp-load-error").is_hidden()
    # The page reader beside it mounted on the page's own text.
    assert page.evaluate("document.querySelector('[data-speech-reader]').speechReader.text").startswith("The page's")
    assert page.locator(".sr-load-error").is_hidden()
    loaded = {response.url.rsplit("/", 1)[1].split(".")[0]: response.status for response in static}
    assert {"widget", "player", "mse", "session", "reader", "reader-text"} <= set(loaded), loaded
    assert set(loaded.values()) == {200}, loaded


def test_a_site_that_serves_no_static_files_is_told(page: Page, site: ReaderSite) -> None:
    """The site as the README had it before the static step: `check` warns, and the page says why."""
    settings = site.root / "mysite" / "settings.py"
    kept = settings.read_text()
    settings.write_text(kept + NO_STATIC_STEP)
    try:
        check = subprocess.run([site.python, "manage.py", "check"], cwd=site.root, env=site.env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert "speech.W013" in check.stdout + check.stderr
        server, _ = serve(site, "uvicorn")
        try:
            page.goto(f"{server.url}/page/")
            for selector in (".sp-load-error", ".sr-load-error"):  # the player's and the reader's
                warning = page.locator(selector)
                warning.wait_for(state="visible")
                assert "did not load" in warning.inner_text()
        finally:
            stop_server(server)
    finally:
        settings.write_text(kept)
