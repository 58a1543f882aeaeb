"""A reader's own site, built only from the docs: a new venv whose `pip` finds the wheel built here
(and the other dependencies already installed), `django-admin startproject`, then every host-site
block of the docs as the reader pastes it: ``sh`` blocks run, ``# settings.py`` / ``# urls.py`` blocks
appended to those files, the ``django`` block in a page of the site at ``/page/``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.support.install import build_wheel, shared_deps
from bench.support.readme import readme_blocks
from bench.support.server import Server, free_port, spawn

HOST_BLOCKS = [block for block in readme_blocks() if not block.not_run and block.for_host_site]
PAGE_VIEW = """
from django.views.generic import TemplateView

urlpatterns += [path("page/", TemplateView.as_view(template_name="page.html"))]
"""


def plain_env(**extra: str) -> dict[str, str]:
    """A reader's shell: none of the variables the tests set for their own servers."""
    prefixes = ("DJANGO_", "SPEECH_", "OPENAI_", "PYTEST_")
    return {**{name: value for name, value in os.environ.items() if not name.startswith(prefixes)}, **extra}


def reader_venv(work: Path) -> Path:
    """A venv for the reader's site: its `pip` installs from the wheel built here and finds the other
    dependencies already installed (the test venv's site-packages is on its path), so nothing is fetched."""
    wheel = build_wheel(work)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    Path(purelib.decode().strip(), "shared-deps.pth").write_text(f"{shared_deps(work)}\n")
    pip = f'#!/bin/sh\nexec "{sys.executable}" -m pip --disable-pip-version-check --python "{python}" "$@"\n'
    (venv / "bin" / "pip").write_text(pip)
    (venv / "bin" / "pip").chmod(0o755)
    (venv / "wheels").mkdir()
    wheel.rename(venv / "wheels" / wheel.name)
    return venv


@dataclass(frozen=True)
class ReaderSite:
    root: Path
    python: str
    env: dict[str, str]

    def run(self, *command: str) -> str:
        result = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    def append(self, name: str, code: str) -> None:
        with (self.root / "mysite" / name).open("a") as file:
            file.write("\n" + code)


def reader_site(venv: Path, root: Path, **env: str) -> ReaderSite:
    """`startproject mysite` in ``root``, then the docs' host-site blocks, in order."""
    root.mkdir()
    site = ReaderSite(
        root,
        str(venv / "bin" / "python"),
        plain_env(PATH=f"{venv / 'bin'}:{os.environ['PATH']}", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(venv / "wheels"),
                  **env),
    )  # fmt: skip
    site.run(site.python, "-m", "django", "startproject", "mysite", ".")
    for block in HOST_BLOCKS:
        if block.lang == "sh":
            site.run("bash", "-euo", "pipefail", "-c", block.code)
        elif block.host_file:
            site.append(block.host_file, block.code)
        else:
            (root / "templates").mkdir(exist_ok=True)
            (root / "templates" / "page.html").write_text(f"<!doctype html><title>Page</title>\n{block.code}")
    site.append("settings.py", 'TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]\n')
    site.append("urls.py", textwrap.dedent(PAGE_VIEW))
    return site


# The reader's site under each server, as the host-site guide serves it (its own wsgi.py / asgi.py).
SERVERS = {
    "gunicorn": ["-m", "gunicorn", "mysite.wsgi", "--bind", "127.0.0.1:{port}", "--threads", "8",
                 "--no-control-socket"],
    "uvicorn": ["-m", "uvicorn", "mysite.asgi:application", "--host", "127.0.0.1", "--port", "{port}"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "mysite.asgi:application"],
    "runserver": ["manage.py", "runserver", "--noreload", "127.0.0.1:{port}"],
}  # fmt: skip


def serve(site: ReaderSite, kind: str, timeout: float = 120) -> tuple[Server, float]:
    """The site served by ``kind``, and the seconds from its start until it first answered a page."""
    port = free_port()
    args = [arg.format(port=port) for arg in SERVERS[kind]]
    started = time.monotonic()
    server = spawn([site.python, *args], site.root, site.env, f"http://127.0.0.1:{port}", site.root / f"{kind}.log")
    while True:
        assert server.process.poll() is None, server.log_text()
        assert time.monotonic() - started < timeout, server.log_text()
        try:
            if requests.get(f"{server.url}/page/", timeout=2).ok:
                return server, time.monotonic() - started
        except requests.RequestException:
            time.sleep(0.05)
