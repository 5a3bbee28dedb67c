"""The sample listing: a refresh reads only what changed, and ends equal to a fresh read."""

from __future__ import annotations

from sqlalchemy import delete

from core.store import review
from core.store.listing import SampleListing, chunks, sample_rows
from core.store.models import Sample
from tests.big_store import fill_store


def _fresh(store) -> dict:
    return {r.id: r for r in store.run(sample_rows, write=False)}


def test_refresh_reads_decisions_edits_and_new_samples(filled_store, tmp_path):
    listing = SampleListing()
    assert listing.refresh(filled_store).reloaded and listing.rows == _fresh(filled_store)
    before = listing.counts_by_status()
    assert sum(before.values()) == 4
    ids = sorted(listing.rows)
    for sid in ids[1:3]:
        review.decide(filled_store, sid, "reopen", user="ann")
    listing.refresh(filled_store)
    pending, verified = (listing.counts_by_status()[k] for k in ("pending", "verified"))
    assert not listing.refresh(filled_store)  # nothing changed: nothing reported
    review.decide(filled_store, ids[1], "accept", user="ann")
    review.edit_question(filled_store, ids[2], "Which one is it now?", user="ann")
    ch = listing.refresh(filled_store)
    assert ch.changed == (ids[1], ids[2]) and not ch.reloaded
    assert listing.rows[ids[1]].status == "verified"
    assert listing.rows[ids[2]].question == "Which one is it now?"
    assert listing.counts_by_status()["verified"] == verified + 1
    assert listing.counts_by_status()["pending"] == pending - 1
    review.undo(filled_store, ids[1], user="ann")
    assert listing.refresh(filled_store).changed == (ids[1],)
    assert listing.counts_by_status()["verified"] == verified
    new = fill_store(filled_store, tmp_path / "img", 30)
    ch = listing.refresh(filled_store)
    assert ch.changed == tuple(new) and listing.rows == _fresh(filled_store)
    assert list(listing.rows) == sorted(listing.rows)  # id order, as the list starts


def test_a_deleted_sample_reads_everything_again(filled_store):
    listing = SampleListing()
    listing.load(filled_store)
    gone = min(listing.rows)

    filled_store.run(lambda s: s.execute(delete(Sample).where(Sample.id == gone)))
    assert listing.refresh(filled_store).reloaded and gone not in listing.rows
    assert listing.rows == _fresh(filled_store)


def test_a_refresh_reads_changed_rows_in_chunks(filled_store, tmp_path, monkeypatch):
    from core.store import listing as listing_mod

    fill_store(filled_store, tmp_path / "img", 40)
    listing = SampleListing()
    listing.load(filled_store)
    ids = list(listing.rows)[:25]
    expected = tuple(sid for sid in ids if listing.rows[sid].status != "flagged")
    for sid in ids:
        review.decide(filled_store, sid, "flag", user="ann", note="n")
    monkeypatch.setattr(listing_mod, "ID_CHUNK", 7)  # IN lists of 7 ids
    assert listing.refresh(filled_store).changed == expected and len(expected) > 20
    assert listing.rows == _fresh(filled_store)
    assert [len(c) for c in chunks(range(25), 7)] == [7, 7, 7, 4]
