"""Migration 0005 (generation claims, paid requests) goes down and up again on both backends."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.unit.test_store_logits import _to_revision


def _shape(st) -> tuple[bool, bool]:
    insp = inspect(st.engine)
    cols = {c["name"] for c in insp.get_columns("question_generations")}
    return "generation_claims" in insp.get_table_names(), "paid" in cols


def test_migration_0005_down_and_up(store):
    assert _shape(store) == (True, True)
    _to_revision(store, "0004", down=True)
    assert _shape(store) == (False, False)
    _to_revision(store, "head", down=False)
    assert _shape(store) == (True, True)
