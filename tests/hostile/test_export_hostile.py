"""Exports are atomic: on any failure the old file is intact, no temporary file is left, one line."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

from core.fileio import WriteError, atomic_write
from tests.hostile.conftest import ROOT, cli, tree


@pytest.fixture
def store_db(tmp_path, sgdr_small):
    r = cli("import", "sgdr", str(sgdr_small), "--db", str(tmp_path / "s.sqlite"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "s.sqlite"


@pytest.fixture
def sgdr_small(tmp_path):
    import numpy as np

    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.masks import encode_rle
    from tests.unit.conftest import make_image

    (tmp_path / "data").mkdir()
    make_image(tmp_path / "data" / "a.png", (8, 8))
    m = encode_rle(np.eye(8, dtype=bool))
    write_sgdr(
        tmp_path / "data" / "d.json", [SgdrSample("s0", "a.png", "q?", "other", "t", "pending", m)]
    )
    return tmp_path / "data" / "d.json"


def test_out_is_a_folder(tmp_path, store_db):
    (tmp_path / "o").mkdir()
    before = tree(tmp_path / "o")
    r = cli("export", "sgdr", "--db", str(store_db), "--out", str(tmp_path / "o"))
    assert (
        r.returncode == 2 and "is a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    )
    assert tree(tmp_path / "o") == before


def test_missing_parent_is_created_and_mode_kept(tmp_path, store_db):
    out = tmp_path / "new" / "deeper" / "x.json"
    assert cli("export", "sgdr", "--db", str(store_db), "--out", str(out)).returncode == 0
    assert out.is_file()
    os.chmod(out, 0o640)
    assert cli("export", "sgdr", "--db", str(store_db), "--out", str(out)).returncode == 0
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in out.parent.iterdir()] == ["x.json"]


def test_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "x.json"
    out.write_text("old contents")

    def no_space(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError) as ei:
        atomic_write(out, "new contents " * 1000)
    assert "No space left" in str(ei.value) and "\n" not in str(ei.value)
    assert out.read_text() == "old contents" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def _mount_ok(folder) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "mount", "-t", "tmpfs", "-o", "size=64k", "none", str(folder)],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


def _in_private_mount(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_real_enospc_and_read_only_folder(tmp_path, store_db):
    """A 64 KiB tmpfs that fills up, and a read-only bind mount: old file intact, no .tmp."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if not _mount_ok(out_dir):
        pytest.skip("no permission for a private mount")
    code = (
        "import sys; from core.fileio import atomic_write; from core.cli import _err\n"
        "try:\n atomic_write(sys.argv[1], 'x' * 200_000)\n"
        "except OSError as e:\n _err(str(e)); sys.exit(2)\n"
    )
    script = (
        f"mount -t tmpfs -o size=64k none {out_dir} && echo old > {out_dir}/x.json && "
        f'{sys.executable} -c "{code}" {out_dir}/x.json; rc=$?; '
        f"cat {out_dir}/x.json; ls -a {out_dir}; exit $rc"
    )
    r = _in_private_mount(script)
    assert (
        r.returncode == 2
        and "No space left" in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    ), r
    assert r.stdout.split() == ["old", ".", "..", "x.json"]
    (out_dir / "x.json").write_text("old")
    before = tree(out_dir)
    script = (
        f"mount --bind -o ro {out_dir} {out_dir} && "
        f"{sys.executable} -m core.cli export sgdr --db {store_db} --out {out_dir}/x.json"
    )
    r = _in_private_mount(script)
    assert (
        r.returncode == 2 and "Read-only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    ), r.stderr
    assert tree(out_dir) == before
