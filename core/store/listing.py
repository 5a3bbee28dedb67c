"""The sample list kept current at 100,000 samples: every sample's list row in memory, refreshed by
reading only what changed since the last read.

Every change of a sample's question, status or masks writes a :class:`~core.store.models.Revision`
row (see :mod:`core.store.review`), and samples are added with increasing ids; so "what changed
since the last read" is the samples named by revisions newer than the newest one seen, plus the
samples with an id above the largest one seen. A sample count that does not add up (a sample was
deleted) reads the whole list again.

Revision ids are allocated when a transaction inserts, not when it commits: on PostgreSQL a
transaction holding a lower id can commit after one holding a higher id was already read. Each
refresh therefore reads the last :data:`REVISION_OVERLAP` revisions again and reports only rows
whose values differ from the ones held, so a late commit is picked up on the next refresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store.db import Store
from core.store.models import STATUSES, Revision, Sample

REVISION_OVERLAP = 100  # revisions read again on each refresh (late commits; not from the paper)
ID_CHUNK = 500  # ids per ``IN (…)`` list: far below any backend's parameter limit


class SampleRow(NamedTuple):
    """One sample as the list shows it."""

    id: int
    external_id: str
    category: str
    status: str
    question: str


_COLUMNS = (Sample.id, Sample.external_id, Sample.category, Sample.status, Sample.question)


@dataclass(frozen=True)
class ListingChanges:
    """What one read changed: ``changed`` new or modified rows' ids, ``removed`` ids no longer in
    the store, ``reloaded`` True when the whole list was read (every row may have changed)."""

    changed: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    reloaded: bool = False

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.reloaded)


def chunks(ids: Iterable[int], size: int | None = None) -> Iterator[list[int]]:
    """``ids`` in lists of at most ``size`` (default :data:`ID_CHUNK`; for ``IN (…)`` clauses)."""
    size = size or ID_CHUNK
    batch: list[int] = []
    for i in ids:
        batch.append(i)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def sample_rows(s: Session, ids: Iterable[int] | None = None, after_id: int = 0) -> list[SampleRow]:
    """List rows ordered by id: those of ``ids`` (read in chunks), else every sample above
    ``after_id``."""
    if ids is None:
        return _fetch(s, select(*_COLUMNS).where(Sample.id > after_id).order_by(Sample.id))
    out: list[SampleRow] = []
    for batch in chunks(sorted(set(ids))):
        out += _fetch(s, select(*_COLUMNS).where(Sample.id.in_(batch)).order_by(Sample.id))
    return out


def _fetch(s: Session, q) -> list[SampleRow]:
    """The rows of ``q`` through the driver's cursor: at 100,000 rows SQLAlchemy's own result
    rows cost more than the query. The statement holds integers only, rendered inline."""
    conn = s.connection()
    sql = str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql)
        return list(map(SampleRow._make, cur.fetchall()))
    finally:
        cur.close()


class SampleListing:
    """Every sample's :class:`SampleRow` by id (``rows``, in id order after a load) and the
    number of samples per status, kept current by :meth:`refresh`. Not thread-safe: one owner."""

    def __init__(self) -> None:
        self.rows: dict[int, SampleRow] = {}
        self._by_status: Counter[str] = Counter()
        self._revision = 0  # the newest revision id read
        self._recent: set[int] = set()  # the ids of the last REVISION_OVERLAP revisions read
        self._max_id = 0  # the largest sample id read
        self.loaded = False

    def counts_by_status(self) -> dict[str, int]:
        """{status: n} over every sample (known statuses first, zeros included)."""
        out = {st: 0 for st in STATUSES}
        out.update(self._by_status)
        return out

    def load(self, store: Store) -> ListingChanges:
        """Read every row."""

        def action(s: Session) -> tuple[list[SampleRow], int, set[int]]:
            rev = s.scalar(select(func.max(Revision.id))) or 0
            recent = set(s.scalars(select(Revision.id).where(Revision.id > rev - REVISION_OVERLAP)))
            return sample_rows(s), rev, recent

        rows, rev, recent = store.run(action, write=False)
        self.rows = {r.id: r for r in rows}
        self._by_status = Counter(r.status for r in rows)
        self._revision = rev
        self._recent = recent
        self._max_id = rows[-1].id if rows else 0
        self.loaded = True
        return ListingChanges(reloaded=True)

    def refresh(self, store: Store) -> ListingChanges:
        """Read what changed since the last read (everything on the first call)."""
        if not self.loaded:
            return self.load(store)
        since, max_id, recent = self._revision, self._max_id, self._recent

        def action(s: Session) -> tuple[int, set[int], list[SampleRow]]:
            n = int(s.scalar(select(func.count()).select_from(Sample)) or 0)
            revs = s.execute(
                select(Revision.id, Revision.sample_id).where(
                    Revision.id > max(since - REVISION_OVERLAP, 0)
                )
            ).all()
            touched = {sid for rid, sid in revs if rid not in recent}
            rows = sample_rows(s, after_id=max_id)
            rows += sample_rows(s, ids=touched - {r.id for r in rows})
            return n, {rid for rid, _ in revs}, rows

        n, revs, rows = store.run(action, write=False)
        changed = []
        for r in rows:
            old = self.rows.get(r.id)
            if old != r:
                self._put(r, old)
                changed.append(r.id)
        self._revision = max([self._revision, *revs])
        self._recent = {i for i in revs if i > self._revision - REVISION_OVERLAP}
        if rows:
            self._max_id = max(self._max_id, max(r.id for r in rows))
        if n != len(self.rows):  # deleted samples: read everything again
            return self.load(store)
        return ListingChanges(changed=tuple(sorted(changed)))

    def _put(self, row: SampleRow, old: SampleRow | None) -> None:
        if old is not None:
            self._by_status[old.status] -= 1
        self._by_status[row.status] += 1
        self.rows[row.id] = row
