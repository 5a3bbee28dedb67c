"""Partial results of an ask (heatmap → seeds → k-core → candidates → groups with streamed text),
the trace they add up to, and the OpenAI-compatible evaluator's streamed answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from core.cancel import Cancelled
from core.pipeline.partial import LiveTrace, partial_kind

KEY = "sk-stream-secret-123"


class SSEServer:
    """Answers every chat request with ``mode``: ``"sse"`` (the pieces as server-sent events),
    ``"json"`` (one plain body) or ``"fail-then-json"`` (HTTP 500 to the streamed request, then
    JSON). Records each request's ``stream`` flag."""

    def __init__(self, pieces: list[str], mode: str = "sse") -> None:
        self.pieces, self.mode, self.streamed = pieces, mode, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.streamed.append(bool(body.get("stream")))
                if outer.mode == "sse":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for p in outer.pieces:
                        chunk = {"choices": [{"index": 0, "delta": {"content": p}}]}
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                if outer.mode == "fail-then-json" and body.get("stream"):
                    self.send_response(500)
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"oops")
                    return
                text = "".join(outer.pieces)
                out = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# the key echoed in one piece, then split across two
PIECES = [
    "The left ",
    f"region (key {KEY}) ",
    f"(and {KEY[:7]}",
    f"{KEY[7:]}). ",
    "\nAnswer:\nMask 1: 0.8\n",
    "Mask 2: 0.1",
]


@pytest.fixture
def group():
    img = np.zeros((20, 30, 3), np.uint8)
    m = np.zeros((20, 30), bool)
    m[2:8, 3:9] = True
    return img, [m, ~m]


@pytest.mark.parametrize("mode", ["sse", "json", "fail-then-json"])
def test_openai_evaluator_streams_the_answer_piece_by_piece(group, mode):
    from core.evaluator.openai_compat import OpenAICompatEvaluator

    srv = SSEServer(PIECES, mode)
    try:
        ev = OpenAICompatEvaluator(srv.url, "m", api_key=KEY, backoff_s=0.01)
        got: list[str] = []
        r = ev.score_group_stream(group[0], "which?", group[1], True, got.append)
    finally:
        srv.close()
    assert r.scores == [0.8, 0.1] and r.parse_error is None
    assert KEY not in r.raw_text and KEY not in "".join(got)  # every piece is redacted
    assert srv.streamed[0] is True
    if mode == "sse":  # piece by piece as sent (a possible key's start held back a little)
        assert len(got) >= 4 and "".join(got) == r.raw_text and got[0].startswith("The left")
        assert r.raw_text.count("***") == 2 and KEY[:7] not in r.raw_text
    elif mode == "json":  # a server that does not stream: its text in one piece
        assert got == [r.raw_text] and srv.streamed == [True]
    else:  # the stream failed: the ordinary request answers, nothing was streamed
        assert got == [] and srv.streamed == [True, False]


def test_partial_kinds_and_live_trace_without_models():
    from core.evaluator.progress import GroupScored, GroupStarted, ReasoningDelta
    from core.trace import EvaluatorGroup

    live = LiveTrace("q", (4, 5))
    assert live.trace().attention is None and live.trace().candidates == []
    live.apply(GroupStarted(0, 2, [0, 1], 0, {"backend": "b", "model_id": "m"}))
    assert live.apply(ReasoningDelta(0, "ab")) == "reasoning"
    live.apply(ReasoningDelta(0, "c"))
    assert live.reasoning[0] == "abc" and live.scoring == 0
    assert live.pending.candidate_ids == [0, 1]
    g = EvaluatorGroup(0, [0, 1], "p", "abc", None, [0.1, 0.2])
    assert live.apply(GroupScored(g, 2)) == "group" and live.scoring is None
    assert live.pending is None and live.trace().candidates == []
    with pytest.raises(TypeError):
        partial_kind(object())


@pytest.fixture(scope="module")
def models():
    from core.pipeline.cache import ModelCache

    m = ModelCache(device="cpu")
    return m.segmenter("tiny-random-lisa"), m.evaluator("tiny-random")


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


@pytest.mark.slow
def test_ask_hands_out_partials_in_order_and_they_add_up_to_the_trace(models, image):
    from core.pipeline.ask import ask

    segmenter, evaluator = models
    kinds: list[str] = []
    live = LiveTrace("q", (48, 64))
    snapshots = {}

    def on_partial(item):
        k = live.apply(item)
        kinds.append(k)
        snapshots.setdefault(k, live.trace())

    trace = ask(image, "the thing", segmenter, evaluator=evaluator, partial=on_partial)
    n = len(trace.candidates)
    m = sum(c.origin == "multimask" for c in trace.candidates)  # handed out after the initial mask
    stage1 = ["heatmap", "initial", *["candidate"] * m, "seeds", "core"]
    stage1 += [*["candidate"] * (n - m), "stage1"]
    assert kinds[: len(stage1)] == stage1
    groups = [k for k in kinds[len(stage1) :] if k != "reasoning"]
    assert groups == ["group_started", "group"] * len(trace.evaluator.groups)
    # the heatmap drawn after the MLLM forward is the trace's own; nothing else is known then
    first = snapshots["heatmap"]
    assert np.allclose(first.attention.token_map, trace.attention.token_map)
    assert first.seeds is None and first.candidates == [] and first.initial_mask is None
    assert snapshots["seeds"].graph is None and snapshots["core"].graph.k == trace.graph.k
    assert [c.id for c in live.candidates] == [c.id for c in trace.candidates]
    # streamed text adds up to each group's answer (the tiny evaluator streams word by word)
    for g in trace.evaluator.groups:
        assert live.reasoning[g.index].strip() == g.raw_text.strip()
    assert [g.scores for g in live.trace().evaluator.groups] == [
        g.scores for g in trace.evaluator.groups
    ]


@pytest.mark.slow
def test_cancel_between_groups_stops_after_the_first_group(models, image):
    from core.pipeline.ask import ask

    segmenter, evaluator = models
    kinds: list[str] = []
    with pytest.raises(Cancelled):
        ask(
            image,
            "the thing",
            segmenter,
            evaluator=evaluator,
            partial=lambda item: kinds.append(partial_kind(item)),
            should_cancel=lambda: "group" in kinds,
        )
    assert kinds.count("group") == 1 and kinds[-1] == "group"


@pytest.mark.slow
def test_the_evaluator_can_be_loaded_after_stage_1(models, image):
    from core.pipeline.ask import ask

    segmenter, evaluator = models
    order: list[str] = []

    def load():
        order.append("load")
        return evaluator

    trace = ask(
        image,
        "the thing",
        segmenter,
        load_evaluator=load,
        partial=lambda item: order.append(partial_kind(item)),
    )
    assert order.index("load") == order.index("stage1") + 1 and trace.evaluator is not None


@pytest.mark.slow
def test_cancel_stops_a_group_while_its_answer_streams(models, image):
    from core.pipeline.ask import ask

    segmenter, evaluator = models
    kinds: list[str] = []
    with pytest.raises(Cancelled):
        ask(
            image,
            "the thing",
            segmenter,
            evaluator=evaluator,
            partial=lambda item: kinds.append(partial_kind(item)),
            should_cancel=lambda: "reasoning" in kinds,
        )
    assert kinds[-2:] == ["group_started", "reasoning"] and "group" not in kinds
