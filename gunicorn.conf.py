"""Gunicorn for streaming: one process (one synthesis scheduler per process), many threads."""

import os
import signal
import threading
from typing import Any

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
wsgi_app = "ttsproject.wsgi:application"
# One worker keeps one scheduler in charge of every core; threads hold open streams.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread, with a deadline for receiving each request (GUNICORN_REQUEST_TIMEOUT): slow senders cannot hold threads.
worker_class = "speech.workers.RequestDeadlineWorker"
# A proxied stream holds a thread for its whole length: 64 threads left 136 of 200 streams waiting
# (BENCHMARKS.md, Proxy); idle threads cost next to nothing.
threads = int(os.environ.get("GUNICORN_THREADS", "256"))
# gthread's timeout is the worker heartbeat, not a per-request limit: long streams are safe.
timeout = 60
# Streams in flight get this long to finish on restart; then they end where they are (see below).
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# The path without its query: the <audio> fallback's GET /speech/stream?input=...&token=... carries the
# listener's text and page token, which do not belong in logs. Otherwise gunicorn's default format.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl, one path for every gunicorn on the
# machine (tests and benchmarks start several): nothing here uses it.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    from speech.warmup import warm_up

    warm_up()
    _end_streams_before_graceful_timeout(worker)


def _end_streams_before_graceful_timeout(worker: Any) -> None:
    """On restart or stop, streams still open a second before ``graceful_timeout`` end cleanly.

    Without this a long stream outlives the grace period: the worker's threads keep it going, the
    interpreter waits for them at exit, and the master kills the worker a heartbeat ``timeout`` later
    (60 s), cutting every stream mid-chunk while two workers compete for the cores.
    """
    from speech.hangup import watcher

    handle_exit = worker.handle_exit

    def on_exit(sig: int, frame: Any) -> None:
        handle_exit(sig, frame)
        timer = threading.Timer(max(0.0, worker.cfg.graceful_timeout - 1.0), watcher.cancel_all)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_exit)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn sets it
