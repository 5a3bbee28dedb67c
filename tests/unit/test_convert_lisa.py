"""``rea2seg convert lisa`` on a LISA-layout checkpoint made from tiny real modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lisa_src(tmp_path_factory):
    from safetensors.torch import save_file
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    from core.models.lisa import make_text_hidden_fcs
    from core.models.tiny_mllm import WORDS, word_tokenizer
    from core.models.tiny_sam import build_tiny_sam

    root = tmp_path_factory.mktemp("lisa_src")
    src, clip = root / "LISA-tiny", root / "clip"
    torch.manual_seed(0)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<im_patch>", "<im_start>", "<im_end>", "[SEG]"]
    tok = word_tokenizer(
        specials,
        [*WORDS, "A", "chat", "between"],
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=specials[4:],
    )
    tok.save_pretrained(src)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )
    vcfg = CLIPVisionConfig(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=56,
        patch_size=14,
    )
    vision = CLIPVisionModel(vcfg)
    vcfg.save_pretrained(clip)
    CLIPImageProcessor(
        size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}
    ).save_pretrained(clip)
    state = {k: v.contiguous() for k, v in lm.state_dict().items()}
    state["lm_head.weight"] = state["lm_head.weight"].clone()
    state.update(
        {f"model.vision_tower.vision_tower.{k}": v for k, v in vision.state_dict().items()}
    )
    proj = torch.nn.Linear(48, 64)
    state["model.mm_projector.weight"], state["model.mm_projector.bias"] = (
        proj.weight.detach(),
        proj.bias.detach(),
    )
    fcs = make_text_hidden_fcs(64)
    state.update({f"model.text_hidden_fcs.0.{k}": v for k, v in fcs.state_dict().items()})
    sam = build_tiny_sam()
    state.update({f"model.visual_model.{k}": v for k, v in sam.state_dict().items()})
    save_file(
        {k: v.detach().clone().contiguous() for k, v in state.items()},
        str(src / "model.safetensors"),
    )
    (src / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LISAForCausalLM"],
                "vocab_size": len(tok),
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "mm_vision_select_layer": -2,
                "out_dim": 256,
            }
        )
    )
    return src, clip, state


def test_convert_then_load_is_exact(lisa_src, tmp_path, capsys):
    from core.cli import main
    from core.models.lisa import crop_token_boxes, load_lisa
    from core.models.tiny_sam import build_tiny_sam

    src, clip, state = lisa_src
    dst = tmp_path / "converted"
    assert main(["convert", "lisa", str(src), "--out", str(dst), "--clip", str(clip)]) == 0
    assert "sam.pth" in capsys.readouterr().out
    m = load_lisa(dst, max_new_tokens=2)
    # the single linear projector survives exactly
    x = torch.randn(5, 48)
    with torch.inference_mode():
        got = m.model.model.multi_modal_projector(x)
    assert torch.equal(
        got, x @ state["model.mm_projector.weight"].T + state["model.mm_projector.bias"]
    )
    assert torch.equal(
        m.model.model.language_model.layers[1].mlp.up_proj.weight,
        state["model.layers.1.mlp.up_proj.weight"],
    )
    assert torch.equal(m.fcs[2].weight, state["model.text_hidden_fcs.0.2.weight"])
    sam = build_tiny_sam()
    sam.load_state_dict(torch.load(dst / "sam.pth", weights_only=True))
    assert torch.equal(
        sam.mask_decoder.iou_token.weight, state["model.visual_model.mask_decoder.iou_token.weight"]
    )
    assert "<im_start>" in m._prompt("q") and m.image_aspect_ratio == "crop"
    image = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    out = m.encode(image, "which cube ?", [0, 1])
    assert out.prompt_embedding.shape == (1, 256) and np.array_equal(
        out.token_boxes_xyxy, crop_token_boxes((60, 80), 4)
    )


def test_convert_reports_missing_parts(lisa_src, tmp_path):
    from core.models.base import ModelLoadError
    from core.models.convert import convert_lisa

    src, clip, _ = lisa_src
    with pytest.raises(ModelLoadError, match="no config.json"):
        convert_lisa(tmp_path, tmp_path / "o")
    with pytest.raises(ModelLoadError, match="--clip"):
        convert_lisa(src, tmp_path / "o")
