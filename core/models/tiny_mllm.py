"""Tiny random-init segmentation MLLMs of the REAL transformers classes, saved in the on-disk
layouts the real loaders accept (tests and the ``tiny-random-*`` presets). Their output is noise
and every loader call for them passes ``is_random=True``.

- :func:`build_tiny_lisa`: ``LlavaForConditionalGeneration`` (CLIP ViT 2 layers + Llama 4 layers,
  hidden 64, GQA 4/2 heads, 56-px images → a 4 × 4 token grid) + LlavaProcessor with an offline
  word-level tokenizer knowing ``[SEG]`` + the ``[SEG]`` projection + a tiny SAM, in either
  layout :func:`core.models.lisa.load_lisa` reads (``"files"``: ``text_hidden_fcs.pt`` and
  ``sam.pth`` beside the model; ``"lisa"``: both inside ``model.safetensors`` under LISA's names).
- :func:`build_tiny_lens`: ``Qwen2_5_VLForConditionalGeneration`` (vision depth 2, text 4 layers,
  hidden 64, M-RoPE sections [2, 3, 3]) + Qwen2.5-VL processor + query head (8 queries, a 2-block
  connector, conv_1d, proj_to_sam), in either layout :func:`core.models.lens.load_lens` reads
  (``"files"``: ``lens_head.pt``; ``"lens"``: LENS's own tensor names inside the weights, with
  the legacy ``model.layers.*`` / ``visual.*`` names of released LENS checkpoints).

Builds are deterministic: the same arguments give byte-identical weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

WORDS = (
    "USER: ASSISTANT: Please output segmentation mask . ? , which what where is the a an of to in on left right "
    "front behind object thing cube sphere cylinder ball block red blue green gray brown purple cyan yellow "
    "small large big metal rubber shiny matte same colour color shape size material as that has than could you "
    "segment find show me can second first third from back closer farther camera side bigger smaller Sure, it"
).split()

TINY_LISA_LAYERS = 4
TINY_LENS_LAYERS = 4


def word_tokenizer(specials: list[str], words: list[str], **kwargs):
    """An offline word-level tokenizer: ``specials`` first (``specials[0]`` is unknown), then
    ``words`` and their lower-case forms; the remaining specials are additional special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(specials)}
    for w in words:
        vocab.setdefault(w, len(vocab))
        vocab.setdefault(w.lower(), len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[0]))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token=specials[0], **kwargs)


