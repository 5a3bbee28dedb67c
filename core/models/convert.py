"""Convert a released LISA checkpoint (``LISAForCausalLM``, LLaVA-v1 layout) into the directory
layout :func:`core.models.lisa.load_lisa` reads — offline, from local files only.

Source: a directory with ``config.json``, the tokenizer files and the weights
(``*.safetensors`` or ``pytorch_model*.bin`` shards), keys as LISA saves them:

- ``model.embed_tokens.*``, ``model.layers.N.*``, ``model.norm.*``, ``lm_head.*`` — the LLaMA;
- ``model.vision_tower.vision_tower.vision_model.*`` — CLIP ViT-L/14 (when the checkpoint has
  no vision tower, ``--clip DIR`` gives a local CLIP vision model);
- ``model.mm_projector.weight|bias`` — LLaVA-v1's single linear projector;
- ``model.text_hidden_fcs.0.{0,2}.weight|bias`` — the ``[SEG]`` projection;
- ``model.visual_model.*`` — SAM ViT-H.

LLaVA-v1's single linear projector has no transformers equivalent, so it is written exactly as a
two-layer projector whose activation is the identity and whose second layer is the identity
matrix: ``I · (W x + b) + 0 = W x + b``. SAM goes to ``sam.pth`` (segment-anything's own key
names), the projection to ``text_hidden_fcs.pt``, and ``rea2seg.json`` records LISA's centre
crop and prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.models.base import ModelLoadError


def _load_state(src: Path) -> dict[str, torch.Tensor]:
    files = sorted(src.glob("*.safetensors"))
    state: dict[str, torch.Tensor] = {}
    if files:
        from safetensors.torch import load_file

        for f in files:
            state.update(load_file(str(f)))
        return state
    files = sorted(src.glob("pytorch_model*.bin"))
    if not files:
        raise ModelLoadError(f"{src}: no *.safetensors or pytorch_model*.bin weights found")
    for f in files:
        state.update(torch.load(f, map_location="cpu", weights_only=True))
    return state


def _pop_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    for k in list(state):
        if k.startswith(prefix):
            del state[k]
    return out


def convert_lisa(
    src: str | Path,
    dst: str | Path,
    *,
    clip: str | Path | None = None,
    image_token: str = "<im_patch>",
) -> Path:
    """Write a ``load_lisa`` directory at ``dst`` from a LISA checkpoint at ``src``."""
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise ModelLoadError(f"{src}: not a LISA checkpoint directory (no config.json)")
    cfg = json.loads((src / "config.json").read_text())
    state = _load_state(src)
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    if tok.convert_tokens_to_ids("[SEG]") in (None, tok.unk_token_id):
        raise ModelLoadError(f"{src}: the tokenizer has no [SEG] token")
    image_id = tok.convert_tokens_to_ids(image_token)
    if image_id in (None, tok.unk_token_id):
        raise ModelLoadError(
            f"{src}: the tokenizer has no {image_token} token to stand for image features"
        )

    sam = _pop_prefix(state, "model.visual_model.")
    fcs = _pop_prefix(state, "model.text_hidden_fcs.0.")
    proj = _pop_prefix(state, "model.mm_projector.")
    vision = _pop_prefix(state, "model.vision_tower.vision_tower.")
    if not sam or not fcs or not proj:
        raise ModelLoadError(
            f"{src}: missing LISA weights (visual_model, text_hidden_fcs or mm_projector)"
        )
    if not vision:
        if clip is None:
            raise ModelLoadError(
                f"{src}: the checkpoint has no vision tower; give a local CLIP model with --clip"
            )
        vision = {
            k: v
            for k, v in CLIPVisionModel.from_pretrained(clip, local_files_only=True)
            .state_dict()
            .items()
        }
    if clip is not None:
        vcfg = CLIPVisionConfig.from_pretrained(clip, local_files_only=True)
        image_processor = CLIPImageProcessor.from_pretrained(clip, local_files_only=True)
    else:
        raise ModelLoadError("--clip is needed for the vision configuration and image processor")

    text_keys = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "rms_norm_eps",
        "rope_theta",
        "hidden_act",
    )
    tcfg = LlamaConfig(
        **{k: cfg[k] for k in text_keys if k in cfg},
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    lcfg = LlavaConfig(
        vision_config=vcfg,
        text_config=tcfg,
        image_token_id=image_id,
        projector_hidden_act="linear",
        vision_feature_layer=cfg.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy="default",
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(lcfg)
    hidden = tcfg.hidden_size
    dtype = proj["weight"].dtype
    new = {"lm_head.weight": state.pop("lm_head.weight")}
    for k, v in list(state.items()):
        if k.startswith("model."):
            new["model.language_model." + k[len("model.") :]] = v
    new.update({f"model.vision_tower.{k}": v for k, v in vision.items()})
    new["model.multi_modal_projector.linear_1.weight"] = proj["weight"]
    new["model.multi_modal_projector.linear_1.bias"] = proj.get(
        "bias", torch.zeros(hidden, dtype=dtype)
    )
    new["model.multi_modal_projector.linear_2.weight"] = torch.eye(hidden, dtype=dtype)
    new["model.multi_modal_projector.linear_2.bias"] = torch.zeros(hidden, dtype=dtype)
    expected = set(model.state_dict())
    unknown = sorted(set(new) - expected)
    missing = sorted(expected - set(new))
    if unknown or missing:
        raise ModelLoadError(
            f"{src}: weights do not match the LLaVA layout (unexpected {unknown[:5]}, missing {missing[:5]})"
        )
    model.load_state_dict(new, strict=True, assign=True)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=vcfg.patch_size,
        image_token=image_token,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(dst)
    torch.save(fcs, dst / "text_hidden_fcs.pt")
    torch.save(sam, dst / "sam.pth")
    (dst / "rea2seg.json").write_text(json.dumps({"image_aspect_ratio": "crop"}, indent=1))
    return dst
