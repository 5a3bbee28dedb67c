from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sqlalchemy import select, text

from core.masks import encode_rle
from core.store import StoreCorruptError, StoreError, open_store, repo, review
from core.store.models import Dataset, Review, Revision, Sample
from tests.unit.conftest import box_mask


def test_sqlite_pragmas_and_schema_version(sqlite_store):
    with sqlite_store.session() as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert (
            s.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
        )  # the migration head


def test_review_actions_history_and_undo_redo(filled_store):
    st = filled_store
    review.decide(st, 1, "accept", user="ann", note="looks right")
    review.edit_question(st, 1, "  Which red cube?  ", user="bob")
    with st.session() as s:
        smp = repo.get_sample(s, 1)
        assert (smp.status, smp.question) == ("verified", "Which red cube?")
    assert review.undo(st, 1, user="bob") is True
    with st.session() as s:
        assert repo.get_sample(s, 1).question == "Which cube?"
    assert review.undo(st, 1, user="bob") is True  # the status change
    with st.session() as s:
        assert repo.get_sample(s, 1).status == "pending"
    assert review.undo(st, 1, user="bob") is False
    assert review.redo(st, 1, user="bob") is True  # status again
    with st.session() as s:
        assert repo.get_sample(s, 1).status == "verified"
    # a new edit clears the redo stack
    review.decide(st, 1, "flag", user="cy", note="unsure")
    assert review.redo(st, 1, user="cy") is False
    hist = review.history(st, 1)
    assert [(h.field, h.action) for h in hist] == [
        ("status", "edit"),
        ("question", "edit"),
        ("question", "undo"),
        ("status", "undo"),
        ("status", "redo"),
        ("status", "edit"),
    ]
    assert hist[0].user == "ann" and hist[0].before == "pending" and hist[0].after == "verified"
    assert hist[-1].note == "unsure"
    with st.session() as s:
        decisions = s.scalars(
            select(Review.decision).where(Review.sample_id == 1).order_by(Review.id)
        )
        assert list(decisions) == ["accept", "flag"]


def test_replace_mask_keeps_every_version(filled_store):
    st = filled_store
    m1 = box_mask((40, 60), 1, 5, 1, 5)
    m2 = box_mask((40, 60), 10, 20, 10, 20)
    id1 = review.replace_mask(st, 1, m1, user="ann", provenance={"tool": "brush"})
    id2 = review.replace_mask(
        st, 1, m2, user="ann", provenance={"tool": "sam", "points": [[3, 4, 1]]}
    )
    with st.session() as s:
        assert np.array_equal(repo.edited_mask(s, 1), m2)
        assert np.array_equal(repo.current_mask(s, 1), m2)
    review.undo(st, 1, user="ann")
    with st.session() as s:
        assert np.array_equal(repo.edited_mask(s, 1), m1)
        assert repo.get_mask(s, id2) is not None  # the undone version is still stored
    hist = review.history(st, 1)
    assert [h.after for h in hist] == [id1, id2, id1]
    with pytest.raises(ValueError, match="image size"):
        review.replace_mask(st, 1, np.zeros((10, 10), bool), user="ann")
    assert len(review.history(st, 1)) == 3  # the bad mask changed nothing


def test_bad_review_input_changes_nothing(filled_store):
    st = filled_store
    with pytest.raises(ValueError, match="empty"):
        review.edit_question(st, 1, "   ", user="ann")
    with pytest.raises(ValueError, match="user"):
        review.decide(st, 1, "accept", user="")
    with pytest.raises(ValueError, match="decision"):
        review.decide(st, 1, "approve", user="ann")
    with pytest.raises(LookupError):
        review.decide(st, 999, "accept", user="ann")
    assert review.history(st, 1) == []


def test_listing_by_status_and_counts(filled_store):
    st = filled_store
    with st.session(write=False) as s:
        assert [x.id for x in repo.list_samples(s, status="pending")] == [1, 2]
        assert [x.id for x in repo.list_samples(s, status="verified")] == [3]
        assert [x.id for x in repo.list_samples(s, category="multi_step")] == [4]
    c = review.counts(st)
    assert c[("geometric", "pending")] == 1 and c[("multi_step", "flagged")] == 1
    assert sum(c.values()) == 4


