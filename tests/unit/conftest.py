from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.formats.sgdr import SgdrSample, write_sgdr
from core.masks import encode_rle
from core.store import open_store


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REA2SEG_HOME", str(tmp_path_factory.mktemp("home")))


def make_image(path: Path, hw=(40, 60), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img[:, :, ::-1])
    return img


def box_mask(hw, y0, y1, x0, x1) -> np.ndarray:
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


@pytest.fixture
def sgdr_file(tmp_path) -> Path:
    """A small SGDR project: 2 images, 4 samples over 4 categories, one with an ignore region."""
    (tmp_path / "img").mkdir()
    make_image(tmp_path / "img" / "a.png", (40, 60), 0)
    make_image(tmp_path / "img" / "b.png", (30, 50), 1)
    samples = [
        SgdrSample(
            "a0",
            "img/a.png",
            "Which cube?",
            "geometric",
            "t",
            "pending",
            encode_rle(box_mask((40, 60), 5, 15, 5, 25)),
        ),
        SgdrSample(
            "a1",
            "img/a.png",
            "Left one?",
            "spatial",
            "t",
            "pending",
            encode_rle(box_mask((40, 60), 20, 30, 30, 50)),
            encode_rle(box_mask((40, 60), 0, 2, 0, 60)),
        ),
        SgdrSample(
            "b0",
            "img/b.png",
            "Hidden animal?",
            "discriminative",
            "t",
            "verified",
            encode_rle(box_mask((30, 50), 0, 10, 0, 10)),
        ),
        SgdrSample(
            "b1",
            "img/b.png",
            "Two steps?",
            "multi_step",
            "t",
            "flagged",
            encode_rle(np.zeros((30, 50), bool)),
        ),
    ]
    out = tmp_path / "project.json"
    write_sgdr(out, samples)
    return out


@pytest.fixture(scope="session")
def pg_server():
    from tests.pg import PostgresServer

    try:
        server = PostgresServer()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """The store on each backend: SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        st = open_store(tmp_path / "store.sqlite")
    else:
        st = open_store(request.getfixturevalue("pg_server").new_database())
    yield st
    st.close()


@pytest.fixture
def sqlite_store(tmp_path):
    st = open_store(tmp_path / "store.sqlite")
    yield st
    st.close()


def _fill(store, sgdr_file):
    from core.importers.sgdr import import_sgdr

    rep = import_sgdr(store, sgdr_file)
    assert rep.ok and rep.added == 4
    return store


@pytest.fixture
def filled_store(store, sgdr_file):
    return _fill(store, sgdr_file)


@pytest.fixture
def filled_sqlite(sqlite_store, sgdr_file):
    return _fill(sqlite_store, sgdr_file)
