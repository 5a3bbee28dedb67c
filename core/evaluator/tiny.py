"""A tiny random-init InternVL of the real classes, saved where :func:`load_internvl` reads it,
plus a tiny LoRA adapter. For tests and the ``tiny-random`` preset (labelled random)."""

from __future__ import annotations

from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer():
    from core.models.tiny_mllm import WORDS, word_tokenizer

    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
    extra = "Mask Answer: IoU 0 1 2 3 4 5 6 7 8 9 : . 0.5 0.25 0.75 user assistant system Image images".split()
    return word_tokenizer(
        specials, [*WORDS, *extra], eos_token="<|im_end|>", pad_token="<pad>",
        additional_special_tokens=specials[1:],
        extra_special_tokens={"start_image_token": "<img>", "end_image_token": "</img>",
                              "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
    )


def build_tiny_internvl(out_dir: str | Path, seed: int = 0) -> Path:
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
        Qwen2Config,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _tokenizer()
    vision = InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=[56, 56], patch_size=[7, 7])
    text = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = InternVLConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
                         image_seq_length=16, downsample_ratio=0.5)
    model = InternVLForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    ip = GotOcr2ImageProcessor(size={"height": 56, "width": 56}, crop_to_patches=False)
    proc = InternVLProcessor(image_processor=ip, tokenizer=tok, video_processor=InternVLVideoProcessor(),
                             image_seq_length=16, chat_template=CHAT_TEMPLATE)
    proc.save_pretrained(out)
    return out


def build_tiny_lora(base_dir: str | Path, out_dir: str | Path, rank: int = 4) -> Path:
    """A random LoRA adapter on the tiny model's attention projections, saved with PEFT."""
    from peft import LoraConfig, get_peft_model
    from transformers import InternVLForConditionalGeneration

    base = InternVLForConditionalGeneration.from_pretrained(base_dir, local_files_only=True)
    lora = get_peft_model(base, LoraConfig(r=rank, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(out_dir)
    return Path(out_dir)
