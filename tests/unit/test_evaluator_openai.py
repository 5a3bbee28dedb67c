"""The OpenAI-compatible evaluator client against a scripted HTTP server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

KEY = "sk-SECRET-123"


def _ok(text):
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


class Server:
    """Answers POSTs from a script of (status, body, delay_s, headers); default: a valid answer."""

    def __init__(self, script=(), default=None):
        self.script = list(script)
        self.default = default or (200, _ok("Mask 1: 0.5\nMask 2: 0.5"), 0.0, {})
        self.seen = []
        self.times = []
        self.inflight = 0
        self.max_inflight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                with lock:
                    outer.seen.append((self.path, dict(self.headers), body))
                    outer.times.append(time.monotonic())
                    step = outer.script.pop(0) if outer.script else outer.default
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight, outer.inflight)
                status, payload, delay, headers = step
                try:
                    time.sleep(delay)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    data = payload if isinstance(payload, bytes) else payload.encode()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with lock:
                        outer.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def make(*a, **k):
        s = Server(*a, **k)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def image_and_masks():
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200
    m = np.zeros((20, 30), bool)
    m[2:8, 3:9] = True
    return img, [m, ~m]


def _client(url, **kw):
    from core.evaluator.openai_compat import OpenAICompatEvaluator

    kw.setdefault("backoff_s", 0.01)
    return OpenAICompatEvaluator(url, "evaluator-x", api_key=KEY, **kw)


def _decode(url):
    assert url.startswith("data:image/png;base64,")
    buf = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def test_request_layout_images_and_answer(server, image_and_masks):
    srv = server([(200, _ok("The red region.\nAnswer:\nMask 1: 0.8\nMask 2: 0.1"), 0, {})])
    img, masks = image_and_masks
    r = _client(srv.url).score_group(img, "which?", masks, True)
    assert r.scores == [0.8, 0.1] and r.cot_text == "The red region." and r.parse_error is None
    path, headers, body = srv.seen[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "evaluator-x" and body["temperature"] == 0
    assert body["messages"][0]["role"] == "system"
    content = body["messages"][1]["content"]
    kinds = [c["type"] for c in content]
    assert kinds == ["text", "image_url"] * 3 + ["text"]
    assert [c["text"] for c in content[:-1:2]] == ["Image-1:", "Image-2:", "Image-3:"]
    pics = [_decode(c["image_url"]["url"]) for c in content if c["type"] == "image_url"]
    assert pics[0].shape == (20, 30, 3) and tuple(pics[0][0, 0]) == (
        0,
        0,
        200,
    )  # BGR of the red image
    for pic, m in zip(pics[1:], masks, strict=True):  # masks as 0/255 pictures of the image's size
        assert pic.shape[:2] == (20, 30) and set(np.unique(pic)) <= {0, 255}
        assert np.array_equal(pic[..., 0] == 255, m)
    assert "Mask 1 to Mask 2" in content[-1]["text"] and "which?" in content[-1]["text"]


def test_retries_429_honouring_retry_after_then_500_then_success(server, image_and_masks):
    srv = server(
        [
            (429, "slow down", 0, {"Retry-After": "0.3"}),
            (500, "oops", 0, {}),
            (200, _ok("Mask 1: 0.3\nMask 2: 0.6"), 0, {}),
        ]
    )
    img, masks = image_and_masks
    r = _client(srv.url, backoff_s=0.05).score_groups(img, "q", [masks], False)[0]
    assert r.scores == [0.3, 0.6] and r.parse_error is None and len(srv.seen) == 3
    gaps = np.diff(srv.times)
    assert gaps[0] >= 0.28  # Retry-After: 0.3 s honoured
    assert 0.09 <= gaps[1] < 0.28  # exponential backoff: 0.05 · 2¹ after the second failure


def test_retry_after_as_http_date():
    from core.llm_client import retry_after as _retry_after

    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _retry_after(future) <= 31
    assert (
        _retry_after("2") == 2.0 and _retry_after("garbage") is None and _retry_after(None) is None
    )


def test_gives_up_plainly_and_never_shows_the_key(server, image_and_masks):
    srv = server(
        [(503, "down", 0, {})] * 3 + [(400, f"bad request, key {KEY} / Bearer {KEY}", 0, {})]
    )
    img, masks = image_and_masks
    c = _client(srv.url, max_retries=2)
    r1 = c.score_group(img, "q", masks, False)
    assert len(srv.seen) == 3  # 1 try + 2 retries
    r2 = c.score_group(img, "q", masks, False)
    assert len(srv.seen) == 4  # 400 is not retried
    assert (
        r1.scores == [None, None]
        and r1.parse_error.startswith("request failed")
        and "HTTP 503" in r1.parse_error
    )
    assert "HTTP 400" in r2.parse_error and "bad request" in r2.parse_error
    for text in (r1.parse_error, r2.parse_error, repr(c), c.name, str(vars(r2))):
        assert KEY not in text and "SECRET" not in text


def test_key_echoed_in_an_answer_is_masked_and_not_in_the_trace(server, image_and_masks):
    from core.evaluator.stage2 import run_stage2
    from core.trace import Candidate, PipelineTrace

    srv = server(default=(200, _ok(f"my key is {KEY}\nMask 1: 0.4\nMask 2: 0.2"), 0, {}))
    img, masks = image_and_masks
    tr = PipelineTrace(
        "q",
        (20, 30),
        "test",
        {},
        False,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)],
    )
    run_stage2(tr, img, _client(srv.url), group_size=5)
    text = tr.to_json()
    assert KEY not in text and tr.evaluator.final_scores == {0: 0.4, 1: 0.2}


def test_timeout_is_retried_then_reported(server, image_and_masks):
    srv = server([(200, _ok("Mask 1: 0.1"), 0.8, {}), (200, _ok("Mask 1: 0.1"), 0.8, {})])
    img, masks = image_and_masks
    # each reply takes 0.8 s: only the 0.2 s timeout can end the call with "timed out"
    # (how long the call takes: bench/deadlines.py)
    r = _client(srv.url, timeout_s=0.2, max_retries=1).score_group(img, "q", masks[:1], False)
    assert r.scores == [None] and "timed out" in r.parse_error and len(srv.seen) == 2


@pytest.mark.parametrize(
    "payload, what",
    [
        ("<html>not json", "not JSON"),
        (json.dumps({"choices": []}), "no choices"),
        (json.dumps({"choices": [{"message": {"content": None}}]}), "content is a NoneType"),
        (json.dumps([1, 2]), "not an object"),
    ],
)
def test_malformed_bodies_fail_the_group_without_retry(server, image_and_masks, payload, what):
    srv = server([(200, payload, 0, {})])
    img, masks = image_and_masks
    r = _client(srv.url).score_group(img, "q", masks, False)
    assert r.scores == [None, None] and "malformed" in r.parse_error and what in r.parse_error
    assert len(srv.seen) == 1


def test_content_parts_and_an_unparseable_answer(server, image_and_masks):
    parts = {
        "choices": [
            {
                "message": {
                    "content": [
                        {"type": "text", "text": "Mask 1: 0.9\n"},
                        {"type": "text", "text": "Mask 2: 0.2"},
                    ]
                }
            }
        ]
    }
    srv = server([(200, json.dumps(parts), 0, {}), (200, _ok("no idea"), 0, {})])
    img, masks = image_and_masks
    c = _client(srv.url)
    assert c.score_group(img, "q", masks, False).scores == [0.9, 0.2]
    r = c.score_group(img, "q", masks, False)
    assert (
        r.scores == [None, None] and "no scores found" in r.parse_error and r.raw_text == "no idea"
    )


def test_concurrency_limit_and_result_order(server, image_and_masks):
    img, masks = image_and_masks
    srv = server(default=(200, _ok("Mask 1: 0.5\nMask 2: 0.5"), 0.15, {}))
    groups = [[masks[0], masks[1]] for _ in range(6)]
    res = _client(srv.url, concurrency=2).score_groups(img, "q", groups, False)
    assert len(res) == 6 and all(r.scores == [0.5, 0.5] for r in res)
    assert srv.max_inflight == 2  # 6 requests of 0.15 s each, never more than 2 at a time


def test_connection_refused_is_a_failed_group(image_and_masks):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    img, masks = image_and_masks
    r = _client(f"http://127.0.0.1:{port}/v1", max_retries=1).score_group(img, "q", masks, False)
    assert r.scores == [None, None] and "request failed" in r.parse_error


def test_config_and_environment(monkeypatch):
    from core.evaluator.openai_compat import OpenAICompatEvaluator
    from core.evaluator.presets import load_evaluator

    monkeypatch.delenv("REA2SEG_EVAL_BASE_URL", raising=False)
    monkeypatch.delenv("REA2SEG_EVAL_MODEL", raising=False)
    with pytest.raises(ValueError, match=r"evaluator\.openai.*base_url"):
        load_evaluator("openai", config={})
    monkeypatch.setenv("REA2SEG_EVAL_API_KEY", "env-key-456")
    monkeypatch.setenv("REA2SEG_EVAL_BASE_URL", "http://user:pw@127.0.0.1:9/v1/")
    monkeypatch.setenv("REA2SEG_EVAL_MODEL", "m-env")
    ev = load_evaluator(
        "openai", config={"evaluator": {"openai": {"concurrency": 3, "timeout_s": 5}}}
    )
    assert isinstance(ev, OpenAICompatEvaluator) and ev.concurrency == 3 and ev.timeout_s == 5.0
    assert ev.base_url == "http://user:pw@127.0.0.1:9/v1" and ev.model == "m-env"
    assert (
        "env-key-456" not in repr(ev)
        and "pw" not in ev.name
        and ev.name == "m-env @ http://127.0.0.1:9/v1"
    )
    assert ev._api_key == "env-key-456"
    spec = load_evaluator(
        {"backend": "openai", "base_url": "https://example.invalid/v1", "model": "m"}
    )
    assert spec.model == "m"
    with pytest.raises(ValueError, match="http"):
        OpenAICompatEvaluator("ftp://x", "m")
