"""SAM (segment-anything) and SAM2 backends implementing :class:`core.models.base.SamBackend`.

The image embedding is computed once in :meth:`set_image` and reused by every step: the
prompt-embedding decode, point prompts and the seed-point AMG. The AMG runs through the
libraries' own automatic mask generators with ``point_grids`` set to the seeds; their
``generate()`` calls ``predictor.set_image`` on the (single, full-image) crop, so the generator is
given a view of our predictor whose ``set_image`` only checks that the image is the one already
embedded. The result is exactly ``generate()``'s (a test compares them), without a second
encoder pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.models.base import AmgMask, ModelLoadError


class _EmbeddedPredictor:
    """Forwards to a predictor whose image is already set; ``set_image`` is a checked no-op."""

    def __init__(self, predictor: Any, image_shape: tuple[int, ...]) -> None:
        self._p = predictor
        self._shape = image_shape

    def set_image(self, image: np.ndarray, *args: Any, **kwargs: Any) -> None:
        if tuple(image.shape) != self._shape:
            raise RuntimeError("AMG asked for a crop; crops are off for seed-point AMG")

    def reset_image(self) -> None:
        pass

    def reset_predictor(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)


def _seed_index(point_xy: np.ndarray, seeds_xy: np.ndarray) -> int:
    d = np.abs(seeds_xy - np.asarray(point_xy, dtype=np.float64)[None]).sum(axis=1)
    return int(np.argmin(d))


def _seed_amg(generator_cls: Any, model: Any, predictor: Any, image: np.ndarray, seeds_xy: np.ndarray,
              settings: dict[str, Any], defaults: tuple[float, float]) -> list[AmgMask]:
    """The library's automatic mask generator with the seeds as its only point grid, run on the
    predictor whose embedding is already computed. ``defaults``: (pred_iou, stability) thresholds."""
    if len(seeds_xy) == 0:
        return []
    h, w = image.shape[:2]
    seeds = np.asarray(seeds_xy, dtype=np.float64)
    gen = generator_cls(
        model,
        points_per_side=None,
        point_grids=[seeds / np.array([w, h], dtype=np.float64)],
        points_per_batch=int(settings.get("points_per_batch", 64)),
        pred_iou_thresh=float(settings.get("pred_iou_thresh", defaults[0])),
        stability_score_thresh=float(settings.get("stability_score_thresh", defaults[1])),
        stability_score_offset=float(settings.get("stability_score_offset", 1.0)),
        box_nms_thresh=float(settings.get("box_nms_thresh", 0.7)),
        crop_n_layers=0,
        output_mode="binary_mask",
    )
    gen.predictor = _EmbeddedPredictor(predictor, image.shape)
    with torch.inference_mode():
        anns = gen.generate(image)
    return [
        AmgMask(a["segmentation"].astype(bool), float(a["predicted_iou"]), float(a["stability_score"]),
                _seed_index(np.asarray(a["point_coords"][0]), seeds))
        for a in anns
    ]


def _lowres_mask_prompt(logits: np.ndarray, target_len: int, img_size: int) -> np.ndarray:
    """L (H, W) → the decoder's low-res mask input frame (1, s, s), s = img_size / 4.

    SAM's low-res masks live in the padded square of the longest-side resize, downsampled 4×:
    resize L so its longest side is ``target_len * s / img_size``, pad bottom/right with the
    minimum logit (background) to ``s × s``.
    """
    import cv2

    s = img_size // 4
    h, w = logits.shape
    scale = s / max(h, w)
    nh, nw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    small = cv2.resize(logits.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((s, s), float(logits.min()), dtype=np.float32)
    out[:nh, :nw] = small
    return out[None]


class _EmbeddingCache:
    """The image-embedding bookkeeping both backends share: embed once per distinct image."""

    predictor: Any
    embed_calls: int = 0
    _image: np.ndarray | None = None

    def _embed(self, image_rgb: np.ndarray) -> None:
        raise NotImplementedError

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Compute and cache the image embedding; a no-op for the image already embedded."""
        if self._image is not None and self._image.shape == image_rgb.shape and np.array_equal(self._image, image_rgb):
            return
        with torch.inference_mode():
            self._embed(image_rgb)
        self._image = image_rgb.copy()
        self.embed_calls += 1

    def _require(self) -> None:
        if self._image is None:
            raise RuntimeError("call set_image() first")


