"""Another site for browser clients: a page (tests/e2e/other_site.html) and the npm packages under /npm/."""

from __future__ import annotations

import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.support.server import ROOT

E2E = ROOT / "tests" / "e2e"
NODE_MODULES = E2E / "npm" / "node_modules"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {".mjs": "text/javascript", ".js": "text/javascript", ".html": "text/html"}

    def translate_path(self, path: str) -> str:
        path = path.split("?")[0]
        if path == "/":
            return str(E2E / "other_site.html")
        if path.startswith("/npm/"):
            return str(NODE_MODULES / path.removeprefix("/npm/"))
        return str(E2E / "missing")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve() -> ThreadingHTTPServer:
    """Serve the page on a free loopback port (``server.server_address[1]``); ``shutdown()`` when done."""
    if not (NODE_MODULES / "openai").is_dir():
        raise RuntimeError("npm packages missing: run `make npm` (installs tests/e2e/npm from its lock file)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
