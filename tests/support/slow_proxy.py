"""A proxy that holds back the end of every audio (or SSE) response, to prove a player starts before it ends."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# Headers that describe one hop, or the body as upstream encoded it (requests decodes it for us).
DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class SlowProxy:
    def __init__(self, upstream: str, hold: float) -> None:
        self.upstream = upstream
        self.hold = hold
        self.ends: list[float] = []  # wall-clock time each audio response's last byte was sent
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.forward(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in DROPPED}
        url = self.upstream + handler.path
        with requests.request(handler.command, url, data=body, headers=headers, stream=True, timeout=60) as upstream:
            handler.send_response(upstream.status_code)
            for name, value in upstream.raw.headers.iteritems():  # each Set-Cookie on its own line
                if name.lower() not in DROPPED:
                    handler.send_header(name, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            # The page's player asks for SSE (audio with word timings) on every path but <audio>.
            audio = upstream.headers.get("Content-Type", "").startswith(("audio/", "text/event-stream"))
            first: float | None = None
            try:
                for chunk in upstream.iter_content(chunk_size=None):
                    first = first or time.monotonic()
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
                if audio and first is not None:
                    time.sleep(max(0.0, first + self.hold - time.monotonic()))
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
                if audio:
                    self.ends.append(time.time())
            except (BrokenPipeError, ConnectionResetError):
                handler.close_connection = True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
