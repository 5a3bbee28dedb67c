"""Store paths that are not corrupt databases are refused untouched; schema checks; literal filters."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from core.store import StoreCorruptError, StoreError, StoreMissing, open_store, repo, schema_version
from core.store import db as store_db
from tests.hostile.conftest import cli, tree


def _healthy(path):
    st = open_store(path)
    st.close()
    return path


def test_directory_as_db_is_refused_and_left_alone(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("x")
    before = tree(tmp_path)
    with pytest.raises(StoreError, match="is a folder") as ei:
        open_store(tmp_path / "d")
    assert not isinstance(ei.value, StoreCorruptError)
    r = cli("stats", "--db", str(tmp_path / "d"))
    assert (
        r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "is a folder" in r.stderr
    )
    assert tree(tmp_path) == before  # 0 entries renamed, created or changed


def test_read_commands_never_create_a_store(tmp_path):
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(StoreMissing) as ei:
        open_store(missing, create=False)
    assert ei.value.path == missing
    for args in (
        ("stats", "--db", str(missing)),
        ("export", "sgdr", "--db", str(missing), "--out", str(tmp_path / "o.json")),
        ("trace", "--db", str(missing), "--sample", "1"),
        ("eval", "--db", str(missing), "--run", "1"),
    ):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "no store there" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    # an empty file is not a store either, for a read command
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(StoreMissing):
        open_store(tmp_path / "empty.sqlite", create=False)
    assert (tmp_path / "empty.sqlite").read_bytes() == b""


def test_io_error_is_refused_not_moved(tmp_path, monkeypatch):
    db = _healthy(tmp_path / "s.sqlite")
    before = tree(tmp_path)

    def failing_connect(*_a, **_k):
        exc = sqlite3.OperationalError("disk I/O error")
        exc.sqlite_errorname = "SQLITE_IOERR_READ"
        raise exc

    monkeypatch.setattr(store_db.sqlite3, "connect", failing_connect)
    with pytest.raises(StoreError, match="left untouched") as ei:
        open_store(db)
    assert not isinstance(ei.value, StoreCorruptError)
    assert tree(tmp_path) == before


def test_healthy_store_on_a_read_only_mount_is_not_moved(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    _healthy(folder / "s.sqlite")
    before = tree(folder)
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare for a private read-only bind mount")
    probe = subprocess.run(
        ["unshare", "-m", "mount", "--bind", "-o", "ro", str(folder), str(folder)],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        pytest.skip("no permission for a private read-only bind mount")
    import os
    import sys

    from tests.hostile.conftest import ROOT

    script = (
        f"mount --bind -o ro {folder} {folder} && "
        f"{sys.executable} -m core.cli stats --db {folder / 's.sqlite'}"
    )
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "left untouched" in r.stderr, r.stderr
    assert tree(folder) == before


def test_only_what_sqlite_calls_corrupt_is_moved(tmp_path):
    db = _healthy(tmp_path / "s.sqlite")
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page + 0 : page + 100] = b"\xff" * 100  # page 2: a b-tree page header SQLite rejects
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="SQLite reports the database is corrupt") as ei:
        open_store(db)
    assert ei.value.moved_to is not None and ei.value.moved_to.read_bytes() == bytes(data)
    (tmp_path / "text.sqlite").write_text("hello, not a database")
    with pytest.raises(StoreCorruptError, match="not an SQLite database"):
        open_store(tmp_path / "text.sqlite")


def test_other_programs_database_gets_no_tables(tmp_path):
    p = tmp_path / "other.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE notes(x)")
    con.commit()
    con.close()
    before = p.read_bytes()
    with pytest.raises(StoreError, match="not a rea2seg store"):
        open_store(p)
    assert p.read_bytes() == before
    con = sqlite3.connect(p)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["notes"]
    con.close()


def test_newer_schema_is_refused(tmp_path):
    db = _healthy(tmp_path / "s.sqlite")
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"made by a newer rea2seg \(schema 99\)"):
        open_store(db)
    r = cli("stats", "--db", str(db))
    assert r.returncode == 2 and "made by a newer rea2seg (schema 99)" in r.stderr


def test_schema_version_is_the_migration_head():
    heads = store_db._script_directory().get_heads()
    assert len(heads) == 1, "migrations must form one line"
    assert store_db._head_revision() == heads[0]
    assert heads[0].startswith("0006") and schema_version() == "6"
    assert heads[0] in store_db._known_revisions()


def test_filters_are_literal_and_huge_ids_are_not_found(filled):
    st, ids = filled
    with st.session(write=False) as s:
        assert [x.question for x in repo.list_samples(s, text="100%")] == ["100% sure"]
        assert [x.question for x in repo.list_samples(s, text="a_b")] == ["a_b"]
        assert repo.list_samples(s, text="%") == [
            x for x in repo.list_samples(s) if "%" in x.question
        ]
        assert [x.question for x in repo.list_samples(s, text="\\")] == ["back\\slash"]
        for bad in (2**63, 2**70, -(2**64)):
            with pytest.raises(repo.NotFoundError):
                repo.get_sample(s, bad)
            with pytest.raises(repo.NotFoundError):
                repo.get_run(s, bad)
            assert repo.load_trace(s, 1, bad) is None and repo.runs_for_sample(s, bad) == []
    r = cli("trace", "--db", st.url.replace("sqlite:///", ""), "--sample", str(2**80))
    assert (
        r.returncode == 2
        and "not found" in r.stderr
        and "Overflow" not in r.stderr
        and "Traceback" not in r.stderr
    )


@pytest.fixture
def filled(tmp_path):
    import numpy as np

    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.importers.sgdr import import_sgdr
    from core.masks import encode_rle
    from tests.unit.conftest import make_image

    make_image(tmp_path / "a.png", (8, 8))
    qs = ["100% sure", "1000 sure", "a_b", "axb", "back\\slash"]
    m = encode_rle(np.ones((8, 8), bool))
    write_sgdr(
        tmp_path / "f.json",
        [SgdrSample(f"s{i}", "a.png", q, "other", "t", "pending", m) for i, q in enumerate(qs)],
    )
    st = open_store(tmp_path / "s.sqlite")
    assert import_sgdr(st, tmp_path / "f.json").added == len(qs)
    yield st, qs
    st.close()


def test_unreadable_store_is_refused_not_moved(tmp_path, monkeypatch):
    # tests may run as root, where chmod does not deny reads: the permission answer is simulated
    db = _healthy(tmp_path / "s.sqlite")
    before = tree(tmp_path)
    real_access = store_db.os.access
    monkeypatch.setattr(
        store_db.os, "access", lambda p, mode: False if str(p) == str(db) else real_access(p, mode)
    )
    with pytest.raises(StoreError, match="permission denied") as ei:
        open_store(db, create=False)
    assert not isinstance(ei.value, StoreCorruptError)
    assert tree(tmp_path) == before
