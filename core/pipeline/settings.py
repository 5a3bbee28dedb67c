"""Stage-1 settings with the paper's defaults (App. B)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class Stage1Settings:
    """Candidate-discovery parameters (§4.2, App. B).

    k1: tokens kept by attention (50). k2: tokens kept after the logit rerank (30).
    seeds_total: seed points spread over the k2 tokens in proportion to attention, at least one
    each (so "regions with higher attention are assigned more seed points").
    tau: cosine threshold of the seed-feature graph (0.8 SAM / 0.7 SAM2).
    delta: logit threshold of the negative point (−15 SAM / −10 SAM2).
    pred_iou_thresh / stability_score_thresh / stability_score_offset / box_nms_thresh: the AMG
    filters (SAM 0.88 / 0.9 / 1.0; SAM2 0.8 / 0.88 / 1.0; NMS 0.7 for both).
    top_n: AMG mask budget (9). dedupe_iou: candidates at least this similar to an earlier one
    are dropped. layers/heads: attention aggregation (``None`` heads = all).
    """

    k1: int = 50
    k2: int = 30
    seeds_total: int = 48
    tau: float = 0.8
    delta: float = -15.0
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.9
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    points_per_batch: int = 64
    top_n: int = 9
    dedupe_iou: float = 0.95
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (1 <= self.k2 <= self.k1):
            raise ValueError(f"need 1 <= k2 <= k1, got k1={self.k1}, k2={self.k2}")
        if self.seeds_total < self.k2:
            raise ValueError(f"seeds_total ({self.seeds_total}) must be at least k2 ({self.k2})")
        if not (-1.0 <= self.tau <= 1.0):
            raise ValueError(f"tau is a cosine threshold in [-1, 1], got {self.tau}")
        if self.top_n < 0:
            raise ValueError("top_n must be >= 0")

    @classmethod
    def for_backbone(cls, kind: str, **overrides: Any) -> Stage1Settings:
        """Paper defaults for ``"sam"`` (LLaVA + SAM) or ``"sam2"`` (LENS + SAM2)."""
        if kind == "sam":
            base = cls(tau=0.8, delta=-15.0, pred_iou_thresh=0.88, stability_score_thresh=0.9, layers=tuple(range(14, 31)))
        elif kind == "sam2":
            base = cls(tau=0.7, delta=-10.0, pred_iou_thresh=0.8, stability_score_thresh=0.88, layers=(33,))
        else:
            raise ValueError(f"unknown backbone {kind!r}")
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("layers", "heads"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stage1Settings:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
        d = dict(d)
        for k in ("layers", "heads"):
            if d.get(k) is not None:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)