def start_build(out_dir: str | Path, seed: int) -> Path:
    """Create ``out_dir`` and seed torch's RNG (every tiny build starts so; the same seed gives
    the same weights)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    return out


def _tokenizer():
    return word_tokenizer(
        ["<unk>", "<s>", "</s>", "<pad>", "<image>", "[SEG]"],
        list(WORDS),
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<image>", "[SEG]"],
    )


def _rewrite_weights(out: Path, rename: dict[str, str], extra: dict[str, torch.Tensor]) -> None:
    """Rewrite ``model.safetensors`` with key prefixes renamed and ``extra`` tensors added."""
    from safetensors.torch import load_file, save_file

    f = out / "model.safetensors"
    state = load_file(str(f))
    renamed = {}
    for k, v in state.items():
        for old, new in rename.items():
            if k.startswith(old):
                k = new + k[len(old) :]
                break
        renamed[k] = v
    renamed.update({k: v.detach().clone().contiguous() for k, v in extra.items()})
    save_file(renamed, str(f), metadata={"format": "pt"})


def build_tiny_lisa(
    out_dir: str | Path,
    seed: int = 0,
    image_size: int = 56,
    layers: int = TINY_LISA_LAYERS,
    image_aspect_ratio: Literal["pad", "crop"] = "pad",
    layout: Literal["files", "lisa"] = "files",
    max_new_tokens: int = 4,
) -> Path:
    """Write a tiny LISA-style model directory to ``out_dir`` and return it (module docstring).

    ``image_aspect_ratio`` and ``max_new_tokens`` go to ``rea2seg.json``; SAM is
    :func:`core.models.tiny_sam.build_tiny_sam` (seed ``seed``)."""
    import transformers as tf

    from core.models.base import OPTIONS_FILE
    from core.models.lisa import FCS_FILE, SAM_FILE, make_text_hidden_fcs
    from core.models.tiny_sam import build_tiny_sam, save_tiny_sam

    out = start_build(out_dir, seed)
    tok = _tokenizer()
    vision = tf.CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=14,
        projection_dim=64,
    )
    text = tf.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    cfg = tf.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    model = tf.LlavaForConditionalGeneration(cfg).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    fcs = make_text_hidden_fcs(64)
    model.save_pretrained(out)
    ip = tf.CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    tf.LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(out)
    if layout == "files":
        torch.save(fcs.state_dict(), out / FCS_FILE)
        save_tiny_sam(out / SAM_FILE, seed=seed)
    elif layout == "lisa":
        extra = {f"model.text_hidden_fcs.0.{k}": v for k, v in fcs.state_dict().items()}
        extra.update(
            {
                f"model.visual_model.{k}": v
                for k, v in build_tiny_sam(seed=seed).state_dict().items()
            }
        )
        _rewrite_weights(out, {}, extra)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    (out / OPTIONS_FILE).write_text(
        json.dumps(
            {"image_aspect_ratio": image_aspect_ratio, "max_new_tokens": max_new_tokens}, indent=1
        )
    )
    return out


QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_tokenizer():
    specials = [
        "<unk>",
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    words = [
        *WORDS,
        "user",
        "assistant",
        "system",
        "You",
        "helpful",
        "assistant.",
        "Locate",
        "bbox",
        "JSON",
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
    ]
    return word_tokenizer(
        specials,
        words,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    )


def build_tiny_lens(
    out_dir: str | Path,
    seed: int = 0,
    n_queries: int = 8,
    layers: int = TINY_LENS_LAYERS,
    layout: Literal["files", "lens"] = "files",
    max_new_tokens: int = 4,
    connector_depth: int = 2,
) -> Path:
    """A tiny Qwen2.5-VL (+ processor, + query tokens and head) in a layout of
    :func:`core.models.lens.load_lens` (module docstring); ``max_new_tokens`` goes to ``rea2seg.json``.
    The processor's pixel budget is 56² … 112² (at most a 4 × 4 token grid)."""
    import transformers as tf

    from core.models.base import OPTIONS_FILE
    from core.models.lens import HEAD_FILE, QueryConnector, QueryHead

    out = start_build(out_dir, seed)
    tok = _qwen_tokenizer()
    hidden = 64
    cfg = tf.Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
            },
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": None,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": hidden,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "patch_size": 14,
            "spatial_merge_size": 2,
        },
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
    )
    model = tf.Qwen2_5_VLForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    queries = torch.randn(1, n_queries, hidden) * 0.02
    connector = QueryConnector(hidden, n_queries, depth=connector_depth, num_heads=16, mlp_ratio=4)
    for (
        prm
    ) in connector.parameters():  # LENS zero-inits pos_embed; random here so the connector matters
        torch.nn.init.normal_(prm, std=0.02)
    head = QueryHead(hidden, n_queries, connector=connector)
    model.save_pretrained(out)
    ip = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    tf.Qwen2_5_VLProcessor(
        image_processor=ip,
        tokenizer=tok,
        video_processor=tf.Qwen2VLVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    ).save_pretrained(out)
    if layout == "files":
        torch.save(
            {
                "queries": queries[0],
                "conv_1d": head.conv_1d.state_dict(),
                "proj_to_sam": head.proj_to_sam.state_dict(),
                "connector": connector.state_dict(),
                "connector_heads": 16,
            },
            out / HEAD_FILE,
        )
    elif layout == "lens":
        extra = {"learnable_query": queries}
        extra.update({f"conv_1d.{k}": v for k, v in head.conv_1d.state_dict().items()})
        extra.update({f"proj_to_sam.{k}": v for k, v in head.proj_to_sam.state_dict().items()})
        extra.update({f"connector.{k}": v for k, v in connector.state_dict().items()})
        _rewrite_weights(
            out, {"model.language_model.": "model.", "model.visual.": "visual."}, extra
        )
    else:
        raise ValueError(f"unknown layout {layout!r}")
    (out / OPTIONS_FILE).write_text(json.dumps({"max_new_tokens": max_new_tokens}, indent=1))
    return out
