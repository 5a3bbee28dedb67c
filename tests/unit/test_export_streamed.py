"""``export sgdr`` reads the store a page at a time: the file is the one a single read writes,
no query names more than two pages of ids, and a PostgreSQL store past 65,535 masks exports."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from core.exporters import sgdr as sgdr_export
from core.formats.sgdr import dumps_sgdr, read_sgdr
from core.store import review
from tests.big_store import fill_store
from tests.export_data import fill_two_datasets


def _params(store):
    """The largest number of bound parameters in one statement, while the fixture runs."""
    seen = [0]

    def count(conn, cursor, statement, parameters, context, executemany):
        n = len(parameters) if isinstance(parameters, (list, tuple, dict)) else 0
        seen[0] = max(seen[0], 0 if executemany else n)

    event.listen(store.engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(store.engine, "before_cursor_execute", count)


def test_pages_write_the_same_file_as_one_read(store, tmp_path, monkeypatch):
    fill_two_datasets(store, tmp_path / "src")
    ids = fill_store(store, tmp_path / "big", 47)
    review.decide(store, ids[3], "accept", user="ann")
    whole = tmp_path / "whole.json"
    n = sgdr_export.export_sgdr(store, whole)
    samples, errors = read_sgdr(whole)
    assert not errors and n == len(samples) == 52
    assert whole.read_text(encoding="utf-8") == dumps_sgdr(samples)  # the format's own layout
    monkeypatch.setattr(sgdr_export, "CHUNK", 4)
    seen, stop = _params(store)
    try:
        paged = tmp_path / "paged.json"
        rep = sgdr_export.export_sgdr_report(store, paged)
    finally:
        stop()
    assert paged.read_bytes() == whole.read_bytes() and rep.written == 52
    assert 0 < seen[0] <= 2 * 4 + 2  # two mask ids per sample of a page (+ LIMIT and the last id)
    only = tmp_path / "verified.json"
    assert sgdr_export.export_sgdr(store, only, status="verified", dataset="big") == 1


def test_an_empty_export_is_the_empty_file(sqlite_store, tmp_path):
    out = tmp_path / "e.json"
    assert sgdr_export.export_sgdr(sqlite_store, out) == 0
    assert out.read_text(encoding="utf-8") == dumps_sgdr([])


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_exports_more_samples_than_it_takes_parameters(pg_server, tmp_path):
    from core.store import open_store

    st = open_store(pg_server.new_database())
    try:
        fill_store(st, tmp_path / "img", 70_000)  # 70,000 masks > 65,535 parameters
        out = tmp_path / "pg.json"
        assert sgdr_export.export_sgdr(st, out) == 70_000
        samples, errors = read_sgdr(out)
        assert not errors and samples[-1].id == "big-069999" and samples[-1].mask is not None
    finally:
        st.close()
