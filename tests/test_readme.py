"""Every copy-paste block of the README and the docs, run as a reader would paste it.

Which pages, and how blocks are found and marked: bench/support/readme.py. Everything not marked runs, as written,
with two substitutions a reader makes without noticing:
``127.0.0.1:8000`` is the address of the server under test, and ``mpv`` (a player this machine may
lack) is a stand-in that keeps what it receives, so the test can check that it was audio.

- The repository's blocks run in a copy of the tracked files served by ``make run`` (no exports):
  ``sh`` with bash, ``python`` with the venv's python; every audio file a block writes must decode.
- The "inside your own Django site" blocks run in a new ``startproject`` site: ``pip install`` of
  the wheel built here (nothing downloaded), ``# settings.py`` / ``# urls.py`` blocks appended to
  those files, the ``django`` block in a page of that site, served by ``runserver``.
- The ``js`` block runs in Chromium on the site's page: tests/e2e/test_readme_js.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.support.docs_site import HOST_BLOCKS, plain_env, reader_site, reader_venv
from bench.support.readme import DOCS, OWN_TESTS, Block, readme_blocks
from bench.support.server import ROOT, Server, free_port, spawn, stop_server
from speech.conf import DEFAULTS
from tests.support.audio_check import duration
from tests.support.clone import copy_tracked_files

AUDIO = {".mp3": "mp3", ".flac": "flac", ".wav": "wav", ".ogg": "opus", ".opus": "opus", ".aac": "aac"}
MPV = "#!/bin/sh\n# A stand-in for mpv: keeps what it is given.\ncat > received-by-mpv.mp3\n"
BLOCKS = readme_blocks()
REPO_BLOCKS = [block for block in BLOCKS if not block.not_run and not block.for_host_site and block.lang != "js"]


def wait_until_up(server: Server, path: str) -> Server:
    deadline = time.monotonic() + 180
    while True:
        assert server.process.poll() is None, server.log_text()
        assert time.monotonic() < deadline, server.log_text()
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + path, timeout=2).status_code < 500:
                return server
        time.sleep(0.3)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_tracked_files(tmp_path_factory.mktemp("clone") / "repo")
    bin_dir = repo.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "mpv").write_text(MPV)
    (bin_dir / "mpv").chmod(0o755)
    return repo


@pytest.fixture(scope="module")
def make_run(repo: Path) -> Iterator[Server]:
    """`make run` in the copy, as a reader starts it: no variables exported."""
    port = free_port()
    log = repo.parent / "make-run.log"
    server = spawn(["make", "run", f"PORT={port}"], repo, plain_env(), f"http://127.0.0.1:{port}", log)
    try:
        yield wait_until_up(server, "/v1/models")
    finally:
        stop_server(server)


def test_every_block_is_run_or_says_why_not() -> None:
    assert len(REPO_BLOCKS) >= 4, [str(block) for block in REPO_BLOCKS]
    assert len(HOST_BLOCKS) >= 4, [str(block) for block in HOST_BLOCKS]
    assert all(block.lang in ("sh", "python") for block in REPO_BLOCKS)


def test_every_docs_page_has_its_blocks_run() -> None:
    """A page added to docs/ is either run here (DOCS) or by the tests of what it shows (OWN_TESTS)."""
    pages = {str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md")}
    assert pages <= set(DOCS) | set(OWN_TESTS), sorted(pages - set(DOCS) - set(OWN_TESTS))
    assert all((ROOT / name).exists() for name in DOCS), [name for name in DOCS if not (ROOT / name).exists()]


def test_the_configuration_reference_has_every_setting_and_check() -> None:
    """docs/configuration.md: a row per SPEECH key (speech.conf.DEFAULTS) and every system check's id."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    checks = set(re.findall(r'id="speech\.([EW]\d+)"', (ROOT / "speech" / "checks.py").read_text()))
    assert [key for key in DEFAULTS if f"| `{key}` |" not in page] == []
    assert sorted(check for check in checks if not re.search(rf"\b{check}\b", page)) == []


@pytest.mark.parametrize("block", REPO_BLOCKS, ids=str)
def test_block_runs_as_pasted(block: Block, repo: Path, make_run: Server) -> None:
    code = block.code.replace("127.0.0.1:8000", make_run.url.removeprefix("http://"))
    workdir = repo  # the manage.py commands run where the README says: in the repository
    before = {path.name for path in workdir.iterdir()}
    env = plain_env(PATH=f"{repo.parent / 'bin'}:{os.environ['PATH']}")
    if block.lang == "sh":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        command = [str(repo / ".venv" / "bin" / "python"), "-c", code]

    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, f"{block} failed:\n{code}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for path in sorted(workdir.iterdir()):
        if path.name not in before and path.suffix in AUDIO:
            assert duration(path.read_bytes(), AUDIO[path.suffix]) > 0.3, f"{block} wrote {path.name}, not audio"
            path.unlink()


@pytest.fixture(scope="module")
def host_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reader_venv(tmp_path_factory.mktemp("host"))


def test_the_app_installs_into_a_new_site_as_the_readme_says(host_venv: Path) -> None:
    site = reader_site(host_venv, host_venv.parent / "site", OPENAI_API_KEY="sk-readme-test")  # for Configuration
    run, python, env = site.run, site.python, site.env
    assert run(python, "-c", "import speech; print(speech.__file__)").startswith(str(host_venv))
    run(python, "manage.py", "check", "--fail-level", "WARNING")  # migrated by the guide's own block, not again here
    port = free_port()
    log = site.root / "runserver.log"
    runserver = [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    server = spawn(runserver, site.root, env, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_up(server, "/tts/v1/models")
        page = requests.get(f"{server.url}/page/", timeout=60)
        assert page.status_code == 200
        assert "data-speech-player" in page.text
        assert "/tts/v1/audio/speech" in page.text  # the widget calls the app where urls.py mounted it
        assert requests.get(f"{server.url}/tts/v1/models", timeout=60).status_code in (200, 401)
        docs = requests.get(f"{server.url}/tts/v1/docs", timeout=60)
        assert docs.status_code == 200
        assert "/static/ninja/swagger-ui-bundle.js" in docs.text  # from the site, not from a CDN
    finally:
        stop_server(server)
