"""The OpenAI-compatible client against hostile servers: trickle, huge bodies, key echoes."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.hostile.servers import RawServer, http_reply

KEY = "sk-hostile-7Qz9-SECRET-key-0123456789abcdef"


@pytest.fixture
def raw_server():
    made = []

    def make(reply, **kw):
        srv = RawServer(reply, **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def _client(url, **kw):
    from core.evaluator.openai_compat import OpenAICompatEvaluator

    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("max_retries", 0)
    return OpenAICompatEvaluator(url, "evaluator-x", api_key=KEY, **kw)


def _img_masks():
    img = np.full((12, 16, 3), 90, np.uint8)
    m = np.zeros((12, 16), bool)
    m[2:6, 3:9] = True
    return img, [m, ~m]


def _trickle(conn, _n):
    """Headers at once, then one byte of a never-ending body every 0.5 s (at most 60 s)."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(120):
        conn.sendall(b" ")
        time.sleep(0.5)


def _trickle_headers(conn, _n):
    for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
        conn.sendall(bytes([b]))
        time.sleep(0.5)


@pytest.mark.parametrize("reply", [_trickle, _trickle_headers], ids=["body", "headers"])
def test_trickling_server_is_cut_at_the_deadline(raw_server, reply):
    srv = raw_server(reply, max_requests=2)
    img, masks = _img_masks()
    # A byte every 0.5 s never trips a per-read timeout: "timed out" means the 1.5 s deadline
    # for the whole call ended it (how long the call takes: bench/deadlines.py).
    r = _client(srv.url, timeout_s=1.5).score_group(img, "q", masks, False)
    assert r.scores == [None, None] and "timed out" in r.parse_error, r.parse_error


def test_trickle_with_one_retry_is_bounded_per_attempt(raw_server):
    srv = raw_server(_trickle, max_requests=2)
    img, masks = _img_masks()
    r = _client(srv.url, timeout_s=1.0, max_retries=1).score_group(img, "q", masks[:1], False)
    assert (
        "timed out" in r.parse_error
        and "after 2 attempts" in r.parse_error
        and len(srv.requests) == 2
    )


def _huge(conn, _n, *, declared=True):
    size = 100 * 1024 * 1024
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {size}\r\n\r\n" if declared else "Connection: close\r\n\r\n"
    conn.sendall(head.encode() + b'{"choices": "')
    block = b"x" * (1 << 20)
    for _ in range(100):
        conn.sendall(block)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_100_mb_body_is_refused_not_stored(raw_server, declared):
    srv = raw_server(lambda c, n: _huge(c, n, declared=declared), max_requests=1)
    img, masks = _img_masks()
    r = _client(srv.url, timeout_s=20).score_group(img, "q", masks, False)
    assert r.scores == [None, None] and r.raw_text == ""
    assert "refused" in r.parse_error and "max_body_bytes" in r.parse_error
    assert len(r.parse_error) < 300


def _abrupt(conn, _n):
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"choices": ')  # then hang up


def _garbage_status(conn, _n):
    conn.sendall(f"HTTP/1.1 2xx {KEY} nonsense\r\n\r\n".encode())


@pytest.mark.parametrize(
    "reply", [_abrupt, _garbage_status], ids=["incomplete-read", "bad-status-line"]
)
def test_transport_errors_are_failed_groups(raw_server, reply):
    srv = raw_server(reply, max_requests=1)
    img, masks = _img_masks()
    r = _client(srv.url, timeout_s=5).score_group(img, "q", masks, False)
    assert r.scores == [None, None] and r.parse_error.startswith("request failed:")
    assert KEY not in r.parse_error


# -- the key, on every path -------------------------------------------------------------------


