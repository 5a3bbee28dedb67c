"""The small evaluator's vision tower knows where its tokens are: transformers initialises a
random InternViT's position embeddings to zeros (a uniform picture then gives identical image
tokens, so a mask cannot be compared with the objects under it);
:func:`core.training.tiny_evaluator.grid_positions` gives them 2-D sine-cosine values."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _image_tokens(model, processor, picture):
    pv = processor.image_processor(images=[picture], return_tensors="pt", crop_to_patches=False)
    with torch.inference_mode():
        out = model.model.get_image_features(pixel_values=pv["pixel_values"])
    feats = out if torch.is_tensor(out) else out.pooler_output
    return feats.reshape(-1, feats.shape[-1])


def test_random_internvl_has_no_positions_and_grid_positions_adds_them(tmp_path):
    from transformers import AutoProcessor, InternVLForConditionalGeneration

    from core.training.tiny_evaluator import build_tiny_scoring_internvl, grid_positions

    base = build_tiny_scoring_internvl(tmp_path / "ev", ["red", "cube"], side=56, patch=7)
    model = InternVLForConditionalGeneration.from_pretrained(base).eval()
    processor = AutoProcessor.from_pretrained(base)
    black = np.zeros((56, 56, 3), np.uint8)

    # as transformers builds it: zero positions, every token of a black picture the same
    fresh = InternVLForConditionalGeneration(model.config).eval()
    assert not fresh.model.vision_tower.embeddings.position_embeddings.any()
    same = _image_tokens(fresh, processor, black)
    assert torch.allclose(same, same[:1].expand_as(same), atol=1e-6)

    # built here: the grid's sine-cosine values (class token zero), tokens differ by place
    pos = model.model.vision_tower.embeddings.position_embeddings[0].detach()
    assert not pos[0].any() and pos[1:].abs().max() > 0.1
    side = 56 // 7
    y, x = divmod(side + 2, side)  # token (1, 2): its first sine is sin(y · ω0) = sin(1)
    assert float(pos[1 + y * side + x, 0]) == pytest.approx(0.5 * np.sin(1.0), 1e-5)
    tokens = _image_tokens(model, processor, black)
    assert torch.cdist(tokens, tokens).max() > 1e-3

    # in place, idempotent
    grid_positions(fresh)
    assert torch.equal(fresh.model.vision_tower.embeddings.position_embeddings[0].detach(), pos)
