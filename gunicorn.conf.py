"""Gunicorn for streaming: one process (one synthesis scheduler per process), many threads."""

import os
from typing import Any

from speech.recycling import child_exit  # noqa: F401 (gunicorn's hook: a worker's hand-over, below)

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
# Streams in flight get this long to finish on restart; then they end where they are (speech/workers.py).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
# Replace the worker after this many requests (plus up to the jitter), as a bound on its memory: the
# new worker takes over once warm and the old one finishes its streams first (speech/recycling.py).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
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

    try:
        warm_up()
    except Exception:  # gunicorn halts the whole server when a worker fails to boot, mid hand-over too
        worker.log.exception("The warm-up failed: engines and voices load on first use.")