def test_trace_round_trip_in_store(filled_store):
    from core.trace import Candidate, PipelineTrace

    st = filled_store
    gt = box_mask((40, 60), 5, 15, 5, 25)
    cands = [
        Candidate(0, "multimask", 0, gt.copy(), 0.9),
        Candidate(1, "amg", 0, box_mask((40, 60), 5, 15, 5, 15), 0.8, 0.95, 2),
    ]
    tr = PipelineTrace(
        "q",
        (40, 60),
        "tiny",
        {"mllm": "x"},
        True,
        {"k1": 50},
        np.zeros((40, 60), np.float32),
        gt,
        None,
        None,
        None,
        cands,
        timings={"sam": 0.5},
    )
    with st.session() as s:
        rid = repo.create_run(s, name="r", preset="tiny", config={}, model_ids={}, is_random=True)
        repo.save_trace(s, rid, 1, tr)
        repo.save_trace(s, rid, 1, tr)  # upsert
    with st.session() as s:
        back = repo.load_trace(s, rid, 1)
        assert repo.finished_sample_ids(s, rid) == {1}
        rows = s.execute(text("SELECT idx, true_iou FROM candidates ORDER BY idx")).all()
    assert back.sample_id == 1 and len(back.candidates) == 2
    assert np.array_equal(back.candidates[1].mask, cands[1].mask)
    assert rows == [(0, 1.0), (1, 0.5)]


def test_corrupt_database_is_moved_aside_not_replaced(tmp_path):
    p = tmp_path / "bad.sqlite"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError) as ei:
        open_store(p)
    moved = ei.value.moved_to
    assert moved is not None and moved.read_bytes().startswith(b"this is not")
    assert not p.exists()
    assert "moved aside" in str(ei.value)
    open_store(p).close()  # a fresh store can now be created there
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "missing-folder" / "x.sqlite")


