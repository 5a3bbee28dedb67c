"""Tiny random-init SAM / SAM2 of the real architecture classes (for tests and the
``tiny-random`` preset). Their output is noise and is always labelled random."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch


def build_tiny_sam(img_size: int = 256, seed: int = 0):
    """segment-anything ``Sam`` with a 2-block, 64-wide ViT (≈3M parameters)."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    emb = img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=2, embed_dim=64, img_size=img_size, mlp_ratio=4, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,),
            window_size=4, out_chans=256,
        ),
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(emb, emb), input_image_size=(img_size, img_size),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=512, num_heads=8),
                                 transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=64),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def save_tiny_sam(path: str | Path, img_size: int = 256, seed: int = 0) -> Path:
    p = Path(path)
    torch.save(build_tiny_sam(img_size, seed).state_dict(), p)
    return p


def load_tiny_sam(path: str | Path, img_size: int = 256):
    sam = build_tiny_sam(img_size)
    sam.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
    return sam.eval()


def build_tiny_sam2(image_size: int = 256, seed: int = 0):
    """SAM2 (Hiera-T config) shrunk to ≈7M parameters through hydra overrides."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    over = [
        "++model.image_encoder.trunk.embed_dim=8",
        "++model.image_encoder.trunk.num_heads=1",
        "++model.image_encoder.trunk.stages=[1,1,2,1]",
        "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
        "++model.memory_attention.num_layers=1",
        f"++model.image_size={image_size}",
    ]
    return build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", hydra_overrides_extra=over).eval()


def save_tiny_sam2(path: str | Path, image_size: int = 256, seed: int = 0) -> Path:
    p = Path(path)
    torch.save(build_tiny_sam2(image_size, seed).state_dict(), p)
    return p


def load_tiny_sam2(path: str | Path, image_size: int = 256):
    model = build_tiny_sam2(image_size)
    model.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
    return model.eval()
