"""L in its own column (migration 0003): moved bit for bit both ways, never read by viewers."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from sqlalchemy import text

from core.store import db as store_db
from core.store import open_store, repo
from core.trace import Candidate, PipelineTrace, logits_from_bytes, logits_to_bytes
from tests.unit.conftest import box_mask


def _trace() -> PipelineTrace:
    L = np.random.default_rng(3).normal(0, 4, (40, 60)).astype(np.float32)
    m = box_mask((40, 60), 1, 5, 1, 5)
    return PipelineTrace(
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


def _to_revision(st, revision: str, down: bool) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(store_db.MIGRATIONS_DIR))
    with st.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _saved(filled_sqlite, tr):
    with filled_sqlite.session() as s:
        rid = repo.create_run(s, name="r", preset="t", config={}, model_ids={}, is_random=False)
        repo.save_trace(s, rid, 1, tr)
    return rid


def _blob(st) -> dict:
    with st.session(write=False) as s:
        return json.loads(
            zlib.decompress(s.execute(text("SELECT trace FROM run_samples")).scalar())
        )


def test_the_trace_json_holds_no_l_and_the_column_does(filled_sqlite):
    tr = _trace()
    rid = _saved(filled_sqlite, tr)
    assert _blob(filled_sqlite)["initial_logits"] is None
    with filled_sqlite.session(write=False) as s:
        full = repo.load_trace(s, rid, 1)
    assert np.array_equal(
        full.initial_logits, tr.initial_logits.astype(np.float16).astype(np.float32)
    )


def test_viewers_never_read_the_l_column(filled_sqlite):
    rid = _saved(filled_sqlite, _trace())
    with filled_sqlite.session() as s:
        s.execute(text("UPDATE run_samples SET logits = x'00ff'"))
    with filled_sqlite.session(write=False) as s:
        light = repo.load_trace(s, rid, 1, with_logits=False)
        assert light is not None and light.initial_logits is None
        with pytest.raises(ValueError, match="stored L map is unreadable"):
            repo.load_trace(s, rid, 1)


def test_migration_moves_l_both_ways_bit_for_bit(tmp_path, sgdr_file):
    from core.importers.sgdr import import_sgdr

    st = open_store(tmp_path / "m.sqlite")
    assert import_sgdr(st, sgdr_file).ok
    tr = _trace()
    rid = _saved(st, tr)
    _to_revision(st, "0002", down=True)  # a store as 0002 wrote it: L inside the JSON
    old = _blob(st)
    assert old["initial_logits"] == tr.to_dict()["initial_logits"]
    with st.session(write=False) as s:
        cols = [r[1] for r in s.execute(text("PRAGMA table_info(run_samples)"))]
    assert "logits" not in cols
    st.close()
    st = open_store(tmp_path / "m.sqlite")  # opening upgrades it
    assert _blob(st)["initial_logits"] is None
    with st.session(write=False) as s:
        full = repo.load_trace(s, rid, 1)
        light = repo.load_trace(s, rid, 1, with_logits=False)
    assert np.array_equal(
        full.initial_logits, tr.initial_logits.astype(np.float16).astype(np.float32)
    )
    assert light.to_json() == full.to_json(with_logits=False)
    st.close()


def test_logits_bytes_round_trip_and_garbage():
    L = np.array([[0.5, -3.25], [1e4, -0.0]], np.float32)
    assert np.array_equal(logits_from_bytes(logits_to_bytes(L)), L)
    with pytest.raises(ValueError, match="unreadable"):
        logits_from_bytes(b"not zlib")
    with pytest.raises(ValueError, match="not a 2-D float array"):
        import io

        buf = io.BytesIO()
        np.save(buf, np.arange(3))
        logits_from_bytes(zlib.compress(buf.getvalue()))


def test_load_logits_alone(filled_sqlite):
    tr = _trace()
    rid = _saved(filled_sqlite, tr)
    with filled_sqlite.session(write=False) as s:
        assert np.array_equal(
            repo.load_logits(s, rid, 1), repo.load_trace(s, rid, 1).initial_logits
        )
        assert repo.load_logits(s, rid, 2) is None and repo.load_logits(s, -1, 1) is None
