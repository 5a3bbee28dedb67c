"""Question generation against a hostile or broken endpoint, and two generators on one store.

Figures checked: requests the server answered (paid) against requests recorded in the store,
requests paid when two ``questions generate`` processes share a store, and the exit status of
every process (never negative: no process is ended by a signal)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import unicodedata

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from core.benchmark import claims
from core.benchmark.generate import generate_questions
from core.llm_client import ChatClient, usage_counts
from core.store import open_store
from core.store.models import GenerationClaim, QuestionGeneration, Target
from core.textsafe import json_safe, terminal_text
from tests.hostile.conftest import ROOT, cli
from tests.unit.llm_server import ChatServer, Reply

PHRASE = json.dumps({"phrase": "the cup on the left", "relation": "left of"})
ACCEPT = json.dumps(
    {"thinking_process": "ok", "incorrect": 0, "ambiguous": 0, "trivial": 0, "question": "Which?"}
)


def coco_store(tmp_path, n: int = 12) -> str:
    """A store with ``n`` cups on one image: ``n`` spatial targets (one category group)."""
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((64, 16 * n, 3), 128, np.uint8))
    anns = [
        {
            "id": i + 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [[16 * i + 2, 2, 16 * i + 12, 2, 16 * i + 12, 40, 16 * i + 2, 40]],
        }
        for i in range(n)
    ]
    f = tmp_path / "c.json"
    f.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png", "height": 64, "width": 16 * n}],
                "categories": [{"id": 1, "name": "cup"}],
                "annotations": anns,
            }
        )
    )
    db = str(tmp_path / "s.sqlite")
    r = cli("import", "coco", str(f), "--images", str(tmp_path / "img"), "--db", db)
    assert r.returncode == 0 and f"targets added {n}" in r.stdout, r.stdout + r.stderr
    return db


def body(content, usage=None, **extra) -> bytes:
    out = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    if usage is not None:
        out["usage"] = usage
    out.update(extra)
    return json.dumps(out).encode()


DEEP = 50_000
# Each entry: the generator's raw reply body (the verifier always accepts). All are HTTP 200:
# the server answered, so each request is paid whatever its body holds.
ODD_GENERATOR_REPLIES = {
    "nan usage": body(PHRASE).replace(b"}]}", b'}], "usage": {"prompt_tokens": NaN, '
                                         b'"completion_tokens": Infinity, "total_tokens": -1}}'),
    "huge usage": body(PHRASE, {"prompt_tokens": 1e400, "completion_tokens": "7",
                                "total_tokens": True}),
    "lone surrogate": body(None).replace(b"null", json.dumps(
        '{"phrase": "the cup \\ud800 left", "relation": "x"}').encode()),
    "nul": body('{"phrase": "the cup\\u0000 left", "relation": "\\u0000"}'),
    "deep answer": body('{"phrase": ' + "[" * DEEP + "]" * DEEP + "}"),
    "deep nested 900": body('{"phrase": "cup", "relation": ' + "[" * 900 + "]" * 900 + "}"),
    "phrase a number": body('{"phrase": 12, "relation": "x"}'),
    "phrase an object": body('{"phrase": {"a": "b"}, "relation": "x"}'),
    "not json": b"<html>oops</html>",
    "json array": b"[1, 2, 3]",
    "deep body": b'{"choices": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "content a number": body(7),
    "content parts": body([{"type": "text", "text": PHRASE}, {"text": ["x"]}, 3]),
    "braces": body("{" * 200_000),
    "long expression": body(json.dumps({"phrase": "cup " * 2000, "relation": "x"})),
    "model a list": body(PHRASE, model=["x"] * 3),
}  # fmt: skip


def odd_server(replies: list[bytes]) -> ChatServer:
    queue = list(replies)

    def script(req) -> Reply:
        if req.role == "verifier":
            return Reply(ACCEPT, usage={"prompt_tokens": 5, "completion_tokens": 5})
        return Reply(raw=queue.pop(0) if queue else body(PHRASE))

    return ChatServer(script)


def records(db: str) -> list[QuestionGeneration]:
    st = open_store(db, create=False)
    try:
        return st.run(
            lambda s: list(s.scalars(select(QuestionGeneration).order_by(QuestionGeneration.id))),
            write=False,
        )
    finally:
        st.close()


def test_odd_paid_replies_are_all_recorded_and_never_paid_again(tmp_path):
    n = len(ODD_GENERATOR_REPLIES)
    db = coco_store(tmp_path, n)
    server = odd_server(list(ODD_GENERATOR_REPLIES.values()))
    args = ["questions", "generate", "--split", "spatial", "--db", db, "--endpoint", server.url,
            "--model", "m", "--concurrency", "1", "--backoff", "0.01", "--quiet"]  # fmt: skip
    try:
        r = cli(*args, timeout=120)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr[-3000:]
        paid = len(server.requests)  # every request got HTTP 200: every one is billed
        recs = records(db)
        assert len(recs) == n  # one record per target, none lost
        assert sum(x.paid for x in recs) == paid  # figure: requests paid == requests recorded
        verdicts = {x.verdict for x in recs}
        assert verdicts <= {"accepted", "error"} and "error" in verdicts
        assert f"requests paid {paid}" in r.stdout
        # nothing stored holds NUL, a lone surrogate or a non-finite number
        for x in recs:
            for text in (x.generator_raw, x.question or "", x.error or "", x.generator_model):
                assert "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
            for k, v in x.usage.get("generator", {}).items():
                assert not isinstance(v, float) or math.isfinite(v), k
        # --resume pays for none of them again (paid errors need --retry-paid)
        r2 = cli(*args, "--resume", timeout=120)
        assert r2.returncode == 0 and len(server.requests) == paid, r2.stdout + r2.stderr
        assert "requests paid 0" in r2.stdout
    finally:
        server.close()
    print(f"FIGURE odd replies: {paid} requests paid, {sum(x.paid for x in recs)} recorded, "
          f"0 paid again on --resume, exit {r.returncode}/{r2.returncode}")  # fmt: skip


def test_usage_counts_keep_only_whole_finite_counts():
    raw = {"prompt_tokens": float("nan"), "completion_tokens": 1e400, "total_tokens": 12.0}
    assert usage_counts(raw) == {"total_tokens": 12}
    assert usage_counts({"prompt_tokens": -3, "completion_tokens": 2**60}) == {}
    assert usage_counts(["x"]) == {} and usage_counts({"prompt_tokens": False}) == {}


def test_json_safe_is_iterative_and_strict():
    deep: list = []
    cur = deep
    for _ in range(100_000):  # far past the recursion limit
        cur.append([])
        cur = cur[0]
    out = json_safe({"a": deep, "n": float("nan"), "s": "x\x00\ud800"}, depth=4)
    assert json.dumps(out, allow_nan=False)  # strict JSON: PostgreSQL stores it
    assert out["n"] == "nan" and out["s"] == "x\ufffd\ufffd"


@pytest.mark.parametrize(
    "text",
    [
        "\x1b[2J\x1b]0;pwned\x07cleared",  # ANSI clear screen, OSC title
        "\x9b31mred via C1",  # C1 control sequence introducer
        "abc\u202edcba\u2066x\u2069",  # bidi override and isolate
        "two\nlines\rback\ttab\x7f",
        "zero\u200bwidth\u2028sep\ud800",
    ],
)
def test_terminal_text_leaves_nothing_that_steers_a_terminal(text):
    out = terminal_text(text)
    assert "\n" not in out
    for ch in out:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"), repr(ch)
    assert len(terminal_text("x" * 1000, 50)) == 50


def test_questions_list_shows_model_text_escaped_and_cut(tmp_path):
    db = coco_store(tmp_path, 3)
    evil = [
        "\x1b]0;owned\x07\x1b[31mWhich cup?\x1b[0m",
        "Which \u202eleft\u202c cup?\x9b2J",
        "Which cup? " * 80,  # 880 characters: under the cap, cut on the list line
    ]
    queue = list(evil)

    def script(req) -> Reply:
        if req.role == "generator":
            return Reply(PHRASE)
        q = queue.pop(0)
        a = {"thinking_process": "\x1b[5m", "incorrect": 0, "ambiguous": 0, "trivial": 0}
        return Reply(json.dumps({**a, "question": q}))

    server = ChatServer(script)
    try:
        r = cli("questions", "generate", "--split", "spatial", "--db", db, "--endpoint",
                server.url, "--model", "m", "--concurrency", "1", "--quiet")  # fmt: skip
    finally:
        server.close()
    assert r.returncode == 0, r.stdout + r.stderr
    out = cli("questions", "list", "--db", db).stdout
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[31mWhich cup?" in out and "\\u202e" in out
    lines = out.splitlines()
    assert len(lines) == 3 and max(len(ln) for ln in lines) < 400  # the long one is cut: …
    full = json.loads(cli("questions", "list", "--db", db, "--json").stdout)
    assert {r["question"] for r in full} == {q.strip() for q in evil}  # --json escapes them


def test_an_overlong_question_is_an_error_and_no_sample(tmp_path):
    db = coco_store(tmp_path, 2)

    def script(req) -> Reply:
        if req.role == "generator":
            return Reply(PHRASE)
        a = {"incorrect": 0, "ambiguous": 0, "trivial": 0, "question": "Which? " * 500}
        return Reply(json.dumps(a))

    server = ChatServer(script)
    try:
        r = cli("questions", "generate", "--split", "spatial", "--db", db, "--endpoint",
                server.url, "--model", "m", "--quiet")  # fmt: skip
    finally:
        server.close()
    assert r.returncode == 1 and "MAX_QUESTION_CHARS" in r.stdout
    recs = records(db)
    assert [x.verdict for x in recs] == ["error", "error"] and all(x.paid == 2 for x in recs)
    assert all(x.sample_id is None for x in recs)


# -- two generators, one store ---------------------------------------------------------------


def slow_server(delay: float = 0.05) -> ChatServer:
    def script(req) -> Reply:
        return Reply(ACCEPT if req.role == "verifier" else PHRASE, delay_s=delay)

    return ChatServer(script)


def generate_cmd(db: str, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "core.cli", "questions", "generate", "--split", "spatial",
            "--db", db, "--endpoint", url, "--model", "m", "--resume", "--quiet",
            "--concurrency", "2", *extra]  # fmt: skip


def run_together(cmds: list[list[str]]) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for c in cmds]  # fmt: skip
    out = []
    for p in procs:
        so, se = p.communicate(timeout=180)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


def test_two_generators_on_one_store_pay_once_per_target(tmp_path):
    n = 12
    db = coco_store(tmp_path, n)
    server = slow_server()
    try:
        runs = run_together([generate_cmd(db, server.url), generate_cmd(db, server.url)])
        gen = len(server.by_role("generator"))
        ver = len(server.by_role("verifier"))
    finally:
        server.close()
    for r in runs:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    recs = records(db)
    assert sorted(x.target_id for x in recs) == sorted({x.target_id for x in recs})
    assert len(recs) == n and gen == n and ver == n  # figure: 24 requests for 12 targets
    st = open_store(db, create=False)
    assert st.run(lambda s: list(s.scalars(select(GenerationClaim))), write=False) == []
    st.close()
    print(f"FIGURE two generators: {gen + ver} requests paid for {n} targets "
          f"(generator {gen}, verifier {ver}); exits {[r.returncode for r in runs]}")  # fmt: skip


def test_a_killed_generator_s_claims_lapse_and_resume_pays_once(tmp_path):
    """A run killed mid-way (SIGKILL, by us) leaves claims that lapse with their lease; the
    resumed run then finishes every target, paying again only for what was in flight."""
    n = 8
    db = coco_store(tmp_path, n)
    server = slow_server(delay=0.6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        victim = subprocess.Popen(
            generate_cmd(db, server.url, "--claim-lease", "2"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)  # the process this test started, by its id
        victim.communicate(timeout=30)
        paid_by_victim = len(server.requests)
        recorded = len(records(db))
        time.sleep(2.5)  # the lease of the killed run lapses (no process renews it)
        second = run_together([generate_cmd(db, server.url)])[0]
        assert second.returncode == 0, second.stderr[-2000:]
    finally:
        server.close()
    recs = records(db)
    assert len({x.target_id for x in recs}) == n and len(recs) == n
    in_flight_lost = paid_by_victim - 2 * recorded  # asked by the victim, never recorded
    assert len(server.requests) == 2 * n + in_flight_lost
    print(f"FIGURE killed generator: {len(server.requests)} requests for {n} targets, "
          f"{in_flight_lost} were in flight in the killed run")  # fmt: skip


def test_claims_api_lease_and_done_targets(tmp_path):
    db = coco_store(tmp_path, 2)
    st = open_store(db)
    t1, t2 = st.run(lambda s: list(s.scalars(select(Target.id).order_by(Target.id))), write=False)
    never = lambda s, tid: False  # noqa: E731
    assert claims.claim(st, t1, "spatial", "a", 60, never)
    assert not claims.claim(st, t1, "spatial", "b", 60, never)  # held by a
    assert claims.claim(st, t1, "multi_step", "b", 60, never)  # another split: free
    assert claims.claim(st, t2, "spatial", "a", -1, never)  # already lapsed
    assert claims.claim(st, t2, "spatial", "b", 60, never)  # so b takes it over
    assert not claims.claim(st, t2, "spatial", "a", 60, never)
    assert claims.renew(st, "b", 60) == 2
    # a done target is never claimed, and the attempt leaves no row behind
    st.run(lambda s: s.query(GenerationClaim).delete())
    assert not claims.claim(st, t1, "spatial", "c", 60, lambda s, tid: True)
    assert st.run(lambda s: s.query(GenerationClaim).count(), write=False) == 0
    st.close()


def test_a_store_with_another_run_s_live_claims_leaves_them(tmp_path):
    db = coco_store(tmp_path, 4)
    st = open_store(db)
    ids = st.run(lambda s: list(s.scalars(select(Target.id).order_by(Target.id))), write=False)
    never = lambda s, tid: False  # noqa: E731
    assert claims.claim(st, ids[0], "spatial", "other-run", 600, never)
    server = slow_server(0.0)
    try:
        gen = ChatClient(server.url, "m", concurrency=1)
        rep = generate_questions(st, "spatial", gen, gen, resume=True)
    finally:
        server.close()
    assert rep.claimed_elsewhere == 1 and rep.verdicts["accepted"] == 3 and rep.paid == 6
    assert len(server.requests) == 6
    st.close()


# -- the verifier and the multi-step split ------------------------------------------------------

ODD_VERIFIER_REPLIES = {
    "flag a list": '{"incorrect": [0], "ambiguous": 0, "trivial": 0, "question": "Which?"}',
    "question an object": '{"incorrect": 0, "ambiguous": 0, "trivial": 0, "question": {"q": 1}}',
    "deep thinking": '{"incorrect": 0, "ambiguous": 0, "trivial": 0, "question": "Which?", '
    '"thinking_process": ' + "[" * 950 + "]" * 950 + "}",
    "nan flags": '{"incorrect": NaN, "ambiguous": Infinity, "trivial": 0, "question": "Q?"}',
    "surrogate question": '{"incorrect": 0, "ambiguous": 0, "trivial": 0, '
    '"question": "Which \\udfff cup?"}',
}
MULTI_STEP_ODD = [
    '{"Final multi-step referring expression": ["the", "cup"]}',
    '{"Final multi-step referring expression": "' + "cup " * 400 + '"}',
    "Final multi-step referring expression: the cup \x00 by the \ud800 plate",
    "Description: " + "{" * 100_000,
]


@pytest.mark.parametrize("split", ["spatial", "multi_step"])
def test_odd_verifier_and_multi_step_replies_are_recorded(tmp_path, split):
    verifier = list(ODD_VERIFIER_REPLIES.values())
    gens = list(MULTI_STEP_ODD) if split == "multi_step" else []
    n = len(verifier) + len(gens)
    db = coco_store(tmp_path, n)

    def script(req) -> Reply:
        if req.role == "generator":
            if gens:
                return Reply(gens.pop(0))
            if split == "spatial":
                return Reply(PHRASE)
            return Reply("Final multi-step referring expression: the cup nearest the edge")
        return Reply(verifier.pop(0) if verifier else ACCEPT)

    server = ChatServer(script)
    st = open_store(db)
    try:
        client = ChatClient(server.url, "m", concurrency=1)
        rep = generate_questions(st, split, client, client)
        recs = st.run(lambda s: list(s.scalars(select(QuestionGeneration))), write=False)
    finally:
        server.close()
        st.close()
    assert len(recs) == n and sum(x.paid for x in recs) == len(server.requests) == rep.paid
    assert rep.verdicts["error"] >= 3


# -- the store fails under a run ----------------------------------------------------------------


def test_store_deleted_while_questions_are_generated_is_one_line(tmp_path):
    db = coco_store(tmp_path, 8)

    def script(req) -> Reply:
        if len(server.requests) == 5:  # mid-run: the store file disappears
            os.unlink(db)
        return Reply(ACCEPT if req.role == "verifier" else PHRASE)

    server = ChatServer(script)
    try:
        r = cli("questions", "generate", "--split", "spatial", "--db", db, "--endpoint",
                server.url, "--model", "m", "--concurrency", "1", "--quiet")  # fmt: skip
    finally:
        server.close()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "deleted or replaced" in r.stderr
    assert "accepted" not in r.stdout  # no report of work that was lost
    assert len(server.requests) <= 6  # it stopped at the first change it could not save


_FULL_GENERATE = """
import sys
from core.store import db
real = db._sqlite_pragmas

