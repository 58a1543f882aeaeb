"""Warm by default: a server process loads and warms the engines at start, in the background; other
processes (manage.py commands, tests, scripts) never do. The host-site e2e test shows the effect."""

from __future__ import annotations

import pytest

from speech.warmup import serving


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["/venv/bin/gunicorn", "mysite.wsgi"], {}, True),
        (["/venv/lib/python3.11/site-packages/uvicorn/__main__.py", "mysite.asgi:application"], {}, True),
        (["/venv/bin/daphne", "mysite.asgi:application"], {}, True),
        (["/venv/bin/hypercorn", "mysite.asgi:application"], {}, True),
        (["manage.py", "runserver"], {}, False),  # the autoreloader's parent: it serves nothing
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),  # ... its child serves
        (["manage.py", "runserver", "--noreload"], {}, True),
        (["/venv/lib/python3.11/site-packages/django/__main__.py", "runserver", "--noreload"], {}, True),
        (["manage.py", "migrate"], {}, False),
        (["/venv/bin/django-admin", "check"], {}, False),
        (["/venv/bin/pytest"], {}, False),
        (["-c"], {}, False),
        ([], {}, False),
    ],
)
def test_which_processes_serve(argv: list[str], environ: dict[str, str], expected: bool) -> None:
    assert serving(argv, environ) is expected
