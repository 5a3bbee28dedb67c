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


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "[SEG]"]
    vocab = {t: i for i, t in enumerate(specials)}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
        vocab.setdefault(w.lower(), len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        additional_special_tokens=["<image>", "[SEG]"],
    )


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
