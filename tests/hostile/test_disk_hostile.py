"""Imports when the store's disk fills up or its file is deleted while the import runs: one
line and a non-zero exit, never a traceback or a report of changes that were lost; the store
stays a readable database holding what was saved before."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from core.masks import encode_rle
from tests.hostile.conftest import ROOT, cli
from tests.unit.conftest import make_image


def sgdr_file(folder, n: int, hw=(64, 64)):
    folder.mkdir(exist_ok=True)
    make_image(folder / "a.png", hw)
    rng = np.random.default_rng(0)
    samples = [
        {
            "id": f"s{i}",
            "image": "a.png",
            "question": "which one? " * 8,
            "mask": encode_rle(rng.random(hw) > 0.5),  # noisy: about 2 KB of RLE each
        }
        for i in range(n)
    ]
    f = folder / "d.json"
    f.write_text(json.dumps({"version": 1, "samples": samples}))
    return f


def count_samples(db) -> tuple[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        check = con.execute("PRAGMA quick_check").fetchone()[0]
        return check, con.execute("SELECT count(*) FROM samples").fetchone()[0]
    finally:
        con.close()


def one_line_error(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr and "added" not in r.stdout, (r.stdout, r.stderr)


# -- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 600 KiB tmpfs (needs root and mount); skipped where it cannot be made."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_import_onto_a_full_disk_is_one_line_and_the_store_stays_intact(tmp_path, small_tmpfs):
    f = sgdr_file(tmp_path / "data", 300)
    db = small_tmpfs / "s.sqlite"
    # batches of 10 samples, so that some batches land before the disk is full
    r = _cli_with_page_limit(0, "import", "sgdr", str(f), "--db", str(db))
    one_line_error(r, "the disk is full")
    check, saved = count_samples(db)
    assert check == "ok" and 0 < saved < 300
    # with room again, running the same import finishes it
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    r = cli("import", "sgdr", str(f), "--db", str(db))
    assert r.returncode == 0 and f"added {300 - saved}, already present {saved}," in r.stdout


_FULL_AFTER = """
import sys
from core.importers import sgdr
from core.store import db

sgdr.BATCH = 10  # small transactions, so that some land before the database is full
real = db._sqlite_pragmas

def limited(conn, record):  # SQLite refuses to grow the file past this: SQLITE_FULL
    real(conn, record)
    if int(sys.argv[1]):
        conn.execute("PRAGMA max_page_count = " + sys.argv[1])

db._sqlite_pragmas = limited
from core.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli_with_page_limit(pages: int, *args: str) -> subprocess.CompletedProcess:
    """``rea2seg ARGS`` with SQLite limited to ``pages`` pages (0: no limit) and imports in
    batches of 10 samples."""
    return subprocess.run(
        [sys.executable, "-c", _FULL_AFTER, str(pages), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_full_database_is_one_line_for_every_importer(tmp_path):
    """SQLite's own "database or disk is full" (a page limit) where no tmpfs can be mounted."""
    f = sgdr_file(tmp_path / "data", 120)
    db = tmp_path / "s.sqlite"
    cli("import", "sgdr", str(tmp_path / "none.json"), "--db", str(db))  # creates the store
    r = _cli_with_page_limit(80, "import", "sgdr", str(f), "--db", str(db))
    one_line_error(r, "the disk is full")
    check, saved = count_samples(db)
    assert check == "ok" and 0 < saved < 120
    coco = tmp_path / "c.json"
    anns = [
        {"id": i, "image_id": i, "category_id": 1, "segmentation": [[1, 1, 40, 1, 40, 40]]}
        for i in range(1, 121)
    ]
    images = [{"id": i, "file_name": "a.png"} for i in range(1, 121)]
    coco.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cup"}]}
        )
    )
    con = sqlite3.connect(db)
    pages = con.execute("PRAGMA page_count").fetchone()[0]  # no room to grow at all
    con.close()
    r = _cli_with_page_limit(
        pages, "import", "coco", str(coco), "--images", str(tmp_path / "data"), "--db", str(db)
    )
    one_line_error(r, "the disk is full")
    assert count_samples(db) == ("ok", saved)


# -- a store deleted while the import runs ----------------------------------------------------


def test_store_deleted_during_an_import_is_reported_not_added(tmp_path):
    f = sgdr_file(tmp_path / "data", 1500, hw=(16, 16))
    db = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "import", "sgdr", str(f), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if count_samples(db)[1] >= 20:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the import ended before the store could be deleted"
    db.unlink()
    out, err = proc.communicate(timeout=120)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    one_line_error(r, "deleted or replaced while in use")


def test_store_replaced_during_an_import_is_reported(tmp_path):
    from core.importers.sgdr import import_sgdr
    from core.store import open_store
    from core.store.db import StoreGone

    f = sgdr_file(tmp_path / "data", 30, hw=(8, 8))
    db = tmp_path / "s.sqlite"
    st = open_store(db)
    moved = tmp_path / "old.sqlite"

    def progress(done: int, total: int, label: str) -> None:
        if done == 10:
            db.rename(moved)
            db.write_bytes(moved.read_bytes())  # a copy in its place: another file

    with pytest.raises(StoreGone, match="deleted or replaced"):
        import_sgdr(st, f, progress=progress)
    st.close()
