"""SGDR import in batched transactions: each mask decoded once, few commits, and a sample the
store refuses costs only itself."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

import core.importers.sgdr as imp
from core.formats.sgdr import SgdrSample, write_sgdr
from core.masks import encode_rle
from core.store import repo
from tests.unit.conftest import box_mask, make_image


def _file(tmp_path, n: int):
    for i in range(3):
        make_image(tmp_path / f"im{i}.png", (24, 30), seed=i)
    samples = [
        SgdrSample(
            f"s{i:03d}",
            f"im{i % 3}.png",
            f"question {i}",
            "spatial",
            "t",
            "pending",
            encode_rle(box_mask((24, 30), 0, 1 + i % 20, 0, 5)),
            encode_rle(box_mask((24, 30), 20, 24, 0, 30)) if i % 4 == 0 else None,
        )
        for i in range(n)
    ]
    write_sgdr(tmp_path / "f.json", samples)
    return tmp_path / "f.json", samples


def test_each_mask_is_decoded_once_in_few_transactions(sqlite_store, tmp_path, monkeypatch):
    path, samples = _file(tmp_path, 45)
    decoded = []
    real = repo.decode_rle
    monkeypatch.setattr(repo, "decode_rle", lambda *a, **k: (decoded.append(1), real(*a, **k))[1])
    import core.masks

    monkeypatch.setattr(core.masks, "decode_rle", repo.decode_rle)
    monkeypatch.setattr(imp, "BATCH", 10)
    commits = []
    event.listen(sqlite_store.engine, "commit", lambda conn: commits.append(1))
    rep = imp.import_sgdr(sqlite_store, path)
    assert rep.ok and rep.added == 45
    masks = sum(1 + (s.ignore is not None) for s in samples)
    assert len(decoded) == masks  # once each, on insert; reading the file only checks them
    assert len(commits) <= 5 + 1  # five batches (+ the schema check on open, if any)
    again = imp.import_sgdr(sqlite_store, path)
    assert again.ok and again.existing == 45 and again.added == 0
    got = sqlite_store.run(lambda s: repo.list_samples(s), write=False)
    assert [x.external_id for x in got] == [s.id for s in samples]
    for x, s in zip(got, samples, strict=True):
        assert sqlite_store.run(lambda ss, x=x: repo.gt_mask(ss, x.id), write=False).sum() == (
            box_mask((24, 30), 0, 1 + int(s.id[1:]) % 20, 0, 5).sum()
        )


def test_a_refused_sample_costs_only_itself(sqlite_store, tmp_path, monkeypatch):
    path, _ = _file(tmp_path, 25)
    monkeypatch.setattr(imp, "BATCH", 10)

    sqlite_store.run(  # the database itself refuses one sample
        lambda s: s.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON samples WHEN NEW.external_id = 's013' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the store'); END"
            )
        )
    )
    rep = imp.import_sgdr(sqlite_store, path)
    assert rep.added == 24 and [name for name, _ in rep.errors] == ["s013"]
    assert "refused by the store" in rep.errors[0][1]


@pytest.mark.parametrize("cancel_after", [0, 12])
def test_cancel_writes_what_was_read(sqlite_store, tmp_path, monkeypatch, cancel_after):
    path, _ = _file(tmp_path, 30)
    monkeypatch.setattr(imp, "BATCH", 10)
    seen = []
    rep = imp.import_sgdr(
        sqlite_store,
        path,
        progress=lambda done, total, label: seen.append(done),
        should_cancel=lambda: len(seen) > cancel_after,
    )
    assert rep.cancelled and rep.added == cancel_after + 1
