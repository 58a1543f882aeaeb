"""Debian's redis-server, PostgreSQL and nginx, each started by a test on a free port and stopped after it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench.support.server import free_port


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A redis-server that keeps nothing on disk; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make test` installs it (apt-get install redis-server)"
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster listening on a unix socket in a private directory; yields DATABASE_URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    bindir = Path(found[-1]).parent
    assert (bindir / "pg_ctl").exists(), "PostgreSQL is missing: `make test` installs it (apt-get install postgresql)"
    root = Path(tempfile.mkdtemp(prefix="speech-pg-"))  # short: a socket path has at most 107 bytes
    owner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        owner = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*args: object) -> None:
        subprocess.run([*owner, *map(str, args)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    run(bindir / "initdb", "-D", data, "-U", "speech", "--auth=trust", "-E", "UTF8", "--no-sync")
    server = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
    run(bindir / "pg_ctl", "-D", data, "-l", root / "postgres.log", "-o", server, "-w", "start")
    try:
        run(bindir / "createdb", "-h", root, "-p", port, "-U", "speech", "speech")
        yield f"postgres://speech@:{port}/speech?host={root}"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def nginx(workdir: Path, site: str, extra: str = "") -> Iterator[None]:
    """nginx serving ``site`` (http-level directives: upstream and server blocks), with ``extra`` beside it."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is missing: `make test` installs it (apt-get install nginx-light)"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "nginx.conf"
    config.write_text(f"""
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        pid {workdir}/nginx.pid;
        error_log {workdir}/error.log warn;
        events {{ worker_connections 2048; }}
        http {{
            access_log {workdir}/access.log;
            client_body_temp_path {workdir}/body;
            proxy_temp_path {workdir}/proxy;
            {extra}
            {site}
        }}
    """)
    command = [binary, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")]
    subprocess.run([*command, "-t", "-q"], check=True)
    process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (workdir / "nginx.pid").is_file() or not (workdir / "nginx.pid").read_text():  # `-t` leaves it empty
            assert process.poll() is None, (workdir / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
