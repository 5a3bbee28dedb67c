"""SAM 3 prompted with a text (a GQA short answer, App. D): every instance of the concept as a
bool mask, through transformers' ``Sam3Model`` / ``Sam3Processor``, loaded offline from a local
checkpoint directory.

App. D keeps a GQA sample only when SAM 3 returns exactly one mask for the answer's name; what
counts as "returned" is an instance whose detection score is at least ``threshold`` (0.5; the
paper does not say), its mask the pixels whose probability is at least ``mask_threshold``
(0.5). Masks come back at the image's own resolution.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.models.base import ModelLoadError

THRESHOLD = 0.5
"""Smallest detection score of a returned instance (not from the paper)."""
MASK_THRESHOLD = 0.5
"""Mask probability at which a pixel is in the mask (not from the paper)."""


class Sam3TextSegmenter:
    """A loaded SAM 3 (see module docstring); build it with :func:`load_sam3`. Thread-safe: one
    image at a time."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        name: str,
        *,
        is_random: bool = False,
        device: str = "cpu",
        threshold: float = THRESHOLD,
        mask_threshold: float = MASK_THRESHOLD,
    ) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.name = name
        self.is_random = bool(is_random)
        self.device = device
        self.threshold = float(threshold)
        self.mask_threshold = float(mask_threshold)
        self._lock = threading.Lock()

    def segment(self, image_rgb: np.ndarray, text: str) -> tuple[list[np.ndarray], list[float]]:
        """Instances of ``text`` in ``image_rgb`` (uint8 (H, W, 3)): bool (H, W) masks and their
        detection scores, best first. Empty masks are left out."""
        import cv2
        import torch

        img = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"SAM 3 needs an RGB image of shape (H, W, 3), got {img.shape}")
        h, w = img.shape[:2]
        with self._lock:
            inputs = self.processor(images=img, text=str(text), return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out = self.model(**inputs)
            res = self.processor.post_process_instance_segmentation(
                out,
                threshold=self.threshold,
                mask_threshold=self.mask_threshold,
                target_sizes=[(h, w)],
            )[0]
        masks, scores = [], []
        for m, s in zip(res["masks"], res["scores"], strict=True):
            m = np.asarray(m.detach().cpu().numpy() if hasattr(m, "detach") else m).astype(bool)
            if m.shape != (h, w):
                m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            if m.any():
                masks.append(m)
                scores.append(float(s))
        order = np.argsort(scores)[::-1]
        return [masks[i] for i in order], [scores[i] for i in order]


def load_sam3(
    path: str | Path | None,
    *,
    device: str = "cpu",
    threshold: float = THRESHOLD,
    mask_threshold: float = MASK_THRESHOLD,
    is_random: bool = False,
    setting: str = "--sam3",
) -> Sam3TextSegmenter:
    """Load a SAM 3 checkpoint directory (``config.json``, weights, processor files) offline.
    Raises :class:`ModelLoadError` naming the directory and ``setting`` when it is missing or is
    not a SAM 3 checkpoint."""
    if path is None or str(path).strip() == "":
        raise ModelLoadError(f"no SAM 3 checkpoint directory is set ({setting})")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ModelLoadError(
            f"SAM 3 checkpoint directory '{p}' does not exist or has no config.json ({setting})"
        )
    try:
        from transformers import Sam3Model, Sam3Processor
    except ImportError as exc:  # pragma: no cover - depends on the installed transformers
        raise ModelLoadError(f"this transformers has no SAM 3 ({exc})") from None
    try:
        model = Sam3Model.from_pretrained(p, local_files_only=True)
        processor = Sam3Processor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"'{p}' could not be loaded as a SAM 3 checkpoint ({exc}) ({setting})"
        ) from None
    return Sam3TextSegmenter(
        model,
        processor,
        f"sam3:{p.name}",
        is_random=is_random,
        device=device,
        threshold=threshold,
        mask_threshold=mask_threshold,
    )


TINY_WORDS = ("cat", "dog", "person", "chair", "car", "cup", "ball", "table", "red", "blue")


def build_tiny_sam3(directory: str | Path, seed: int = 0) -> Path:
    """Save a tiny random-init SAM 3 of the real classes (≈ 0.25 M parameters, 112² input, a
    word-level tokenizer over :data:`TINY_WORDS`) with its processor into ``directory``, for
    tests and demos; :func:`load_sam3` loads it like a real checkpoint. Its masks are noise."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import (
        PreTrainedTokenizerFast,
        Sam3Config,
        Sam3ImageProcessor,
        Sam3Model,
        Sam3Processor,
    )

    small = {"num_attention_heads": 2, "intermediate_size": 64, "hidden_size": 32}
    cfg = Sam3Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam3_vit_model",
                **small,
                "num_hidden_layers": 2,
                "image_size": 112,
                "patch_size": 14,
                "window_size": 4,
                "global_attn_indexes": [1],
                "pretrain_image_size": 56,
            },
            "fpn_hidden_size": 32,
            "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
        },
        text_config={
            **small,
            "vocab_size": 100,
            "projection_dim": 32,
            "num_hidden_layers": 1,
            "max_position_embeddings": 32,
            "bos_token_id": 98,
            "eos_token_id": 99,
            "pad_token_id": 0,
        },
        geometry_encoder_config={**small, "num_layers": 1},
        detr_encoder_config={**small, "num_layers": 1},
        detr_decoder_config={**small, "num_layers": 1, "num_queries": 8},
        mask_decoder_config={"hidden_size": 32, "num_attention_heads": 2},
    )
    torch.manual_seed(seed)
    model = Sam3Model(cfg).eval()
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(TINY_WORDS)}}
    vocab.update({"<|startoftext|>": 98, "<|endoftext|>": 99})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 98), ("<|endoftext|>", 99)],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        model_max_length=32,
    )
    proc = Sam3Processor(Sam3ImageProcessor(size={"height": 112, "width": 112}), tok)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d
