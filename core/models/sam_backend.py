"""SAM (segment-anything) and SAM2 backends implementing :class:`core.models.base.SamBackend`.

Call order, as in the libraries' predictors: :meth:`set_image` first (it computes the image
embedding, once per distinct image), then any number of prompt decodes, point prompts and
seed-point AMG runs, all reusing that embedding.

Point coordinates are SAM's: ``(x, y)`` in original-image pixels, ``x`` right and ``y`` down,
where the integer point ``(c, r)`` stands for the centre of pixel column ``c``, row ``r`` (the
prompt encoders add the half pixel themselves). Logits come back at the original resolution.

Seed-point AMG (§4.2) runs through the libraries' own automatic mask generators with
``point_grids`` set to the seeds. Their ``generate()`` calls ``predictor.set_image`` for the
(single, full-image) crop and resets it afterwards; here the generator gets a view of our
predictor whose ``set_image`` only checks that it is handed the image already embedded and whose
reset is a no-op, so ``generate()`` runs unchanged on the cached embedding. The output is exactly
``generate()``'s on a fresh generator (tests compare them) without a second encoder pass.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.models.base import AmgMask, ModelLoadError
from core.models.config import SAM2_DEFAULT_CONFIG


class _EmbeddedPredictor:
    """A predictor whose image is already set: ``set_image`` checks the image, resets do nothing."""

    def __init__(self, predictor: Any, image: np.ndarray) -> None:
        self._p = predictor
        self._image = image

    def set_image(self, image: np.ndarray, *args: Any, **kwargs: Any) -> None:
        if image.shape != self._image.shape or not np.array_equal(image, self._image):
            raise RuntimeError(
                "seed-point AMG asked for a different image or a crop (crops are off)"
            )

    # the generators reset their predictor after each crop (SAM: reset_image, SAM2:
    # reset_predictor); the cached embedding must survive that
    def reset_image(self) -> None:
        pass

    def reset_predictor(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)


def _seed_index(point_xy: np.ndarray, seeds_xy: np.ndarray) -> int:
    """Index of the seed a generator point came from (the first on exact duplicates)."""
    d = np.abs(seeds_xy - np.asarray(point_xy, dtype=np.float64)[None]).sum(axis=1)
    return int(np.argmin(d))


# The generator arguments a settings dict may set (the paper's values live in Stage1Settings).
AMG_KEYS = (
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "box_nms_thresh",
    "points_per_batch",
)


def _seed_amg(
    generator_cls: Any,
    model: Any,
    predictor: Any,
    image: np.ndarray,
    seeds_xy: np.ndarray,
    settings: dict[str, Any],
) -> list[AmgMask]:
    """The library generator with the seeds as its only point grid, on the embedded predictor.

    ``settings`` keys are the generator's own argument names (:data:`AMG_KEYS`); a key left out
    takes the generator's own default. The pipeline always passes all of them
    (:meth:`core.pipeline.settings.Stage1Settings.amg`, the one source of the paper's values)."""
    unknown = set(settings) - set(AMG_KEYS)
    if unknown:
        raise ValueError(f"unknown AMG settings: {sorted(unknown)}; use {list(AMG_KEYS)}")
    seeds = np.asarray(seeds_xy, dtype=np.float64).reshape(-1, 2)
    if len(seeds) == 0:
        return []
    h, w = image.shape[:2]
    gen = generator_cls(
        model,
        points_per_side=None,
        point_grids=[seeds / np.array([w, h], dtype=np.float64)],
        crop_n_layers=0,
        min_mask_region_area=0,
        output_mode="binary_mask",
        **{k: int(v) if k == "points_per_batch" else float(v) for k, v in settings.items()},
    )
    gen.predictor = _EmbeddedPredictor(predictor, image)
    with torch.inference_mode():
        anns = gen.generate(image)
    # batched_nms keeps masks in decreasing predicted IoU: best first
    return [
        AmgMask(
            mask=np.asarray(a["segmentation"], dtype=bool),
            predicted_iou=float(a["predicted_iou"]),
            stability=float(a["stability_score"]),
            seed_index=_seed_index(np.asarray(a["point_coords"][0]), seeds),
        )
        for a in anns
    ]


def sam_lowres_mask_prompt(logits: np.ndarray, img_size: int = 1024) -> np.ndarray:
    """L (H, W) → SAM's low-res mask prompt, float32 (1, img_size/4, img_size/4).

    The inverse of ``Sam.postprocess_masks`` (which upsamples the 256² low-res mask to the
    1024² padded input, crops the resized image and resizes to the original size), done the way
    ``SamPredictor.set_image`` treats the image:

    1. resize L bilinearly to ``(newh, neww)`` = longest side ``img_size`` (the same
       ``ResizeLongestSide.get_preprocess_shape`` rounding as the image);
    2. pad bottom/right to ``img_size × img_size`` with ``min(min L, 0)`` (background: the padding
       is outside the image);
    3. downsample 4× by averaging each 4×4 block.
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    L = np.asarray(logits, dtype=np.float32)
    if L.ndim != 2:
        raise ValueError(f"mask logits must be (H, W), got {L.shape}")
    newh, neww = ResizeLongestSide.get_preprocess_shape(L.shape[0], L.shape[1], img_size)
    t = torch.from_numpy(np.ascontiguousarray(L))[None, None]
    t = F.interpolate(
        t, (newh, neww), mode="bilinear", align_corners=False, antialias=newh < L.shape[0]
    )
    pad = min(float(L.min()), 0.0)
    t = F.pad(t, (0, img_size - neww, 0, img_size - newh), value=pad)
    return F.avg_pool2d(t, 4)[0].numpy().astype(np.float32)


def sam2_lowres_mask_prompt(logits: np.ndarray, image_size: int = 1024) -> np.ndarray:
    """L (H, W) → SAM2's low-res mask prompt, float32 (1, image_size/4, image_size/4).

    SAM2 stretches the image to a square (no padding) and ``postprocess_masks`` resizes the
    low-res mask straight to (H, W); the inverse is one bilinear resize of L to the low-res
    square (antialiased when shrinking).
    """
    L = np.asarray(logits, dtype=np.float32)
    if L.ndim != 2:
        raise ValueError(f"mask logits must be (H, W), got {L.shape}")
    s = image_size // 4
    t = torch.from_numpy(np.ascontiguousarray(L))[None, None]
    t = F.interpolate(t, (s, s), mode="bilinear", align_corners=False, antialias=max(L.shape) > s)
    return t[0].numpy().astype(np.float32)


def _lowres_or(mask_logits: np.ndarray, rebuild: Any, size: int) -> np.ndarray:
    """A (1, s, s) low-res mask prompt as it is; an (H, W) logit map rebuilt by ``rebuild``."""
    m = np.asarray(mask_logits, dtype=np.float32)
    if m.ndim == 3:
        if m.shape != (1, size // 4, size // 4):
            raise ValueError(
                f"low-res mask prompt must be (1, {size // 4}, {size // 4}), got {m.shape}"
            )
        return m
    return rebuild(m, size)


def _points(
    points_xy: np.ndarray | None, labels: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if points_xy is None or len(points_xy) == 0:
        return None, None
    pts = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
    lab = np.asarray(labels, dtype=np.int32).reshape(-1)
    if len(lab) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(lab)} labels")
    return pts, lab


def _box(box_xyxy: Any) -> np.ndarray | None:
    """A box prompt ``(x0, y0, x1, y1)`` in original-image pixels → float32 (4,), checked."""
    if box_xyxy is None:
        return None
    try:
        box = np.asarray(box_xyxy, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be four numbers (x0, y0, x1, y1), got {box_xyxy!r}") from exc
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f"box must be four finite numbers (x0, y0, x1, y1), got {box_xyxy!r}")
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"box must have x0 <= x1 and y0 <= y1, got {tuple(float(v) for v in box)}")
    return box


class _EmbeddingCache:
    """Embed once per distinct image; ``embed_calls`` counts the encoder passes so far (the cache at
    work: one per distinct image however many decodes follow)."""

    kind: str
    predictor: Any

    def __init__(self, device: str, name: str, is_random: bool) -> None:
        self.device = device
        self.name = name
        self.is_random = is_random
        self.embed_calls = 0
        self._image: np.ndarray | None = None

    def _embed(self, image_rgb: np.ndarray) -> None:
        raise NotImplementedError

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Compute and cache the embedding of uint8 (H, W, 3) RGB; a no-op for the image already set."""
        img = np.asarray(image_rgb)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {img.dtype} {img.shape}")
        if (
            self._image is not None
            and self._image.shape == img.shape
            and np.array_equal(self._image, img)
        ):
            return
        self._image = None
        with torch.inference_mode():
            self._embed(img)
        self._image = img.copy()
        self.embed_calls += 1

    def reset_image(self) -> None:
        """Forget the cached embedding (the next :meth:`set_image` computes it again)."""
        self._image = None

    def _predict(
        self,
        points_xy: np.ndarray,
        labels: np.ndarray,
        mask_input: np.ndarray | None,
        multimask: bool,
        box: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The predictor's decode on the cached embedding → float32 logits (M, H, W), IoU (M,)."""
        pts, lab = _points(points_xy, labels)
        with torch.inference_mode():
            logits, iou, _ = self.predictor.predict(
                point_coords=pts,
                point_labels=lab,
                box=box,
                mask_input=mask_input,
                multimask_output=multimask,
                return_logits=True,
            )
        return logits.astype(np.float32), iou.astype(np.float32)

    def _require(self) -> np.ndarray:
        if self._image is None:
            raise RuntimeError("call set_image() first")
        return self._image


class SamV1Backend(_EmbeddingCache):
    """segment-anything ``Sam`` (ViT-B/L/H or a tiny build) through ``SamPredictor``.

    ``image_features()`` is float32 (256, img_size/16, img_size/16) and covers the padded square
    of the longest-side resize (the image sits in its top-left corner).
    """

    kind = "sam"

    def __init__(
        self, sam: Any, device: str = "cpu", name: str = "sam", is_random: bool = False
    ) -> None:
        from segment_anything import SamPredictor

        super().__init__(device, name, is_random)
        self.sam = sam.to(device).eval()
        self.predictor = SamPredictor(self.sam)

    @property
    def img_size(self) -> int:
        return int(self.sam.image_encoder.img_size)

    def _embed(self, image_rgb: np.ndarray) -> None:
        self.predictor.set_image(image_rgb, image_format="RGB")

    def image_features(self) -> np.ndarray:
        self._require()
        return self.predictor.features[0].detach().float().cpu().numpy()

    def embedding_xy_scale(self) -> tuple[float, float]:
        """Pixel → embedding cell: ``x * neww / W / 16`` (likewise ``y``), the predictor's exact resize."""
        img = self._require()
        h, w = img.shape[:2]
        newh, neww = self.predictor.input_size
        cell = self.img_size / self.predictor.features.shape[-1]
        return neww / w / cell, newh / h / cell

    def decode_prompt_embedding(
        self, prompt_embedding: np.ndarray, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse prompt tokens float (n, 256) straight into the mask decoder, as LISA does.

        The prompt encoder runs with no points, boxes or masks (empty sparse tokens, the
        no-mask dense embedding) and the given tokens become the sparse prompt embeddings.
        Returns, as ``SamPredictor.predict`` does, logits float32 (M, H, W) at the original
        resolution (``postprocess_masks``), predicted IoU float32 (M,) and the decoder's own
        low-resolution logits float32 (M, img_size/4, img_size/4) (what is fed back as a mask
        prompt); M = 3 with ``multimask`` else 1.
        """
        self._require()
        sam = self.sam
        dtype = next(sam.mask_decoder.parameters()).dtype
        emb = torch.as_tensor(np.asarray(prompt_embedding, dtype=np.float32), device=self.device)
        emb = emb.reshape(1, -1, sam.prompt_encoder.embed_dim).to(dtype)
        with torch.inference_mode():
            sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse.to(dtype), emb], dim=1)
            low, iou = sam.mask_decoder(
                image_embeddings=self.predictor.features,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            logits = sam.postprocess_masks(
                low.float(), self.predictor.input_size, self.predictor.original_size
            )
        return (
            logits[0].cpu().numpy().astype(np.float32),
            iou[0].float().cpu().numpy(),
            low[0].float().cpu().numpy().astype(np.float32),
        )

    def predict_points(
        self,
        points_xy: np.ndarray | None,
        labels: np.ndarray | None,
        mask_logits: np.ndarray | None,
        multimask: bool,
        *,
        box_xyxy: np.ndarray | tuple[float, float, float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points float (N, 2) with labels (N,) (1 fg, 0 bg), an optional box ``box_xyxy``
        ``(x0, y0, x1, y1)`` in original-image pixels (alone or with the points, as
        ``SamPredictor.predict(box=...)``) and an optional (H, W) logit map as mask prompt
        (converted by :func:`sam_lowres_mask_prompt`) → logits (M, H, W), IoU (M,).
        A (1, s, s) ``mask_logits`` is taken as SAM's low-res mask prompt as it is (the decoder's
        own low-res output, as LISA/SAM feed it back)."""
        self._require()
        mask_input = (
            None
            if mask_logits is None
            else _lowres_or(mask_logits, sam_lowres_mask_prompt, self.img_size)
        )
        return self._predict(points_xy, labels, mask_input, multimask, _box(box_xyxy))

    def amg_from_seeds(self, seeds_xy: np.ndarray, settings: dict[str, Any]) -> list[AmgMask]:
        """``SamAutomaticMaskGenerator(points_per_side=None, point_grids=[seeds / (W, H)])`` on the
        cached embedding; settings keys as the generator's (:data:`AMG_KEYS`)."""
        from segment_anything import SamAutomaticMaskGenerator

        image = self._require()
        return _seed_amg(
            SamAutomaticMaskGenerator, self.sam, self.predictor, image, seeds_xy, settings
        )


class Sam2Backend(_EmbeddingCache):
    """SAM2 image model (``SAM2Base``) through ``SAM2ImagePredictor``.

    SAM2 stretches the image to a square ``image_size``; ``image_features()`` is float32
    (256, image_size/16, image_size/16) covering the whole image.
    """

    kind = "sam2"

    def __init__(
        self, model: Any, device: str = "cpu", name: str = "sam2", is_random: bool = False
    ) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        super().__init__(device, name, is_random)
        self.model = model.to(device).eval()
        self.predictor = SAM2ImagePredictor(self.model)
        self.predictor._bb_feat_sizes = self.feat_sizes(self.model.image_size)

    @staticmethod
    def feat_sizes(image_size: int) -> list[tuple[int, int]]:
        """The backbone feature sizes the predictor needs for ``image_size`` (s/4, s/8, s/16)."""
        return [(image_size // d, image_size // d) for d in (4, 8, 16)]

    def _embed(self, image_rgb: np.ndarray) -> None:
        self.predictor.set_image(image_rgb)

    def image_features(self) -> np.ndarray:
        self._require()
        return self.predictor._features["image_embed"][0].detach().float().cpu().numpy()

    def embedding_xy_scale(self) -> tuple[float, float]:
        """Pixel → embedding cell: ``x * G / W``, ``y * G / H`` (the square stretch)."""
        img = self._require()
        h, w = img.shape[:2]
        g = self.predictor._features["image_embed"].shape[-1]
        return g / w, g / h

    def decode_prompt_embedding(
        self, prompt_embedding: np.ndarray, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`SamV1Backend.decode_prompt_embedding`, with SAM2's high-resolution features
        (low-res logits (M, image_size/4, image_size/4))."""
        self._require()
        m = self.model
        dtype = next(m.sam_mask_decoder.parameters()).dtype
        emb = torch.as_tensor(np.asarray(prompt_embedding, dtype=np.float32), device=self.device)
        emb = emb.reshape(1, -1, m.sam_prompt_encoder.embed_dim).to(dtype)
        feats = self.predictor._features
        with torch.inference_mode():
            sparse, dense = m.sam_prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse.to(dtype), emb], dim=1)
            low, iou, _, _ = m.sam_mask_decoder(
                image_embeddings=feats["image_embed"][0:1],
                image_pe=m.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                repeat_image=False,
                high_res_features=[f[0:1] for f in feats["high_res_feats"]],
            )
            logits = self.predictor._transforms.postprocess_masks(
                low.float(), self.predictor._orig_hw[-1]
            )
        return (
            logits[0].cpu().numpy().astype(np.float32),
            iou[0].float().cpu().numpy(),
            low[0].float().cpu().numpy().astype(np.float32),
        )

    def predict_points(
        self,
        points_xy: np.ndarray | None,
        labels: np.ndarray | None,
        mask_logits: np.ndarray | None,
        multimask: bool,
        *,
        box_xyxy: np.ndarray | tuple[float, float, float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`SamV1Backend.predict_points` (box as ``SAM2ImagePredictor.predict(box=...)``,
        pixel coordinates); the mask prompt via :func:`sam2_lowres_mask_prompt`."""
        self._require()
        mask_input = (
            None
            if mask_logits is None
            else _lowres_or(mask_logits, sam2_lowres_mask_prompt, self.model.image_size)
        )
        return self._predict(points_xy, labels, mask_input, multimask, _box(box_xyxy))

    def amg_from_seeds(self, seeds_xy: np.ndarray, settings: dict[str, Any]) -> list[AmgMask]:
        """``SAM2AutomaticMaskGenerator`` with the seeds as its point grid, on the cached embedding
        (settings keys as :meth:`SamV1Backend.amg_from_seeds`)."""
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        image = self._require()
        return _seed_amg(
            SAM2AutomaticMaskGenerator, self.model, self.predictor, image, seeds_xy, settings
        )


def _read_checkpoint(path: Path) -> Any:
    """The checkpoint's contents (memory-mapped when the file is in torch's zip format)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def load_sam_backend(
    kind: str,
    checkpoint: str | Path | None,
    model_cfg: str | None = None,
    device: str = "cpu",
    *,
    model_type: str = "vit_h",
    setting: str | None = None,
    name: str | None = None,
) -> SamV1Backend | Sam2Backend:
    """Load a SAM or SAM2 checkpoint from a local file into a backend.

    kind ``"sam"``: ``sam_model_registry[model_type]`` (``vit_h``/``vit_l``/``vit_b``) with the
    file's state dict. kind ``"sam2"``: ``build_sam2(model_cfg, checkpoint, device)`` with
    ``model_cfg`` a sam2 config name (default ``configs/sam2.1/sam2.1_hiera_l.yaml``). Files
    written by :mod:`core.models.tiny_sam` are recognised and built with their tiny architecture
    through the same path; such backends are ``is_random``, except a small SAM trained by
    ``rea2seg train sam`` (its record says ``trained``).

    Errors are :class:`ModelLoadError` naming the file and ``setting`` (the config key the path
    came from): a missing file, an unknown ``model_type``/``model_cfg``, or weights that do not fit.
    """
    setting = setting or f"{kind}_checkpoint"
    if kind not in ("sam", "sam2"):
        raise ModelLoadError(f"unknown SAM kind {kind!r}: use 'sam' or 'sam2' (setting {setting})")
    if checkpoint is None or str(checkpoint).strip() == "":
        raise ModelLoadError(f"no {kind} checkpoint is set (setting {setting})")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"{kind} checkpoint '{checkpoint}' does not exist (setting {setting})")
    from core.models.tiny_sam import TINY_KEY

    try:
        content = _read_checkpoint(path)
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"{kind} checkpoint '{path}' is not a torch checkpoint ({reason}) (setting {setting})"
        ) from exc
    tiny = content.get(TINY_KEY) if isinstance(content, dict) else None
    try:
        if kind == "sam":
            return _load_sam_v1(path, content, tiny, model_type, device, setting, name)
        del content
        return _load_sam2(path, tiny, model_cfg, device, setting, name)
    except ModelLoadError:
        raise
    except (RuntimeError, KeyError, OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{kind} checkpoint '{path}' could not be loaded: {exc} (setting {setting})"
        ) from exc


def _load_sam_v1(
    path: Path,
    state: Any,
    tiny: dict[str, Any] | None,
    model_type: str,
    device: str,
    setting: str,
    name: str | None,
) -> SamV1Backend:
    if tiny is not None:
        from core.models.tiny_sam import load_tiny_sam

        sam = load_tiny_sam(path)
        if tiny.get("trained"):  # a small SAM trained by rea2seg train sam
            return SamV1Backend(sam, device, name=name or f"sam-small-trained:{path.name}")
        return SamV1Backend(
            sam, device, name=name or f"sam-tiny-random:{path.name}", is_random=True
        )
    from segment_anything import sam_model_registry

    if model_type not in sam_model_registry or model_type == "default":
        raise ModelLoadError(
            f"unknown SAM model type {model_type!r}: use vit_h, vit_l or vit_b "
            f"(setting sam_model_type, for '{path}')"
        )
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(f"sam checkpoint '{path}' holds no state dict (setting {setting})")
    sam = sam_model_registry[model_type]()
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"sam checkpoint '{path}' does not fit SAM {model_type} (is sam_model_type right?): "
            f"{str(exc).splitlines()[0]} (setting {setting})"
        ) from exc
    return SamV1Backend(sam, device, name=name or f"sam-{model_type}:{path.name}")


def _load_sam2(
    path: Path,
    tiny: dict[str, Any] | None,
    model_cfg: str | None,
    device: str,
    setting: str,
    name: str | None,
) -> Sam2Backend:
    from hydra.errors import HydraException
    from sam2.build_sam import build_sam2

    cfg = (tiny or {}).get("config") or model_cfg or SAM2_DEFAULT_CONFIG
    overrides = list((tiny or {}).get("overrides", []))
    try:
        model = build_sam2(cfg, str(path), device=device, hydra_overrides_extra=overrides)
    except HydraException as exc:
        raise ModelLoadError(
            f"SAM2 config {cfg!r} could not be used: {str(exc).splitlines()[0]} "
            f"(setting sam2_config, for '{path}')"
        ) from exc
    except RuntimeError as exc:  # build_sam2 logs the key lists and raises a bare RuntimeError
        raise ModelLoadError(
            f"sam2 checkpoint '{path}' does not fit the config {cfg!r} "
            f"(setting {setting}; is sam2_config right?)"
        ) from exc
    if tiny is not None:
        return Sam2Backend(
            model, device, name=name or f"sam2-tiny-random:{path.name}", is_random=True
        )
    return Sam2Backend(model, device, name=name or f"sam2:{Path(cfg).stem}:{path.name}")
