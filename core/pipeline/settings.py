"""Stage-1 and stage-2 settings with the paper's defaults (§4.2, §4.3, §5.1, App. B), and the
defaults a run starts from for a segmenter (:func:`run_defaults`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from core.evaluator.grouping import GROUP_SIZE
from core.pipeline.candidates import ORIGIN_ORDER as CANDIDATE_ORIGINS

SEED_POLICIES = ("proportional", "one_per_token")
MASK_PROMPTS = ("decoder_lowres", "rebuilt")


@dataclass(frozen=True)
class Stage1Settings:
    """Candidate-discovery parameters. Defaults are the paper's for LLaVA + SAM (App. B);
    :meth:`for_backbone` gives the SAM2 (LENS) ones.

    k1: tokens kept by attention (50). k2: tokens kept after the rerank by mean L (30).
    layers: MLLM layers whose attention is averaged (LLaVA 14–30, LENS 33; ``None`` = the
        prompt model's own default). heads: heads averaged (``None`` = all).
    seed_policy / seeds_total: how seed points are spread over the k2 tokens.
        ``one_per_token`` (default, the paper's reading: "the top-k2 tokens are ... converted into
        seed points", App. B keeps k2 = 30): one seed per token, K = k2, ``seeds_total`` unused.
        ``proportional`` (NOT from the paper; the paper gives no seed budget): ``seeds_total``
        points, at least one per token, the rest in proportion to attention. Either way the
        similarity graph of the semantic step is built over distinct tokens (each token's first
        seed), so several seeds of one patch never form a clique of their own.
        seed: the RNG seed of the in-patch sampling (a run is reproducible).
    tau: cosine threshold of the seed-feature graph (0.8 SAM, 0.7 SAM2).
    delta: logit threshold of the negative point (−15 SAM, −10 SAM2).
    pred_iou_thresh / stability_score_thresh / stability_score_offset / box_nms_thresh: the AMG
        filters (SAM 0.88 / 0.9 / 1.0, SAM2 0.8 / 0.88 / 1.0; box NMS 0.7).
    points_per_batch: seed prompts per decoder batch (speed only).
    top_n: AMG mask budget N (9; with 3 multimask + 3 semantic masks, at most 15 candidates).
    dedupe_iou: ``None`` (default; the paper has no de-duplication): the candidate set is the
        3 multimask + 3 semantic + top-N AMG masks as produced. A number (NOT from the paper): a
        mask with IoU ≥ this with an earlier candidate is dropped, BEFORE the AMG top-N cut, and
        the AMG list is refilled from the masks below the cut, so AMG still gives up to N.
    attention_renorm: renormalise each (layer, head) attention row over the image tokens before
        averaging (NOT from the paper; default False: the raw softmax weights are averaged, the
        closest reading of "attention scores ... aggregated across layers and heads", §4.2).
    layer_base: how ``layers`` count: 0 (default; the transformer's own 0-based block index, as
        LLaVA/LENS code indexes ``model.layers``, so "layers 14 to 30" are blocks 14..30 of 0..31)
        or 1 (the n-th layer counted from 1: 14..30 are blocks 13..29). The paper does not say.
    mask_prompt: what is fed to SAM as the mask prompt L of the semantic step (§4.2: "the previous
        mask logits L as a mask prompt"). ``decoder_lowres`` (default; as LISA/SAM feed masks
        back): the decoder's own low-resolution logits of the initial single-mask decode;
        ``rebuilt`` (not from the paper): a low-res prompt rebuilt from the full-resolution L.
    disabled_origins: candidate origins left out of the candidate set (``multimask``,
        ``semantic``, ``amg``), for the paper's ablations "w/o multimask outputs / semantic masks /
        AMG masks" (§5.3, Table 3) run for real; default none. The steps still run (the trace
        keeps their seeds and graph); only the merge skips them.
    concept_origin: add the ``concept`` origin (NOT from the paper; default False): SAM 3
        prompted with a phrase, every instance it returns plus their union join the candidates
        after the AMG masks (:mod:`core.pipeline.concept`). concept_phrase: the phrase is the
        MLLM's ``answer`` (default; the question's phrase when the answer names nothing) or the
        ``question``'s noun phrase. concept_model: the SAM 3 checkpoint directory (needed when
        ``concept_origin`` is on). concept_max: most SAM 3 instances kept (8; not from the
        paper). concept_threshold: smallest SAM 3 detection score of a returned instance (0.5,
        as ``core.models.sam3_text.THRESHOLD``; not from the paper).
    extra: free-form notes stored with the settings; the pipeline does not read them.
    """

    k1: int = 50
    k2: int = 30
    seeds_total: int = 48
    seed_policy: str = "one_per_token"
    tau: float = 0.8
    delta: float = -15.0
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.9
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    points_per_batch: int = 64
    top_n: int = 9
    dedupe_iou: float | None = None
    layers: tuple[int, ...] | None = tuple(range(14, 31))
    heads: tuple[int, ...] | None = None
    seed: int = 0
    mask_prompt: str = "decoder_lowres"
    attention_renorm: bool = False
    layer_base: int = 0
    disabled_origins: tuple[str, ...] = ()
    concept_origin: bool = False
    concept_phrase: str = "answer"
    concept_model: str = ""
    concept_max: int = 8
    concept_threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.k2 <= self.k1:
            raise ValueError(f"need 1 <= k2 <= k1, got k1={self.k1}, k2={self.k2}")
        if self.layer_base not in (0, 1):
            raise ValueError(f"layer_base must be 0 or 1, got {self.layer_base}")
        if self.layer_base == 1 and self.layers is not None and min(self.layers, default=1) < 1:
            raise ValueError("with layer_base 1 layers count from 1")
        if self.mask_prompt not in MASK_PROMPTS:
            raise ValueError(f"mask_prompt must be one of {MASK_PROMPTS}, got {self.mask_prompt!r}")
        if self.seed_policy not in SEED_POLICIES:
            raise ValueError(
                f"seed_policy must be one of {SEED_POLICIES}, got {self.seed_policy!r}"
            )
        if self.seed_policy == "proportional" and self.seeds_total < self.k2:
            raise ValueError(f"seeds_total ({self.seeds_total}) must be at least k2 ({self.k2})")
        if not -1.0 <= self.tau <= 1.0:
            raise ValueError(f"tau is a cosine threshold in [-1, 1], got {self.tau}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.stability_score_offset < 0:
            raise ValueError(
                f"stability_score_offset must be >= 0, got {self.stability_score_offset}"
            )
        if self.dedupe_iou is not None and not 0.0 < self.dedupe_iou <= 1.0:
            raise ValueError(f"dedupe_iou must be in (0, 1], got {self.dedupe_iou}")
        if self.top_n < 0:
            raise ValueError(f"top_n must be >= 0, got {self.top_n}")
        bad = sorted(set(self.disabled_origins) - set(CANDIDATE_ORIGINS))
        if bad:
            raise ValueError(
                f"disabled_origins: unknown origin(s) {bad}; use {list(CANDIDATE_ORIGINS)}"
            )
        if self.concept_phrase not in ("answer", "question"):
            raise ValueError(
                f"concept_phrase must be 'answer' or 'question', got {self.concept_phrase!r}"
            )
        if not 0.0 <= self.concept_threshold <= 1.0:
            raise ValueError(f"concept_threshold must be in [0, 1], got {self.concept_threshold}")
        if self.concept_max < 1:
            raise ValueError(f"concept_max must be >= 1, got {self.concept_max}")
        if self.points_per_batch < 1:
            raise ValueError(f"points_per_batch must be >= 1, got {self.points_per_batch}")

    @classmethod
    def for_backbone(cls, kind: str, **overrides: Any) -> Stage1Settings:
        """Paper defaults for ``"sam"`` (LLaVA + SAM) or ``"sam2"`` (LENS Qwen2.5-VL + SAM2), App. B,
        with ``overrides`` applied (names as the fields; lists become tuples)."""
        if kind not in BACKBONE_DEFAULTS:
            raise ValueError(f"unknown backbone {kind!r}: use 'sam' or 'sam2'")
        base = replace(cls(), **BACKBONE_DEFAULTS[kind])
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
        return replace(base, **_tuples(overrides))

    def model_layers(self) -> list[int] | None:
        """``layers`` as the model's 0-based block indices (``layer_base`` applied)."""
        return None if self.layers is None else [int(v) - self.layer_base for v in self.layers]

    def amg(self) -> dict[str, Any]:
        """The AMG filter settings as ``SamBackend.amg_from_seeds`` reads them."""
        return {
            "pred_iou_thresh": self.pred_iou_thresh,
            "stability_score_thresh": self.stability_score_thresh,
            "stability_score_offset": self.stability_score_offset,
            "box_nms_thresh": self.box_nms_thresh,
            "points_per_batch": self.points_per_batch,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        d = asdict(self)
        for k in ("layers", "heads", "disabled_origins"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stage1Settings:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
        return cls(**_tuples(d))


# How each backbone's paper defaults differ from the field defaults above (which are SAM's), App. B.
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    "sam": {},
    "sam2": {
        "tau": 0.7,
        "delta": -10.0,
        "pred_iou_thresh": 0.8,
        "stability_score_thresh": 0.88,
        "layers": (33,),
    },
}


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for k in ("layers", "heads"):
        if d.get(k) is not None:
            d[k] = tuple(int(v) for v in d[k])
    if d.get("disabled_origins") is not None:
        v = d["disabled_origins"]
        d["disabled_origins"] = (v,) if isinstance(v, str) else tuple(str(o) for o in v)
    return d


@dataclass(frozen=True)
class Stage2Settings:
    """How stage 2 (§4.3) is run: ``evaluator`` preset name (``None`` = stage 1 only), ``cot``
    (chain of thought before the scores), ``group_size`` (s, masks per evaluator group, 5) and
    ``pad_last`` (pad a short last group with candidates of earlier groups; not from the paper)."""

    evaluator: str | None = None
    cot: bool = True
    group_size: int = GROUP_SIZE
    pad_last: bool = True

    def __post_init__(self) -> None:
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# For random weights the AMG filters are opened and fewer seeds are drawn, so every step still
# produces output to inspect (not from the paper; recorded in the run's stored settings).
RANDOM_WEIGHT_OVERRIDES: dict[str, Any] = {
    "layers": None,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "seeds_total": 12,
    "k1": 12,
    "k2": 8,
}


def run_defaults(sam_kind: str, is_random: bool, **overrides: Any) -> Stage1Settings:
    """The stage-1 settings a new run starts from: the paper defaults for the segmenter's SAM
    (``"sam"`` or ``"sam2"``, App. B) with ``overrides`` applied. For random weights
    :data:`RANDOM_WEIGHT_OVERRIDES` apply first (not from the paper); the run stores the settings
    used. Unknown names or bad values are a ``ValueError``."""
    base = RANDOM_WEIGHT_OVERRIDES if is_random else {}
    return Stage1Settings.for_backbone(sam_kind, **{**base, **overrides})


def preset_default_settings(preset: str, **overrides: Any) -> Stage1Settings:
    """The settings :func:`run_defaults` gives once ``preset`` is loaded, without loading it
    (for showing a preset's defaults)."""
    from core.models.config import preset_spec, preset_stage1

    spec = preset_spec(preset)
    return run_defaults(spec.sam_kind, spec.is_random, **{**preset_stage1(preset), **overrides})