class SamV1Backend(_EmbeddingCache):
    """segment-anything ``Sam`` (ViT-B/L/H or a tiny test build)."""

    kind = "sam"

    def __init__(self, sam: Any, device: str = "cpu", name: str = "sam", is_random: bool = False) -> None:
        from segment_anything import SamPredictor

        self.sam = sam.to(device).eval()
        self.device = device
        self.name = name
        self.is_random = is_random
        self.predictor = SamPredictor(self.sam)
        self.embed_calls = 0
        self._image: np.ndarray | None = None

    def _embed(self, image_rgb: np.ndarray) -> None:
        self.predictor.set_image(image_rgb, image_format="RGB")

    def image_features(self) -> np.ndarray:
        self._require()
        return self.predictor.features[0].detach().float().cpu().numpy()

    def embedding_xy_scale(self) -> tuple[float, float]:
        self._require()
        h, w = self._image.shape[:2]
        s = self.sam.image_encoder.img_size / max(h, w)
        cell = self.sam.image_encoder.img_size / self.predictor.features.shape[-1]
        return s / cell, s / cell

    # -- prompts -------------------------------------------------------------------------
    def decode_prompt_embedding(self, prompt_embedding: np.ndarray, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        self._require()
        sam = self.sam
        emb = torch.as_tensor(np.asarray(prompt_embedding, dtype=np.float32), device=self.device).reshape(1, -1, sam.prompt_encoder.embed_dim)
        with torch.inference_mode():
            sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse.to(emb.dtype), emb], dim=1)
            low, iou = sam.mask_decoder(
                image_embeddings=self.predictor.features,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            logits = sam.postprocess_masks(low, self.predictor.input_size, self.predictor.original_size)
        return logits[0].float().cpu().numpy(), iou[0].float().cpu().numpy()

    def predict_points(
        self, points_xy: np.ndarray, labels: np.ndarray, mask_logits: np.ndarray | None, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        self._require()
        mask_input = None
        if mask_logits is not None:
            mask_input = _lowres_mask_prompt(mask_logits, self.sam.image_encoder.img_size, self.sam.image_encoder.img_size)
        pts = None if points_xy is None or len(points_xy) == 0 else np.asarray(points_xy, dtype=np.float32)
        lab = None if pts is None else np.asarray(labels, dtype=np.int32)
        with torch.inference_mode():
            logits, iou, _ = self.predictor.predict(
                point_coords=pts, point_labels=lab, mask_input=mask_input, multimask_output=multimask, return_logits=True
            )
        return logits.astype(np.float32), iou.astype(np.float32)

    def amg_from_seeds(self, seeds_xy: np.ndarray, settings: dict[str, Any]) -> list[AmgMask]:
        from segment_anything import SamAutomaticMaskGenerator

        self._require()
        return _seed_amg(SamAutomaticMaskGenerator, self.sam, self.predictor, self._image, seeds_xy, settings, (0.88, 0.9))


class Sam2Backend(_EmbeddingCache):
    """SAM2 image model (``SAM2Base``) through ``SAM2ImagePredictor``."""

    kind = "sam2"

    def __init__(self, model: Any, device: str = "cpu", name: str = "sam2", is_random: bool = False) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model = model.to(device).eval()
        self.device = device
        self.name = name
        self.is_random = is_random
        self.predictor = SAM2ImagePredictor(self.model)
        size = self.model.image_size
        self.predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        self.embed_calls = 0
        self._image: np.ndarray | None = None

    def _embed(self, image_rgb: np.ndarray) -> None:
        self.predictor.set_image(image_rgb)

    def image_features(self) -> np.ndarray:
        self._require()
        return self.predictor._features["image_embed"][0].detach().float().cpu().numpy()

    def embedding_xy_scale(self) -> tuple[float, float]:
        # SAM2 resizes to a square image_size (no aspect-preserving pad)
        self._require()
        h, w = self._image.shape[:2]
        g = self.predictor._features["image_embed"].shape[-1]
        return g / w, g / h

    def decode_prompt_embedding(self, prompt_embedding: np.ndarray, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        self._require()
        m = self.model
        emb = torch.as_tensor(np.asarray(prompt_embedding, dtype=np.float32), device=self.device).reshape(1, -1, m.sam_prompt_encoder.embed_dim)
        with torch.inference_mode():
            sparse, dense = m.sam_prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse.to(emb.dtype), emb], dim=1)
            feats = self.predictor._features
            low, iou, _, _ = m.sam_mask_decoder(
                image_embeddings=feats["image_embed"][0:1],
                image_pe=m.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                repeat_image=False,
                high_res_features=[f[0:1] for f in feats["high_res_feats"]],
            )
            logits = self.predictor._transforms.postprocess_masks(low, self.predictor._orig_hw[-1])
        return logits[0].float().cpu().numpy(), iou[0].float().cpu().numpy()

    def predict_points(
        self, points_xy: np.ndarray, labels: np.ndarray, mask_logits: np.ndarray | None, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        self._require()
        mask_input = None
        if mask_logits is not None:
            s = self.model.image_size // 4
            mask_input = cv2.resize(mask_logits.astype(np.float32), (s, s), interpolation=cv2.INTER_LINEAR)[None]
        pts = None if points_xy is None or len(points_xy) == 0 else np.asarray(points_xy, dtype=np.float32)
        lab = None if pts is None else np.asarray(labels, dtype=np.int32)
        with torch.inference_mode():
            logits, iou, _ = self.predictor.predict(
                point_coords=pts, point_labels=lab, mask_input=mask_input, multimask_output=multimask, return_logits=True
            )
        return logits.astype(np.float32), iou.astype(np.float32)

    def amg_from_seeds(self, seeds_xy: np.ndarray, settings: dict[str, Any]) -> list[AmgMask]:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        self._require()
        return _seed_amg(SAM2AutomaticMaskGenerator, self.model, self.predictor, self._image, seeds_xy, settings, (0.8, 0.88))


def load_sam_backend(kind: str, checkpoint: str | Path | None, *, model_type: str = "vit_h",
                     model_cfg: str | None = None, device: str = "cpu", setting: str = "sam_checkpoint") -> Any:
    """Load a real SAM (``sam_model_registry[model_type]``) or SAM2 (``build_sam2``) checkpoint.

    A missing file raises :class:`ModelLoadError` naming the file and the setting.
    """
    if checkpoint is None or not Path(checkpoint).is_file():
        raise ModelLoadError(f"{kind} checkpoint '{checkpoint}' does not exist (setting {setting})")
    try:
        if kind == "sam":
            from segment_anything import sam_model_registry

            sam = sam_model_registry[model_type](checkpoint=str(checkpoint))
            return SamV1Backend(sam, device, name=f"sam-{model_type}:{Path(checkpoint).name}")
        if kind == "sam2":
            from sam2.build_sam import build_sam2

            model = build_sam2(model_cfg or "configs/sam2.1/sam2.1_hiera_l.yaml", str(checkpoint), device=device)
            return Sam2Backend(model, device, name=f"sam2:{Path(checkpoint).name}")
    except (RuntimeError, KeyError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{kind} checkpoint '{checkpoint}' could not be loaded ({exc}) (setting {setting})") from exc
    raise ModelLoadError(f"unknown SAM kind {kind!r} (setting {setting})")
