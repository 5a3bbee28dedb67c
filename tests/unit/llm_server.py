"""A loopback OpenAI-compatible chat endpoint with scripted answers, for tests (127.0.0.1 only).

``script(request) -> Reply`` decides each answer; the server records every request (headers,
JSON body, decoded images) and the most requests it ever had in flight.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np


@dataclass
class Reply:
    content: str | None = None  # the assistant message; None → ``raw`` is the body
    status: int = 200
    usage: dict[str, int] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay_s: float = 0.0


@dataclass
class Request:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return self.body["messages"][0]["content"]

    @property
    def role(self) -> str:
        first = self.system.splitlines()[0]
        return "verifier" if "Verifier" in first else "generator"

    @property
    def text(self) -> str:
        return "".join(
            p["text"] for p in self.body["messages"][1]["content"] if p.get("type") == "text"
        )

    def images(self) -> list[np.ndarray]:
        out = []
        for p in self.body["messages"][1]["content"]:
            if p.get("type") == "image_url":
                data = base64.b64decode(p["image_url"]["url"].split(",", 1)[1])
                bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                out.append(bgr[:, :, ::-1])
        return out


class ChatServer:
    def __init__(self, script: Callable[[Request], Reply]) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                req = Request(dict(self.headers), json.loads(self.rfile.read(n)))
                with server._lock:
                    server.requests.append(req)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    rep = server.script(req)
                    time.sleep(rep.delay_s)
                    if rep.raw is not None:
                        body = rep.raw
                    else:
                        out: dict[str, Any] = {
                            "id": "x",
                            "model": req.body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": rep.content},
                                }
                            ],
                        }
                        if rep.usage is not None:
                            out["usage"] = rep.usage
                        body = json.dumps(out).encode()
                    self.send_response(rep.status)
                    for k, v in rep.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def by_role(self, role: str) -> list[Request]:
        return [r for r in self.requests if r.role == role]
