"""The pipeline trace: one typed object holding every intermediate of a Rea2Seg run.

The GUI draws a :class:`PipelineTrace` and never recomputes pipeline logic. Coordinates are
image pixels of the original image, ``x`` to the right and ``y`` down; boxes are
``xyxy`` with exclusive max. Masks are ``bool`` (H, W) at the original resolution.

Serialisation (:meth:`PipelineTrace.to_dict` / :meth:`PipelineTrace.from_dict`) is plain JSON:
masks as COCO compressed RLE, float arrays as base64 of little-endian ``float32`` (or
``float16`` for the logit map, which is large and only drawn/thresholded).
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from core.masks import MaskError, decode_rle, encode_rle

CandidateOrigin = Literal["multimask", "semantic", "amg", "concept", "initial"]
TRACE_FORMAT_VERSION = 1


def _arr_to_json(arr: np.ndarray | None, dtype: str = "<f4") -> dict[str, Any] | None:
    if arr is None:
        return None
    a = np.ascontiguousarray(np.asarray(arr).astype(dtype))
    return {
        "dtype": dtype,
        "shape": list(a.shape),
        "b64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def _arr_from_json(obj: dict[str, Any] | None) -> np.ndarray | None:
    if obj is None:
        return None
    raw = base64.b64decode(obj["b64"])
    return np.frombuffer(raw, dtype=obj["dtype"]).reshape(obj["shape"]).astype(np.float32)


def logits_to_bytes(logits: np.ndarray) -> bytes:
    """L as the store keeps it beside the trace: zlib-compressed float16 ``.npy`` bytes (the
    same float16 precision the trace JSON uses)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(np.asarray(logits, dtype="<f2")), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 1)


def logits_from_bytes(blob: bytes) -> np.ndarray:
    """Inverse of :func:`logits_to_bytes`: float32 (H, W). Raises ``ValueError`` on bytes that are
    not such an array."""
    try:
        a = np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
    except (zlib.error, OSError, EOFError) as exc:
        raise ValueError(f"stored L map is unreadable ({exc})") from exc
    if a.ndim != 2 or a.dtype.kind != "f":
        raise ValueError(f"stored L map is not a 2-D float array ({a.dtype}, shape {a.shape})")
    return a.astype(np.float32)


@dataclass
class TokenScore:
    """One image token selected from the attention map (§4.2).

    ``index`` is the flat token index on the grid (row-major), ``box_xyxy`` the image-pixel
    region the token covers, ``attention`` the aggregated attention value and ``mean_logit``
    the mean of L inside ``box_xyxy`` (the rerank key; ``None`` before reranking).
    """

    index: int
    row: int
    col: int
    attention: float
    box_xyxy: tuple[float, float, float, float]
    mean_logit: float | None = None


@dataclass
class AttentionTrace:
    """Attention from the prompt token to the image tokens (§4.1–4.2, App. B).

    ``token_map`` is float32 (gh, gw), the mean over ``layers`` and ``heads``;
    ``per_layer`` optionally keeps float32 (n_layers, gh, gw) (mean over heads) for debugging.
    ``token_boxes_xyxy`` is float32 (gh*gw, 4): each token's region in image pixels.
    """

    grid_hw: tuple[int, int]
    token_map: np.ndarray
    token_boxes_xyxy: np.ndarray
    layers: list[int]
    heads: list[int] | None = None
    per_layer: np.ndarray | None = None
    prompt_token: str = ""


@dataclass
class SeedTrace:
    """Top-k1 tokens, their logit rerank, top-k2 tokens and the seed points (§4.2)."""

    k1: int
    k2: int
    topk1: list[TokenScore]
    topk2: list[TokenScore]
    seeds_xy: (
        np.ndarray
    )  # float32 (K, 2): pixel indices (x, y) = (column, row), SAM's point convention
    seed_token: list[int] = field(default_factory=list)  # flat token index of each seed


