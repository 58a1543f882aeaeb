"""Gunicorn for streaming: one process (one synthesis scheduler per process), many threads."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
wsgi_app = "ttsproject.wsgi:application"
# One worker keeps one scheduler in charge of every core; threads hold open streams.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gthread"
# A proxied stream holds a thread for its whole length: 64 threads left 136 of 200 streams waiting
# (BENCHMARKS.md, Proxy); idle threads cost next to nothing.
threads = int(os.environ.get("GUNICORN_THREADS", "256"))
# gthread's timeout is the worker heartbeat, not a per-request limit: long streams are safe.
timeout = 60
# Streams in flight get this long to finish on restart, then they are cut.
graceful_timeout = 10
keepalive = 5
accesslog = "-"


def post_worker_init(worker: object) -> None:
    from speech.warmup import warm_up

    warm_up()
