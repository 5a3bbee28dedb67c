"""Claims on targets, so that two ``questions generate`` runs on one store never both pay.

A run claims a target (one row of ``generation_claims``, unique per target and split) just
before asking about it and releases the claim in the transaction that records the answer. A
claim lapses ``lease_s`` seconds after it was taken or last renewed; a live run renews its
claims every ``lease_s / 4`` seconds, so only a crashed (or frozen) run's targets become
claimable again. Claiming also checks, under the claim, that the target has no finished
generation: a run that listed its targets before another finished them does not ask again.

``questions check`` claims samples the same way (``table=QuestionCheckClaim``: one row per
sample and check).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store import Store
from core.store.models import GenerationClaim, QuestionCheckClaim

ClaimTable = type[GenerationClaim] | type[QuestionCheckClaim]
_KEYS = {GenerationClaim: ("target_id", "split"), QuestionCheckClaim: ("sample_id", "check")}


def _where(table: ClaimTable, item_id: int, kind: str) -> tuple:
    item, k = _KEYS[table]
    return getattr(table, item) == item_id, getattr(table, k) == kind


CLAIM_LEASE_S = 120.0
"""Seconds a claim holds without renewal (setting ``claim_lease_s``): how long a crashed run's
targets stay locked. Live runs renew every quarter of it. Not from the paper."""


def new_holder() -> str:
    """A name for this run: host, process id and a random part (≤ 100 characters)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def claim(
    store: Store,
    target_id: int,
    split: str,
    holder: str,
    lease_s: float,
    is_done,  # (Session, target_id) -> bool
    table: ClaimTable = GenerationClaim,
) -> bool:
    """Claim ``target_id`` (a sample's id for :class:`QuestionCheckClaim`) for ``split`` (the
    check's name); False when another live run holds it or it is done."""
    item, kind = _KEYS[table]

    def attempt(s: Session) -> bool:
        now = _now()
        until = now + dt.timedelta(seconds=lease_s)
        row = s.scalar(select(table).where(*_where(table, target_id, split)).with_for_update())
        if row is None:
            s.add(table(**{item: target_id, kind: split}, holder=holder, expires_at=until))
            s.flush()  # PostgreSQL: a concurrent claimer's row makes this fail (unique)
        elif row.holder != holder and row.expires_at > now:
            return False
        else:
            row.holder, row.expires_at = holder, until
            s.flush()
        if is_done(s, target_id):  # finished by another run after this one listed its targets
            s.execute(delete(table).where(*_where(table, target_id, split), table.holder == holder))
            return False
        return True

    try:
        return store.run(attempt)
    except IntegrityError:
        return False


def release(
    s: Session, target_id: int, split: str, holder: str, table: ClaimTable = GenerationClaim
) -> None:
    """Drop this run's claim (call it in the transaction that records the target)."""
    s.execute(delete(table).where(*_where(table, target_id, split), table.holder == holder))


def renew(store: Store, holder: str, lease_s: float, table: ClaimTable = GenerationClaim) -> int:
    """Extend every claim of ``holder`` to ``lease_s`` from now; returns how many."""

    def q(s: Session) -> int:
        res = s.execute(
            update(table)
            .where(table.holder == holder)
            .values(expires_at=_now() + dt.timedelta(seconds=lease_s))
        )
        return int(res.rowcount or 0)

    return store.run(q)


@contextmanager
def renewing(
    store: Store, holder: str, lease_s: float, table: ClaimTable = GenerationClaim
) -> Iterator[None]:
    """Renew ``holder``'s claims every ``lease_s / 4`` seconds while the block runs; drop its
    remaining claims (targets it never recorded) when the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 4):
            try:
                renew(store, holder, lease_s, table)
            except Exception:  # noqa: BLE001 - a busy store: the next beat tries again
                pass

    t = threading.Thread(target=beat, name="claims", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)
        try:
            store.run(lambda s: s.execute(delete(table).where(table.holder == holder)))
        except Exception:  # noqa: BLE001 - the store failed: the claims lapse on their own
            pass