@dataclass
class FeatureGraphTrace:
    """Cosine graph over seed features, its k-core and the negative point (§4.2).

    ``edges`` are ``(i, j, cosine)`` with ``i < j`` indexing ``SeedTrace.seeds_xy``;
    ``core_members`` index the same seeds; ``k`` is the core number kept.
    ``negative_xy`` is ``argmax{L | L < delta}`` or, when no pixel is below ``delta``,
    ``argmin L`` (``negative_fallback`` is then True), as the pixel index ``(x, y)``.
    Points, like ``SeedTrace.seeds_xy``, are pixel indices as SAM takes them: the pixel's
    centre is at ``(x + 0.5, y + 0.5)`` in continuous image coordinates.
    """

    tau: float
    delta: float
    edges: list[tuple[int, int, float]]
    k: int
    core_members: list[int]
    negative_xy: tuple[float, float]
    negative_logit: float
    negative_fallback: bool


@dataclass
class Candidate:
    """One candidate mask with its origin (§4.2, §5.1).

    ``origin``: ``multimask`` (SAM multimask from the prompt embedding), ``semantic``
    (k-core refinement), ``amg`` (attention-seeded AMG), ``concept`` (SAM 3 prompted with a
    phrase; not from the paper, :mod:`core.pipeline.concept`). ``sam_score`` is SAM's predicted
    IoU; ``stability`` the stability score (``None`` where not computed); ``seed_index`` the
    AMG seed that produced it. ``mask`` is bool (H, W); a candidate read back from RLE
    (:meth:`from_rle`) decodes it on first use, so a trace loads without decoding masks that are
    never looked at.
    """

    id: int
    origin: CandidateOrigin
    origin_rank: int
    mask: np.ndarray
    sam_score: float
    stability: float | None = None
    seed_index: int | None = None
    area: int = 0
    box_xyxy: tuple[int, int, int, int] | None = None

    @classmethod
    def from_rle(cls, rle: dict[str, Any], hw: tuple[int, int], **fields_: Any) -> Candidate:
        """A candidate whose mask is the RLE ``rle`` this program wrote, decoded when first used;
        the RLE's size is checked against ``hw`` now."""
        size = rle.get("size") if isinstance(rle, dict) else None
        if not isinstance(size, list | tuple) or tuple(size) != tuple(hw):
            raise MaskError(f"candidate mask size {size!r} != image size {list(hw)}")
        c = cls(mask=_PENDING, **fields_)
        c.__dict__["_rle"] = rle
        return c


_PENDING = np.zeros((0, 0), bool)  # the placeholder of a mask still in RLE


def _get_mask(c: Candidate) -> np.ndarray:
    m = c.__dict__["_mask"]
    if m is _PENDING:  # two threads may both decode it: the same array either way
        m = decode_rle(c.__dict__["_rle"], validate=False)
        c.__dict__["_mask"] = m
    return m


def _set_mask(c: Candidate, mask: np.ndarray) -> None:
    c.__dict__["_mask"] = mask


Candidate.mask = property(_get_mask, _set_mask)  # type: ignore[assignment, method-assign]


@dataclass
class EvaluatorGroup:
    """One group of candidates as the evaluator saw it (§4.3).

    ``scores`` align with ``candidate_ids``; ``None`` where the model's text gave no score.
    ``padded`` counts padding slots (if any); ``parse_error`` is a plain message or ``None``.
    """

    index: int
    candidate_ids: list[int]
    prompt: str
    raw_text: str
    cot: str | None
    scores: list[float | None]
    parse_error: str | None = None
    padded: int = 0
    seconds: float = 0.0


