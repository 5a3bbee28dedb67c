"""Tiny random-init LISA-style model of the real classes (LLaVA: CLIP + Llama), saved in the
layout :func:`core.models.lisa.load_lisa` reads. Used by tests and the ``tiny-random`` preset;
everything it produces is labelled random."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = (
    "USER: ASSISTANT: Please output segmentation mask . ? , which what where is the a an of to in on left right "
    "front behind object thing cube sphere cylinder ball block red blue green gray brown purple cyan yellow "
    "small large big metal rubber shiny matte same colour color shape size material as that has than could you "
    "segment find show me can second first third from back closer farther camera side bigger smaller Sure, it"
).split()


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


def _tokenizer():
    return word_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "<image>", "[SEG]"], list(WORDS), bos_token="<s>",
                          eos_token="</s>", pad_token="<pad>", additional_special_tokens=["<image>", "[SEG]"])


def build_tiny_lisa(out_dir: str | Path, seed: int = 0, image_size: int = 56, layers: int = 4) -> Path:
    """Write a tiny LLaVA (+ processor, + text_hidden_fcs) to ``out_dir`` and return it."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from core.models.lisa import make_text_hidden_fcs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _tokenizer()
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              image_size=image_size, patch_size=14, projection_dim=64)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(cfg).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1).save_pretrained(out)
    torch.save(make_text_hidden_fcs(64).state_dict(), out / "text_hidden_fcs.pt")
    return out


QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_tokenizer():
    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    return word_tokenizer(specials, [*WORDS, "user", "assistant"], eos_token="<|im_end|>", pad_token="<|endoftext|>",
                          additional_special_tokens=specials[1:])


def build_tiny_lens(out_dir: str | Path, seed: int = 0, n_queries: int = 8, layers: int = 4) -> Path:
    """A tiny Qwen2.5-VL (+ processor, + query tokens and connector) in the layout of
    :func:`core.models.lens.load_lens`."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from core.models.lens import QueryHead

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _qwen_tokenizer()
    cfg = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": layers,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                     "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None},
        vision_config={"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "out_hidden_size": 64,
                       "window_size": 56, "fullatt_block_indexes": [1], "patch_size": 14, "spatial_merge_size": 2},
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
    )
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    ip = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    Qwen2_5_VLProcessor(image_processor=ip, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                        chat_template=QWEN_CHAT_TEMPLATE).save_pretrained(out)
    head = QueryHead(64, n_queries)
    torch.save({"queries": torch.randn(1, n_queries, 64) * 0.02, "conv_1d": head.conv_1d.state_dict(),
                "proj_to_sam": head.proj_to_sam.state_dict()}, out / "lens_head.pt")
    return out