_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from core.store import open_store, review
    db, who, n, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
    st = open_store(db)
    (gate / f"ready-{who}").touch()
    deadline = time.time() + 60
    while len(list(gate.glob("ready-*"))) < 2:  # barrier: both writers start together
        if time.time() > deadline:
            sys.exit("the other writer never got ready")
        time.sleep(0.005)
    t0 = time.time()
    for i in range(n):
        review.edit_question(st, 1, f"{who}-{i}", user=who)
        review.decide(st, 2 if who == "a" else 3, "accept", user=who) if i == 0 else None
    print("span", t0, time.time(), flush=True)
    """
)


def test_two_processes_reviewing_at_once_lose_nothing(filled_store, tmp_path):
    db = filled_store.engine.url.render_as_string(hide_password=False)
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, db, who, "40", str(gate)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        _, t0, t1 = out.split()
        spans.append((float(t0), float(t1)))
    # the writers overlapped in time: each started before the other finished
    assert max(t0 for t0, _ in spans) < min(t1 for _, t1 in spans), spans
    with filled_store.session() as s:
        revs = s.query(Revision).filter(Revision.sample_id == 1).order_by(Revision.id).all()
    assert len(revs) == 80
    # every change saw the previous one: the before/after chain is unbroken (no lost update)
    for prev, cur in zip(revs, revs[1:], strict=False):
        assert cur.before == prev.after
    assert {r.user for r in revs} == {"a", "b"}


_BURST = textwrap.dedent(
    """
    import sys
    from core.store import open_store, review
    st = open_store(sys.argv[1])
    i = 0
    while True:
        sid = 1 + i % 4
        review.edit_question(st, sid, f"q{i}", user="burst")
        print(i, flush=True)
        i += 1
    """
)


def test_kill9_during_review_burst_keeps_every_committed_review(filled_sqlite):
    db = filled_sqlite.url.replace("sqlite:///", "")
    p = subprocess.Popen([sys.executable, "-c", _BURST, db], stdout=subprocess.PIPE, text=True)
    seen = []
    for line in p.stdout:
        seen.append(int(line))
        if len(seen) >= 60:
            break
    p.kill()
    p.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    questions = {r[0] for r in con.execute("SELECT after FROM revisions WHERE user='burst'")}
    con.close()
    for i in seen:  # every review the process reported as committed is there
        assert f'"q{i}"' in questions


def test_sgdr_masks_survive_kill9_during_import(tmp_path):
    from core.formats.sgdr import SgdrSample, write_sgdr
    from tests.unit.conftest import make_image

    make_image(tmp_path / "x.png", (32, 32))
    n = 4000  # 20 transactions of 200: the kill lands between two of them
    samples = [
        SgdrSample(
            f"s{i}",
            "x.png",
            f"q{i}",
            "other",
            "t",
            "pending",
            encode_rle(box_mask((32, 32), 0, i % 32, 0, 5)),
        )
        for i in range(n)
    ]
    write_sgdr(tmp_path / "big.json", samples)
    db = tmp_path / "kill.sqlite"
    open_store(db).close()
    code = f"from core.store import open_store; from core.importers.sgdr import import_sgdr; import_sgdr(open_store({str(db)!r}), {str(tmp_path / 'big.json')!r})"
    p = subprocess.Popen([sys.executable, "-c", code])
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            con = sqlite3.connect(db, timeout=5)
            k = con.execute("SELECT count(*) FROM samples").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            continue
        if k >= 20:
            break
    p.kill()
    p.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    partial = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    orphans = con.execute("SELECT count(*) FROM samples WHERE gt_mask_id IS NULL").fetchone()[0]
    con.close()
    assert 0 < partial < n and orphans == 0
    from core.importers.sgdr import import_sgdr

    st = open_store(db)
    rep = import_sgdr(st, tmp_path / "big.json")
    assert rep.ok and rep.added == n - partial and rep.existing == partial


def test_trace_without_logits_for_viewers(filled_sqlite):
    from core.trace import Candidate, PipelineTrace
    from tests.unit.conftest import box_mask

    m = box_mask((40, 60), 1, 5, 1, 5)
    L = np.linspace(-5, 5, 40 * 60, dtype=np.float32).reshape(40, 60)
    tr = PipelineTrace(
        "q",
        (40, 60),
        "t",
        {},
        False,
        {},
        L,
        L > 0,
        None,
        None,
        None,
        [Candidate(0, "amg", 0, m, 0.5)],
    )
    with filled_sqlite.session() as s:
        rid = repo.create_run(s, name="r", preset="t", config={}, model_ids={}, is_random=False)
        repo.save_trace(s, rid, 1, tr)
    with filled_sqlite.session() as s:
        full = repo.load_trace(s, rid, 1)
        light = repo.load_trace(s, rid, 1, with_logits=False)
    assert np.allclose(full.initial_logits, L, atol=5e-3)  # stored as float16
    assert light.initial_logits is None and np.array_equal(light.initial_mask, L > 0)


def test_count_samples_is_the_length_of_list_samples_for_every_filter(filled_store):
    import itertools

    from core.vocab import CATEGORIES, STATUSES

    with filled_store.session(write=False) as s:
        verified = repo.count_samples(s, status="verified")
    with filled_store.session(write=False) as s:
        assert s.get(Sample, 1).status != "verified"
    review.decide(filled_store, 1, "accept", user="ann")
    review.decide(filled_store, 2, "reject", user="ann", note="no")
    with filled_store.session(write=False) as s:
        names = [None, *(d.name for d in s.scalars(select(Dataset)))]
        for status, cat, text, ds in itertools.product(
            [None, *STATUSES], [None, *CATEGORIES[:2]], [None, "cube", "%"], names
        ):
            kw = {"status": status, "category": cat, "text": text, "dataset": ds}
            assert repo.count_samples(s, **kw) == len(repo.list_samples(s, **kw)), kw
        assert (
            repo.count_samples(s) == 4 and repo.count_samples(s, status="verified") == verified + 1
        )
