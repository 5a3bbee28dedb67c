"""A tiny InternVL (the real classes, random init) whose word-level vocabulary can write the
evaluator's answers: ``Mask``, ``1:`` … ``9:``, every score ``0.00`` … ``1.00`` and ``Answer:``,
plus the words given (e.g. the questions' words). The ``tiny-random`` preset's vocabulary has no
score tokens, so a model trained on it could not learn to write a score; tests and
``bench/train_evaluator.py`` train this one instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SCORE_WORDS = [f"{v / 100:.2f}" for v in range(101)] + [f"{i}:" for i in range(1, 10)]


def build_tiny_scoring_internvl(
    out_dir: str | Path,
    words: Iterable[str] = (),
    *,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    side: int = 56,
    patch: int = 7,
    vision_hidden: int = 32,
    vision_layers: int = 2,
) -> Path:
    """Write the model and its processor to ``out_dir``. Vision: ``vision_layers`` layers of
    width ``vision_hidden`` over
    ``side``² tiles in ``patch``-pixel patches (``(side/patch)²/4`` tokens per tile after the 0.5
    pixel shuffle); text: Qwen2 with ``layers`` layers of width ``hidden``."""
    from transformers import InternVLForConditionalGeneration

    from core.evaluator.tiny import (
        EXTRA_WORDS,
        SPECIALS,
        internvl_config,
        internvl_processor,
    )
    from core.models.tiny_mllm import WORDS, start_build, word_tokenizer

    out = start_build(out_dir, seed)
    vocab = [*WORDS, *EXTRA_WORDS, *SCORE_WORDS, *sorted({w for w in words if w})]
    tok = word_tokenizer(
        SPECIALS,
        vocab,
        eos_token="<|im_end|>",
        pad_token="<pad>",
        additional_special_tokens=SPECIALS[1:],
        extra_special_tokens={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )
    seq = (side // patch) ** 2 // 4
    cfg = internvl_config(
        vision={
            "hidden_size": vision_hidden,
            "intermediate_size": 2 * vision_hidden,
            "num_hidden_layers": vision_layers,
            "num_attention_heads": 2,
            "image_size": [side, side],
            "patch_size": [patch, patch],
        },
        text={
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=seq,
    )
    model = InternVLForConditionalGeneration(cfg).eval()
    grid_positions(model)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.suppress_tokens = [
        tok.convert_tokens_to_ids(t) for t in SPECIALS if t != "<|im_end|>"
    ]
    model.save_pretrained(out)
    internvl_processor(tok, side, seq).save_pretrained(out)
    return out


def grid_positions(model, scale: float = 0.5) -> None:
    """Give a random-init InternVL vision tower fixed 2-D sine-cosine position embeddings
    (as MAE's ViT), in place; the class token's stays zero.

    transformers initialises InternViT's ``position_embeddings`` to zeros, which a pretrained
    checkpoint overwrites; a model trained from random weights would start with image tokens
    that say nothing about *where* they are — a uniform picture gives identical tokens — and a
    mask could not be compared with the objects under it. Not from the paper (it starts from
    pretrained InternVL3); ``scale`` ≈ the patch embedding's output scale at init."""
    import math

    import torch

    emb = model.model.vision_tower.embeddings
    pos = emb.position_embeddings
    if pos is None:
        return
    dim = pos.shape[-1]
    side = math.isqrt(pos.shape[1] - 1)
    if side * side != pos.shape[1] - 1 or dim % 4:
        raise ValueError(f"position embeddings of shape {tuple(pos.shape)} are not a square grid")
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    omega = 1.0 / (10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4)))
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        angles = coord[:, None].double() * omega[None, :]
        parts += [torch.sin(angles), torch.cos(angles)]
    grid = torch.cat(parts, dim=1) * scale
    with torch.no_grad():
        pos.zero_()
        pos[0, 1:] = grid.to(pos.dtype)
