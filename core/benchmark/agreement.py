"""Agreement between annotators who reviewed the same samples.

Every review decision is kept (:class:`~core.store.models.Review`, one row per decision with
its user); a user's *decision* on a sample is their latest ``accept`` / ``reject`` / ``flag``
(``reopen`` is not a decision). Per category: how many samples two or more users decided, how
many of those all agree, the percent agreement, and Cohen's kappa for each pair of users over
the samples both decided. Samples where the users differ are listed to be resolved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store import Store
from core.store.models import Review, Sample
from core.vocab import DECISIONS


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; ``None`` when chance agreement is
    1 (both raters always gave one same label) or there are no items."""
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if pe >= 1.0:
        return None
    return (po - pe) / (1.0 - pe)


@dataclass(frozen=True)
class Disagreement:
    sample_id: int
    external_id: str
    category: str
    decisions: dict[str, str]  # user → decision


@dataclass
class CategoryAgreement:
    category: str
    n: int = 0  # samples decided by two users or more
    agree: int = 0
    kappa: dict[tuple[str, str], float | None] = field(default_factory=dict)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.agree / self.n if self.n else None


@dataclass
class AgreementReport:
    categories: dict[str, CategoryAgreement]
    overall: CategoryAgreement
    disagreements: list[Disagreement]

    def to_dict(self) -> dict:
        def one(c: CategoryAgreement) -> dict:
            return {
                "n": c.n,
                "agree": c.agree,
                "percent": c.percent,
                "kappa": {f"{u}|{v}": k for (u, v), k in sorted(c.kappa.items())},
            }

        return {
            "per_category": {k: one(v) for k, v in sorted(self.categories.items())},
            "overall": one(self.overall),
            "disagreements": [
                {
                    "sample_id": d.sample_id,
                    "external_id": d.external_id,
                    "category": d.category,
                    "decisions": d.decisions,
                }
                for d in self.disagreements
            ],
        }


def latest_decisions(s: Session, users: set[str] | None = None) -> dict[int, dict[str, str]]:
    """{sample id: {user: latest decision}} over every review decision in the store."""
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for sid, user, decision in s.execute(
        select(Review.sample_id, Review.user, Review.decision).order_by(Review.id)
    ):
        if decision in DECISIONS and (not users or user in users):
            out[sid][user] = decision
    return out


def _fill(c: CategoryAgreement, items: list[tuple[int, dict[str, str]]]) -> None:
    multi = [(sid, d) for sid, d in items if len(d) >= 2]
    c.n = len(multi)
    c.agree = sum(len(set(d.values())) == 1 for _, d in multi)
    users = sorted({u for _, d in multi for u in d})
    for u, v in combinations(users, 2):
        both = [d for _, d in multi if u in d and v in d]
        if both:
            c.kappa[(u, v)] = cohen_kappa([d[u] for d in both], [d[v] for d in both])


def agreement(store: Store, *, users: list[str] | None = None) -> AgreementReport:
    """Agreement per sample category (``users`` restricts to those annotators)."""

    def q(s: Session) -> tuple[dict[int, dict[str, str]], dict[int, tuple[str, str]]]:
        dec = latest_decisions(s, set(users) if users else None)
        meta = {
            sid: (ext, cat)
            for sid, ext, cat in s.execute(
                select(Sample.id, Sample.external_id, Sample.category).where(
                    Sample.id.in_(list(dec))
                )
            )
        }
        return dec, meta

    dec, meta = store.run(q, write=False)
    by_cat: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
    for sid, d in sorted(dec.items()):
        by_cat[meta[sid][1]].append((sid, d))
    cats = {}
    for cat, items in by_cat.items():
        cats[cat] = CategoryAgreement(cat)
        _fill(cats[cat], items)
    overall = CategoryAgreement("overall")
    _fill(overall, sorted(dec.items()))
    dis = [
        Disagreement(sid, meta[sid][0], meta[sid][1], dict(sorted(d.items())))
        for sid, d in sorted(dec.items())
        if len(d) >= 2 and len(set(d.values())) > 1
    ]
    return AgreementReport({k: v for k, v in cats.items() if v.n}, overall, dis)
