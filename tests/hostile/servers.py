"""A raw loopback HTTP server for hostile replies: 127.0.0.1 only, bounded in requests and time."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable


def read_request(conn: socket.socket) -> bytes:
    """The whole request (headers + Content-Length body); bounded to 64 MiB and 10 s."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = min(int(value.strip()), 64 << 20)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class RawServer:
    """Calls ``reply(conn, n)`` for each of at most ``max_requests`` connections (n = 0, 1, …).

    The accept loop stops after ``max_seconds``; every reply runs in a daemon thread and write
    errors (the client hung up) end it quietly.
    """

    def __init__(
        self,
        reply: Callable[[socket.socket, int], None],
        *,
        max_requests: int = 8,
        max_seconds: float = 30.0,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.requests: list[bytes] = []
        self._reply = reply
        self._max_requests = max_requests
        self._stop_at = time.monotonic() + max_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        n = 0
        while (
            n < self._max_requests
            and time.monotonic() < self._stop_at
            and not self._stopped.is_set()
        ):
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn, n), daemon=True).start()
            n += 1

    def _handle(self, conn: socket.socket, n: int) -> None:
        with conn, contextlib.suppress(OSError):
            self.requests.append(read_request(conn))
            self._reply(conn, n)

    def close(self) -> None:
        self._stopped.set()
        self.sock.close()
        self._thread.join(timeout=2)


def http_reply(
    status: int, body: bytes, headers: dict[str, str] | None = None, *, length: bool = True
) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    return head.encode() + b"\r\n" + body
