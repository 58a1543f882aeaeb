"""Load and warm every configured engine and encoder, so the first request is as fast as the rest.

A server warms by itself: ``SpeechConfig.ready`` calls :func:`start`, which warms in a background
thread when the process is a server (``SPEECH["WARM_UP"] = "auto"``, the default), so a host site's
first request finds the voice loaded under any server, while ``manage.py`` commands, tests and
scripts never pay for it. ``True`` warms every process that sets Django up; ``False`` never.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# Programs that serve a Django site, by the name they run as (a script, or ``python -m NAME``).
SERVERS = frozenset({"gunicorn", "uvicorn", "daphne", "hypercorn", "granian", "uwsgi", "waitress-serve"})
DJANGO_COMMANDS = frozenset({"manage", "django-admin", "django"})

_lock = threading.Lock()
_warm = False


def warm_up() -> None:
    """Warm once per process; a caller that comes while another thread warms waits for it."""
    global _warm
    with _lock:
        if _warm:
            return
        from speech import audio
        from speech.conf import get_config
        from speech.engines.base import get_engine

        started = time.monotonic()
        for fmt in audio.FORMATS:
            encoder = audio.encoder(fmt, 22_050)
            encoder.write(bytes(4410))
            encoder.close()
        for alias in get_config()["ENGINES"]:
            get_engine(alias).warm_up()
        _warm = True
        logger.info("speech warmed up in %.1f s", time.monotonic() - started)


def serving(argv: Sequence[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether this process serves requests: a known server, or ``runserver``'s serving child."""
    if not argv:
        return False
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.stem
    if name in SERVERS:
        return True
    if name in DJANGO_COMMANDS and "runserver" in argv[1:2]:
        # With the autoreloader the parent only watches files and restarts the child that serves.
        return environ.get("RUN_MAIN") == "true" or "--noreload" in argv
    return False


def start(setting: bool | str) -> None:
    """Warm in the background if ``setting`` says so for this process (``SPEECH["WARM_UP"]``)."""
    if setting is False or (setting == "auto" and not serving(sys.argv)):
        return
    if _in_gunicorn_master():
        # preload_app: this process only forks the workers, and ONNX sessions do not survive a fork, so
        # each worker warms itself. The master runs no thread of ours, so the hook is safe at its forks.
        os.register_at_fork(after_in_child=_start_thread)
        return
    _start_thread()


def _in_gunicorn_master() -> bool:
    """gunicorn loads the app in its arbiter (the master) with preload_app, else in each worker."""
    files = [frame.filename.replace(os.sep, "/") for frame in traceback.extract_stack()]
    return any(name.endswith("gunicorn/arbiter.py") for name in files) and not any(
        "gunicorn/workers/" in name for name in files
    )


def _start_thread() -> None:
    threading.Thread(target=_warm_up_logged, name="speech-warm-up", daemon=True).start()


def _warm_up_logged() -> None:
    try:
        warm_up()
    except Exception:  # the first request loads what it needs, and says what is wrong
        logger.exception("speech could not warm up")