def limited(conn, record):  # SQLite refuses to grow the file past this: SQLITE_FULL
    real(conn, record)
    conn.execute("PRAGMA max_page_count = " + sys.argv[1])

db._sqlite_pragmas = limited
from core.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_full_disk_while_questions_are_generated_is_one_line(tmp_path):
    import sqlite3

    db = coco_store(tmp_path, 40)
    con = sqlite3.connect(db)
    pages = con.execute("PRAGMA page_count").fetchone()[0] + 25  # room for a few records
    con.close()
    long_reply = json.dumps({"phrase": "the cup " + "x" * 900, "relation": "y" * 3000})
    server = ChatServer(lambda req: Reply(ACCEPT if req.role == "verifier" else long_reply))
    try:
        r = subprocess.run(
            [sys.executable, "-c", _FULL_GENERATE, str(pages), "questions", "generate",
             "--split", "spatial", "--db", db, "--endpoint", server.url, "--model", "m",
             "--concurrency", "1", "--quiet"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        server.close()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "the disk is full" in r.stderr
    recorded = records(db)
    assert 0 < len(recorded) < 40  # what was saved before the disk filled stays


def test_two_generators_retrying_paid_errors_pay_once_per_target(tmp_path):
    """Both runs list the same paid errors to ask again (--retry-paid); the one that claims a
    target second sees the other's new record and leaves it."""
    n = 8
    db = coco_store(tmp_path, n)
    bad = ChatServer(lambda req: Reply("no json here"))
    try:
        r = cli("questions", "generate", "--split", "spatial", "--db", db, "--endpoint",
                bad.url, "--model", "m", "--quiet")  # fmt: skip
    finally:
        bad.close()
    assert r.returncode == 1 and len(bad.requests) == n
    server = slow_server()
    try:
        runs = run_together(
            [
                generate_cmd(db, server.url, "--retry-paid"),
                generate_cmd(db, server.url, "--retry-paid"),
            ]
        )
    finally:
        server.close()
    assert all(r.returncode == 0 for r in runs), [r.stderr[-1000:] for r in runs]
    assert len(server.requests) == 2 * n
    assert sorted(x.verdict for x in records(db)) == ["accepted"] * n + ["error"] * n


def test_a_paid_error_recorded_by_another_run_after_listing_is_not_paid_again(
    tmp_path, monkeypatch
):
    """Run B lists the paid errors to retry; run A retries them first (unusable again, paid
    again) before B claims them: B sees A's new records and pays for none."""
    from core.benchmark import generate as gen_mod

    db = coco_store(tmp_path, 3)
    st = open_store(db)
    bad = ChatServer(lambda req: Reply("no json here"))
    good = slow_server(0.0)
    try:
        client = ChatClient(bad.url, "m", concurrency=1)
        assert generate_questions(st, "spatial", client, client).paid == 3
        real = gen_mod.targets_to_generate

        def listed_then_raced(*a, **kw):
            ids = real(*a, **kw)  # B's list: the three paid errors
            monkeypatch.setattr(gen_mod, "targets_to_generate", real)
            rep_a = generate_questions(st, "spatial", client, client, resume=True, retry_paid=True)
            assert rep_a.paid == 3  # A paid for them again (it was asked to)
            return ids

        monkeypatch.setattr(gen_mod, "targets_to_generate", listed_then_raced)
        b = ChatClient(good.url, "m")
        rep_b = generate_questions(st, "spatial", b, b, resume=True, retry_paid=True)
    finally:
        bad.close()
        good.close()
        st.close()
    assert rep_b.paid == 0 and len(good.requests) == 0
    assert len(bad.requests) == 6
