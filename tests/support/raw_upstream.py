"""An upstream that answers every request with the same exact bytes: replies the fake OpenAI cannot play."""

from __future__ import annotations

import re
import socket
import threading
import time


class RawUpstream:
    """Answers every connection with the same bytes, then closes it; or, with ``accept=False``, never accepts."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.reply = b""
        self.accept = True
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            if not self.accept:
                time.sleep(0.05)
                continue
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request and (more := conn.recv(65536)):
                request += more
            # The whole request is read before the answer: closing on unread bytes would reset the
            # connection, and the reset could cut the answer short on the way to the app.
            head, _, body = request.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            while length and len(body) < int(length[1]) and (more := conn.recv(65536)):
                body += more
            conn.sendall(self.reply)

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()


def http(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