@dataclass
class EvaluatorTrace:
    """Stage 2: grouping, scores and the final ranking (§4.3).

    ``fell_back_to_initial``: no score of any candidate could be read, so the answer is the
    initial mask M = L > 0 (the segmenter's own prediction), not a candidate.
    ``pad_last``: whether a short last group was padded (:mod:`core.evaluator.grouping`).
    ``prompt_format``: the prompt-format version the evaluator was given
    (:func:`core.evaluator.prompt.prompt_format`). ``image_tiling``: how images were tiled for
    the model (e.g. ``dynamic max 12``, ``single 448``; empty when the backend did not say).
    Fields added after the first trace format have defaults, so older traces still load.
    """

    backend: str
    model_id: str
    is_random: bool
    group_size: int
    shuffle_seed: int
    cot: bool
    groups: list[EvaluatorGroup]
    final_scores: dict[int, float | None]
    ranking: list[int]  # candidate ids, best first
    top_k: int = 3
    fell_back_to_initial: bool = False
    pad_last: bool = True
    prompt_format: str = ""
    image_tiling: str = ""


@dataclass
class PipelineTrace:
    """Everything a run produced for one (image, question)."""

    question: str
    image_hw: tuple[int, int]
    preset: str
    model_ids: dict[str, str]
    is_random: bool
    settings: dict[str, Any]
    initial_logits: np.ndarray | None  # float32 (H, W): L
    initial_mask: np.ndarray | None  # bool (H, W): L > 0
    attention: AttentionTrace | None
    seeds: SeedTrace | None
    graph: FeatureGraphTrace | None
    candidates: list[Candidate]
    evaluator: EvaluatorTrace | None = None
    timings: dict[str, float] = field(default_factory=dict)
    generated_text: str = ""
    sample_id: int | None = None
    # the concept origin (not from the paper): phrase, its source, SAM 3 model, instance scores
    concept: dict[str, Any] | None = None
    format_version: int = TRACE_FORMAT_VERSION

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self, *, with_logits: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (see module docstring for the array encodings); ``with_logits=False``
        writes ``initial_logits`` as null (the store keeps L in its own column)."""
        att = None
        if self.attention is not None:
            a = self.attention
            att = {
                "grid_hw": list(a.grid_hw),
                "token_map": _arr_to_json(a.token_map),
                "token_boxes_xyxy": _arr_to_json(a.token_boxes_xyxy),
                "layers": list(a.layers),
                "heads": None if a.heads is None else list(a.heads),
                "per_layer": _arr_to_json(a.per_layer),
                "prompt_token": a.prompt_token,
            }
        seeds = None
        if self.seeds is not None:
            s = self.seeds
            seeds = {
                "k1": s.k1,
                "k2": s.k2,
                "topk1": [asdict(t) for t in s.topk1],
                "topk2": [asdict(t) for t in s.topk2],
                "seeds_xy": np.asarray(s.seeds_xy, dtype=float).tolist(),
                "seed_token": list(s.seed_token),
            }
        cands = []
        for c in self.candidates:
            d = {f.name: getattr(c, f.name) for f in fields(c) if f.name != "mask"}
            d["mask"] = encode_rle(c.mask)
            cands.append(d)
        return {
            "format_version": self.format_version,
            "sample_id": self.sample_id,
            "question": self.question,
            "image_hw": list(self.image_hw),
            "preset": self.preset,
            "model_ids": dict(self.model_ids),
            "is_random": self.is_random,
            "settings": self.settings,
            "initial_logits": _arr_to_json(self.initial_logits, "<f2") if with_logits else None,
            "initial_mask": None if self.initial_mask is None else encode_rle(self.initial_mask),
            "attention": att,
            "seeds": seeds,
            "graph": None if self.graph is None else asdict(self.graph),
            "candidates": cands,
            "evaluator": None if self.evaluator is None else _evaluator_to_dict(self.evaluator),
            "timings": dict(self.timings),
            "generated_text": self.generated_text,
            **({"concept": self.concept} if self.concept is not None else {}),
        }

    def to_json(self, *, with_logits: bool = True) -> str:
        return json.dumps(self.to_dict(with_logits=with_logits), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, with_logits: bool = True) -> PipelineTrace:
        """Inverse of :meth:`to_dict`. ``with_logits=False`` leaves ``initial_logits`` out (``None``):
        viewers that only draw ``initial_mask`` skip decoding the H × W float map."""
        hw = (int(d["image_hw"][0]), int(d["image_hw"][1]))
        att = None
        if d.get("attention"):
            a = d["attention"]
            att = AttentionTrace(
                grid_hw=(int(a["grid_hw"][0]), int(a["grid_hw"][1])),
                token_map=_arr_from_json(a["token_map"]),
                token_boxes_xyxy=_arr_from_json(a["token_boxes_xyxy"]),
                layers=list(a["layers"]),
                heads=a.get("heads"),
                per_layer=_arr_from_json(a.get("per_layer")),
                prompt_token=a.get("prompt_token", ""),
            )
        seeds = None
        if d.get("seeds"):
            s = d["seeds"]
            seeds = SeedTrace(
                k1=s["k1"],
                k2=s["k2"],
                topk1=[_token(t) for t in s["topk1"]],
                topk2=[_token(t) for t in s["topk2"]],
                seeds_xy=np.asarray(s["seeds_xy"], dtype=np.float32).reshape(-1, 2),
                seed_token=list(s.get("seed_token", [])),
            )
        graph = None
        if d.get("graph"):
            g = dict(d["graph"])
            g["edges"] = [tuple(e) for e in g["edges"]]
            g["negative_xy"] = tuple(g["negative_xy"])
            graph = FeatureGraphTrace(**g)
        cands = []
        for c in d.get("candidates", []):
            c = dict(c)
            if c.get("box_xyxy") is not None:
                c["box_xyxy"] = tuple(c["box_xyxy"])
            cands.append(Candidate.from_rle(c.pop("mask"), hw, **c))
        return cls(
            question=d["question"],
            image_hw=hw,
            preset=d["preset"],
            model_ids=dict(d.get("model_ids", {})),
            is_random=bool(d["is_random"]),
            settings=dict(d.get("settings", {})),
            initial_logits=_arr_from_json(d.get("initial_logits")) if with_logits else None,
            initial_mask=None
            if d.get("initial_mask") is None
            else decode_rle(d["initial_mask"], hw),
            attention=att,
            seeds=seeds,
            graph=graph,
            candidates=cands,
            evaluator=None if d.get("evaluator") is None else _evaluator_from_dict(d["evaluator"]),
            timings=dict(d.get("timings", {})),
            generated_text=d.get("generated_text", ""),
            sample_id=d.get("sample_id"),
            concept=d.get("concept"),
            format_version=int(d.get("format_version", TRACE_FORMAT_VERSION)),
        )

    @classmethod
    def from_json(cls, text: str, *, with_logits: bool = True) -> PipelineTrace:
        return cls.from_dict(json.loads(text), with_logits=with_logits)

    def candidate(self, candidate_id: int) -> Candidate:
        for c in self.candidates:
            if c.id == candidate_id:
                return c
        raise KeyError(f"no candidate {candidate_id} in this trace")


STALE_NOTE = "stale: question edited after this run"


def question_is_stale(asked: str | None, question: str) -> bool:
    """True when a trace computed on question ``asked`` no longer answers the sample's current
    ``question`` (the question was edited after the run); ``False`` without a trace."""
    return asked is not None and asked != question


def _token(t: dict[str, Any]) -> TokenScore:
    t = dict(t)
    t["box_xyxy"] = tuple(t["box_xyxy"])
    return TokenScore(**t)


def _evaluator_to_dict(e: EvaluatorTrace) -> dict[str, Any]:
    d = asdict(e)
    d["final_scores"] = {str(k): v for k, v in e.final_scores.items()}
    return d


def _evaluator_from_dict(d: dict[str, Any]) -> EvaluatorTrace:
    d = dict(d)
    d["groups"] = [EvaluatorGroup(**g) for g in d["groups"]]
    d["final_scores"] = {int(k): v for k, v in d["final_scores"].items()}
    return EvaluatorTrace(**d)
