"""Stage 2: grouping/rerank, the output parser, the OpenAI-compatible client, evaluation, export."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.evaluator.grouping import make_groups, rerank, top_k
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import canonical_answer

# -- grouping ---------------------------------------------------------------------------------


def test_groups_are_shuffled_deterministically_and_last_is_smaller():
    g = make_groups(list(range(13)), 5, seed=3)
    assert [len(x) for x in g] == [5, 5, 3]
    assert sorted(sum(g, [])) == list(range(13))
    assert g == make_groups(list(range(13)), 5, seed=3) and g != make_groups(list(range(13)), 5, seed=4)
    assert make_groups([], 5) == []
    with pytest.raises(ValueError):
        make_groups([1], 0)


def test_rerank_ties_by_id_and_unparsed_last():
    scores = {4: 0.5, 1: 0.9, 7: None, 2: 0.5, 0: None, 3: 0.95}
    assert rerank(scores) == [3, 1, 2, 4, 0, 7]
    assert top_k(rerank(scores), 3) == [3, 1, 2]


# -- parser -----------------------------------------------------------------------------------

TABLE = [
    ("Mask 1: 0.72\nMask 2: 0.10\nMask 3: 0.55", 3, [0.72, 0.10, 0.55], None),
    ("The question asks for the left cube. Mask 2 covers it.\nAnswer:\nMask 1: 0.1\nMask 2: 0.9", 2, [0.1, 0.9], None),
    ("mask_1 = 72%\nmask_2 = 5%", 2, [0.72, 0.05], None),
    ('{"mask_1": 0.7, "mask_2": 0.2}', 2, [0.7, 0.2], None),
    ("Scores: [0.1, 0.5, 0.9]", 3, [0.1, 0.5, 0.9], None),
    ('[{"mask": 2, "iou": 0.4}, {"mask": 1, "iou": 0.6}]', 2, [0.6, 0.4], None),
    ("IoU of mask 2 is 0.5. Mask 1: 0.25", 2, [0.25, 0.5], None),
    ("Mask 1: 80\nMask 2: 20", 2, [0.8, 0.2], None),
    ("Mask 1: 0.3\nMask 1: 0.6\nMask 2: 0.1", 2, [0.6, 0.1], None),  # the final answer wins
    ("Mask 1: 0.3", 3, [0.3, None, None], "no score for masks [2, 3]"),
    ("Mask 1: 0.3\nMask 2: 0.4\nMask 7: 0.9", 2, [0.3, 0.4], "outside 1..2"),
    ("Mask 1: 250\nMask 2: 0.4", 2, [None, 0.4], "unusable values"),
    ("I cannot see any masks.", 2, [None, None], "no scores found"),
    ("", 1, [None], "no scores found"),
    ("Mask 1: -0.2", 1, [None], "unusable"),
]


@pytest.mark.parametrize("text, n, scores, err", TABLE)
def test_parser_table(text, n, scores, err):
    r = parse_scores(text, n)
    assert [s is None for s in r.scores] == [s is None for s in scores]
    assert [s for s in r.scores if s is not None] == pytest.approx([s for s in scores if s is not None])
    if err is None:
        assert r.error is None
    else:
        assert r.error is not None and err in r.error


def test_parser_keeps_the_reasoning():
    r = parse_scores("Step 1: the tall red one.\nAnswer:\nMask 1: 0.5", 1)
    assert r.cot == "Step 1: the tall red one." and r.scores == [0.5]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.integers(-1, 8))
def test_parser_never_raises_and_never_invents_zero(text, n):
    r = parse_scores(text, n)
    assert len(r.scores) == max(n, 0)
    assert all(s is None or 0.0 <= s <= 1.0 for s in r.scores)
    if all(s is None for s in r.scores) and n > 0:
        assert r.error


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8), st.text(alphabet="abc xyz.\n", max_size=40))
def test_canonical_answer_round_trips(scores, reasoning):
    r = parse_scores(canonical_answer(scores, reasoning or None), len(scores))
    assert r.error is None
    assert r.scores == pytest.approx([round(s, 2) for s in scores], abs=1e-9)


# -- OpenAI-compatible client against a loopback server ---------------------------------------


class _Server:
    def __init__(self, script):
        self.script = list(script)  # per request: (status, body, delay, headers)
        self.seen = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                outer.seen.append((self.path, dict(self.headers), json.loads(self.rfile.read(n))))
                status, body, delay, headers = outer.script.pop(0) if outer.script else (200, _ok("Mask 1: 0.5"), 0, {})
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body if isinstance(body, bytes) else body.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _ok(text):
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def image_and_masks():
    img = np.zeros((20, 30, 3), np.uint8)
    m = np.zeros((20, 30), bool)
    m[2:8, 3:9] = True
    return img, [m, ~m]


def _client(url, **kw):
    from core.evaluator.openai_compat import OpenAICompatEvaluator

    return OpenAICompatEvaluator(url, "evaluator-x", api_key="sk-SECRET-123", backoff_s=0.01, **kw)


def test_client_success_sends_images_and_key(image_and_masks):
    srv = _Server([(200, _ok("Reasoning.\nAnswer:\nMask 1: 0.8\nMask 2: 0.1"), 0, {})])
    try:
        img, masks = image_and_masks
        r = _client(srv.url).score_groups(img, "which?", [masks], True)[0]
    finally:
        srv.close()
    assert r.scores == [0.8, 0.1] and r.cot == "Reasoning." and r.parse_error is None
    path, headers, body = srv.seen[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-SECRET-123"
    content = body["messages"][1]["content"]
    assert [c["type"] for c in content] == ["image_url", "image_url", "image_url", "text"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_client_retries_429_and_500_then_succeeds(image_and_masks):
    srv = _Server([(429, "slow down", 0, {"Retry-After": "0"}), (500, "oops", 0, {}), (200, _ok("Mask 1: 0.3\nMask 2: 0.6"), 0, {})])
    try:
        r = _client(srv.url).score_groups(*image_and_masks[:1], "q", [image_and_masks[1]], False)[0]
    finally:
        srv.close()
    assert r.scores == [0.3, 0.6] and len(srv.seen) == 3


def test_client_gives_up_with_a_plain_failure_and_no_key(image_and_masks):
    srv = _Server([(503, "down", 0, {})] * 3 + [(400, "bad request sk-SECRET-123", 0, {})])
    try:
        c = _client(srv.url, max_retries=2)
        r1 = c.score_groups(image_and_masks[0], "q", [image_and_masks[1]], False)[0]
        r2 = c.score_groups(image_and_masks[0], "q", [image_and_masks[1]], False)[0]
    finally:
        srv.close()
    assert r1.scores == [None, None] and "HTTP 503" in r1.parse_error
    assert "HTTP 400" in r2.parse_error
    assert "SECRET" not in r1.parse_error + r2.parse_error


def test_client_timeout_and_malformed_bodies(image_and_masks):
    srv = _Server([(200, _ok("Mask 1: 0.1"), 1.0, {}), (200, _ok("Mask 1: 0.1"), 1.0, {}),
                   (200, "<html>not json", 0, {}), (200, json.dumps({"choices": []}), 0, {})])
    try:
        c = _client(srv.url, timeout_s=0.3, max_retries=1)
        r = c.score_groups(image_and_masks[0], "q", [image_and_masks[1][:1]], False)[0]
        assert r.scores == [None] and "timed out" in r.parse_error.lower() or "timeout" in r.parse_error.lower()
        c2 = _client(srv.url, max_retries=0)
        r2 = c2.score_groups(image_and_masks[0], "q", [image_and_masks[1][:1]], False)[0]
        r3 = c2.score_groups(image_and_masks[0], "q", [image_and_masks[1][:1]], False)[0]
    finally:
        srv.close()
    assert "malformed" in r2.parse_error and "malformed" in r3.parse_error


# -- stage 2, evaluation and export on a hand-built store --------------------------------------


class _FixedEvaluator:
    name, backend, is_random = "fixed", "test", False

    def __init__(self, table):
        self.table = table  # candidate area -> score

    def score_groups(self, image, question, groups, cot):
        from core.evaluator.base import GroupResult

        return [GroupResult([self.table.get(int(m.sum())) for m in g], "cot", "raw", "prompt", None) for g in groups]


def _trace(masks, initial, question="q"):
    from core.pipeline.trace import Candidate, PipelineTrace

    cands = [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)]
    return PipelineTrace(question, masks[0].shape, "test", {}, False, {}, None, initial, None, None, None, cands)


def test_stage2_eval_numbers_by_hand(filled_sqlite, tmp_path):
    from core.evaluator.evaluate import evaluate_run
    from core.evaluator.export import export_evaluator_train
    from core.evaluator.stage2 import run_stage2
    from core.store import repo
    from tests.unit.conftest import box_mask

    st = filled_sqlite
    hw = (40, 60)
    gt = box_mask(hw, 5, 15, 5, 25)  # sample 1 (geometric): 10 x 20 = 200 px
    exact = gt.copy()
    half = box_mask(hw, 5, 15, 5, 15)  # 100 px, IoU 0.5
    off = box_mask(hw, 30, 40, 40, 60)  # 200 px... disjoint
    off[30, 40] = False  # 199 px so areas differ
    tr = _trace([half, off, exact], initial=half)
    ev = run_stage2(tr, np.zeros((*hw, 3), np.uint8), _FixedEvaluator({100: 0.9, 199: 0.2, 200: 0.6}), group_size=2, shuffle_seed=0)
    assert ev.ranking == [0, 2, 1] and len(ev.groups) == 2 and [len(g.candidate_ids) for g in ev.groups] == [2, 1]
    with st.session() as s:
        run_id = repo.create_run(s, name="t", preset="test", config={}, model_ids={}, is_random=False)
        repo.save_trace(s, run_id, 1, tr)
    res = evaluate_run(st, run_id)
    assert res["is_random"] is False
    e5 = 1e-5
    assert res["n"] == 1
    assert res["top1"]["overall"]["giou"] == pytest.approx(100 / (200 + e5))  # the evaluator picked the half mask
    assert res["best_of_top3"]["overall"]["giou"] == pytest.approx(200 / (200 + e5))
    assert res["initial"]["overall"]["giou"] == pytest.approx(100 / (200 + e5))
    assert res["oracle"]["overall"]["ciou"] == pytest.approx(200 / (200 + 1e-10))
    assert set(res["top1"]["per_category"]) == {"geometric"}
    # scores 0.9, 0.2, 0.6 against true IoUs 0.5, 0, 1: Pearson by hand
    x, y = np.array([0.9, 0.2, 0.6]), np.array([0.5, 0.0, 1.0])
    assert res["correlation"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert res["correlation"]["spearman"] == pytest.approx(0.5)

    import cv2

    out = tmp_path / "train.jsonl"
    stats = export_evaluator_train(st, run_id, out, group_size=2)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert stats["groups"] == len(lines) == 2
    for rec in lines:
        images = rec["image"]
        n = len(images) - 1
        assert rec["conversations"][0]["value"].count("<image>") == n + 1
        answer = parse_scores(rec["conversations"][1]["value"], n)
        for path, got in zip(images[1:], answer.scores, strict=True):
            m = cv2.imread(str(out.parent / path), cv2.IMREAD_GRAYSCALE) > 127
            inter, union = np.logical_and(m, gt).sum(), np.logical_or(m, gt).sum()
            assert got == pytest.approx(inter / union, abs=0.005)


@pytest.mark.slow
def test_tiny_internvl_through_the_loader_with_lora(tmp_path):
    from core.evaluator.local_internvl import load_internvl
    from core.evaluator.tiny import build_tiny_internvl, build_tiny_lora
    from core.models.base import ModelLoadError

    base = build_tiny_internvl(tmp_path / "ivl")
    lora = build_tiny_lora(base, tmp_path / "lora")
    ev = load_internvl(base, lora_path=lora, is_random=True, max_new_tokens=6)
    assert ev.is_random and "lora" in ev.name
    img = np.zeros((30, 40, 3), np.uint8)
    m = np.zeros((30, 40), bool)
    res = ev.score_groups(img, "which cube ?", [[m, ~m], [m]], cot=True)
    assert len(res) == 2 and [len(r.scores) for r in res] == [2, 1]
    for r in res:  # random text: a recorded parse failure (never a crash, never a silent 0)
        if r.parse_error is None:
            assert all(s is not None and 0 <= s <= 1 for s in r.scores)
        else:
            assert any(s is None for s in r.scores)
        assert "Mask 2" in r.prompt or "Mask 1" in r.prompt
    with pytest.raises(ModelLoadError, match="setting model_path"):
        load_internvl(tmp_path / "missing")


@pytest.mark.slow
def test_cli_run_with_evaluator_then_eval_and_export(tmp_path, capsys):
    from core.cli import main
    from core.demo import DEMO_SGDR

    db = str(tmp_path / "d.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0
    assert main(["run", "--db", db, "--preset", "tiny-random", "--evaluator", "tiny-random", "--no-cot", "--limit", "2"]) == 0
    capsys.readouterr()
    assert main(["trace", "--db", db, "--sample", "1", "--json"]) == 0
    tr = json.loads(capsys.readouterr().out)
    assert tr["evaluator"]["backend"] == "local-internvl" and tr["evaluator"]["is_random"] and tr["evaluator"]["cot"] is False
    assert main(["eval", "--db", db, "--run", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 2 and set(res) >= {"top1", "best_of_top3", "initial", "oracle", "correlation"}
    assert res["is_random"] is True
    assert main(["export", "evaluator-train", "--db", db, "--run", "1", "--out", str(tmp_path / "t.jsonl")]) == 0
    assert (tmp_path / "t.jsonl").read_text().count("\n") >= 2
