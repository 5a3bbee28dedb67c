"""Tiny random-init SAM / SAM2 of the real architecture classes (tests, ``tiny-random`` presets).

The builds are deterministic (the weights depend only on ``seed``; the global torch RNG is left
as it was). Their output is noise and is always labelled random.

Checkpoint files written here hold ``{"model": state_dict, "rea2seg_tiny": {...}}``: the
state dict in the layout the real loaders read (SAM2's ``build_sam2`` reads ``["model"]``) plus
the few architecture numbers a tiny build needs. ``rea2seg train sam`` writes the same format for
the small SAM it trains, with its architecture numbers (``"arch"``) and ``"trained": true``;
such a file is not random. :func:`core.models.sam_backend.load_sam_backend`
recognises that key and loads such a file through the same code path as a released checkpoint.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch

TINY_KEY = "rea2seg_tiny"
SAM2_TINY_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def sam2_tiny_overrides(image_size: int = 256) -> list[str]:
    """Hydra overrides that shrink the Hiera-T SAM2 config to ≈7M parameters.

    Global-attention blocks must not sit where Hiera downsamples, hence stages [1, 1, 2, 1] with
    the global block at index 3. ``image_size`` must be a multiple of 32 (the Hiera stride).
    """
    if image_size % 32:
        raise ValueError(f"SAM2 image_size must be a multiple of 32, got {image_size}")
    return [
        "++model.image_encoder.trunk.embed_dim=8",
        "++model.image_encoder.trunk.num_heads=1",
        "++model.image_encoder.trunk.stages=[1,1,2,1]",
        "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
        "++model.memory_attention.num_layers=1",
        f"++model.image_size={image_size}",
    ]


# The architecture numbers of a small segment-anything SAM (``_sam_v1``); files written by
# ``rea2seg train sam`` record theirs under ``[TINY_KEY]["arch"]``, tiny random builds use these.
TINY_ARCH: dict[str, Any] = {
    "embed_dim": 64,
    "depth": 2,
    "num_heads": 2,
    "window_size": 4,
    "global_attn_indexes": [1],
    "prompt_dim": 256,
    "decoder_depth": 2,
    "decoder_mlp_dim": 512,
    "decoder_heads": 8,
    "iou_head_hidden_dim": 64,
}


def _sam_v1(img_size: int, arch: dict[str, Any] | None = None) -> Any:
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    if img_size % 16:
        raise ValueError(f"SAM img_size must be a multiple of 16, got {img_size}")
    a = {**TINY_ARCH, **(arch or {})}
    emb = img_size // 16
    dim = int(a["prompt_dim"])
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=int(a["depth"]),
            embed_dim=int(a["embed_dim"]),
            img_size=img_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=int(a["num_heads"]),
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(int(i) for i in a["global_attn_indexes"]),
            window_size=int(a["window_size"]),
            out_chans=dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(emb, emb),
            input_image_size=(img_size, img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=int(a["decoder_depth"]),
                embedding_dim=dim,
                mlp_dim=int(a["decoder_mlp_dim"]),
                num_heads=int(a["decoder_heads"]),
            ),
            transformer_dim=dim,
            iou_head_depth=3,
            iou_head_hidden_dim=int(a["iou_head_hidden_dim"]),
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def build_small_sam(img_size: int, arch: dict[str, Any], seed: int = 0) -> Any:
    """segment-anything ``Sam`` of the given architecture numbers (keys of :data:`TINY_ARCH`;
    missing keys take the tiny values), random weights, train mode — what ``rea2seg train sam``
    starts from."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _sam_v1(img_size, arch)


def build_tiny_sam(img_size: int = 256, seed: int = 0) -> Any:
    """segment-anything ``Sam`` with a 2-block, 64-wide ViT (≈3M parameters), in eval mode.

    ``img_size``: the square encoder input (the real models use 1024); the embedding grid is
    ``img_size / 16`` and the low-res mask ``img_size / 4``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = _sam_v1(img_size)
    return sam.eval()


def build_tiny_sam2(image_size: int = 256, seed: int = 0) -> Any:
    """SAM2 (``SAM2Base`` from the Hiera-T config, shrunk by :func:`sam2_tiny_overrides`), eval mode.

    Built through ``sam2.build_sam.build_sam2`` on the CPU. For ``image_size`` other than 1024 the
    image predictor needs matching ``_bb_feat_sizes`` (``Sam2Backend`` sets them).
    """
    from sam2.build_sam import build_sam2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_sam2(
            SAM2_TINY_CONFIG,
            None,
            device="cpu",
            hydra_overrides_extra=sam2_tiny_overrides(image_size),
        )
    return model.eval()


def save_tiny_sam(path: str | Path, img_size: int = 256, seed: int = 0) -> Path:
    """Build :func:`build_tiny_sam` and save it as a loadable checkpoint file; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "sam", "img_size": int(img_size), "seed": int(seed)}
    torch.save({"model": build_tiny_sam(img_size, seed).state_dict(), TINY_KEY: meta}, p)
    return p


def save_tiny_sam2(path: str | Path, image_size: int = 256, seed: int = 0) -> Path:
    """Build :func:`build_tiny_sam2` and save it as a SAM2 checkpoint file (``{"model": ...}``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "sam2",
        "image_size": int(image_size),
        "seed": int(seed),
        "config": SAM2_TINY_CONFIG,
        "overrides": sam2_tiny_overrides(image_size),
    }
    torch.save({"model": build_tiny_sam2(image_size, seed).state_dict(), TINY_KEY: meta}, p)
    return p


def _state(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and TINY_KEY in obj:
        return obj["model"], obj[TINY_KEY]
    return obj, None  # a bare state dict (the format of earlier tiny files)


def load_tiny_sam(path: str | Path, img_size: int = 256) -> Any:
    """The ``Sam`` saved by :func:`save_tiny_sam` or ``rea2seg train sam`` (its architecture
    numbers in ``[TINY_KEY]["arch"]``); ``img_size`` only matters for bare state dicts."""
    sd, meta = _state(path)
    sam = _sam_v1(int(meta["img_size"]) if meta else img_size, (meta or {}).get("arch"))
    sam.load_state_dict(sd)
    return sam.eval()