def _echo(conn, n):
    """Request n gets path n % 6; each echoes the Authorization header it was sent."""
    req = conn.recv(0) or b""  # read_request already consumed it; the server keeps it
    del req
    auth = f"Bearer {KEY}"
    paths = [
        http_reply(
            200, json.dumps({"error": "no choices here", "echo": auth, "key": KEY}).encode()
        ),
        http_reply(
            401, json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
        ),
        http_reply(
            200, b"<html>" + b"." * 190 + KEY.encode() + b"</html>"
        ),  # the cut falls inside the key
        f"HTTP/1.1 2xx {auth}\r\n\r\n".encode(),
        http_reply(
            200,
            json.dumps(
                {"choices": [{"message": {"content": f"thinking {KEY}\nMask 1: 0.9"}}]}
            ).encode(),
        ),
        http_reply(503, f"busy {KEY}".encode()),
    ]
    conn.sendall(paths[n % len(paths)])


def test_key_never_reaches_results_db_trace_or_exports(raw_server, tmp_path):
    from core.cli import main
    from core.evaluator.stage2 import run_stage2
    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.importers.sgdr import import_sgdr
    from core.masks import encode_rle
    from core.store import open_store, repo
    from core.trace import Candidate, PipelineTrace
    from tests.unit.conftest import make_image

    srv = raw_server(_echo, max_requests=6)
    img = make_image(tmp_path / "a.png", (12, 16))
    masks = [np.zeros((12, 16), bool) for _ in range(6)]
    for i, m in enumerate(masks):
        m[i : i + 3, 2:10] = True
    write_sgdr(
        tmp_path / "f.json",
        [SgdrSample("s0", "a.png", "which?", "other", "t", "pending", encode_rle(masks[0]))],
    )
    db = tmp_path / "s.sqlite"
    st = open_store(db)
    import_sgdr(st, tmp_path / "f.json")
    tr = PipelineTrace(
        "which?",
        (12, 16),
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
    client = _client(srv.url, timeout_s=5, concurrency=1)
    run_stage2(tr, img, client, group_size=1, cot=True)
    groups = tr.evaluator.groups
    assert len(groups) == 6 and len(srv.requests) == 6
    assert all(f"Bearer {KEY}".encode() in r for r in srv.requests)  # the key was really sent
    texts = [t for g in groups for t in (g.raw_text, g.cot or "", g.parse_error or "")]
    assert sum("***" in t for t in texts) >= 5  # the echoes were there, masked
    with st.session() as s:
        run_id = repo.create_run(
            s, name="r", preset="test", config={}, model_ids={}, is_random=False
        )
        repo.save_trace(s, run_id, 1, tr)
    st.close()

    occurrences = {}
    raw_db = b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite*"))
    occurrences["db file"] = raw_db.count(KEY.encode())
    import sqlite3
    import zlib

    con = sqlite3.connect(db)
    blobs = [zlib.decompress(b).decode() for (b,) in con.execute("SELECT trace FROM run_samples")]
    rows = [
        str(r)
        for t in ("evaluator_outputs", "runs", "samples")
        for r in con.execute(f"SELECT * FROM {t}")
    ]
    con.close()
    occurrences["db rows + traces"] = sum(x.count(KEY) for x in blobs + rows)

    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["trace", "--db", str(db), "--sample", "1", "--json"]) == 0
    occurrences["trace --json"] = out.getvalue().count(KEY)
    assert "***" in out.getvalue()
    assert main(["export", "sgdr", "--db", str(db), "--out", str(tmp_path / "out" / "x.json")]) == 0
    assert (
        main(
            [
                "export",
                "evaluator-train",
                "--db",
                str(db),
                "--run",
                str(run_id),
                "--out",
                str(tmp_path / "train.jsonl"),
            ]
        )
        == 0
    )
    exported = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    occurrences["exports"] = sum(p.read_text().count(KEY) for p in exported if p.name != "f.json")
    print("key occurrences:", occurrences)
    assert occurrences == {"db file": 0, "db rows + traces": 0, "trace --json": 0, "exports": 0}


def test_redaction_covers_escaped_and_cut_forms():
    c = _client("http://127.0.0.1:9/v1")
    for text in (
        KEY,
        json.dumps({"k": KEY}),
        repr({"k": KEY}),
        f"Bearer {KEY}",
        f"bearer abc{KEY}",
    ):
        assert KEY not in c.redact(text)
    body = b"x" * 190 + KEY.encode()
    assert KEY[:10] not in c.snippet(body)  # redacted before the 200-character cut
