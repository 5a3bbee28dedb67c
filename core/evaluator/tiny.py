"""A tiny random-init InternVL of the real classes (``InternVLForConditionalGeneration`` with an
``InternVLProcessor``: ``GotOcr2ImageProcessor`` + an offline word-level tokenizer +
``InternVLVideoProcessor``), saved where :func:`core.evaluator.local_internvl.load_internvl`
reads it.

For tests, the benchmark and the ``tiny-random`` evaluator preset. Its output is noise: whatever loads it
must label the result random (``is_random=True``).
"""

from __future__ import annotations

from pathlib import Path

# InternVL -hf layout: images as the context token plus a newline, ChatML turns
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = [
    "<unk>",
    "<|im_start|>",
    "<|im_end|>",
    "<pad>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
]
EXTRA_WORDS = (
    "Mask Answer: IoU Image-1: Image-2: Image-3: Image-4: Image-5: Image-6: 0 1 2 3 4 5 6 7 8 9 : . "
    "0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 0.25 0.75 % user assistant system mask masks image"
).split()
IMAGE_SEQ_LENGTH = 16  # (56 / 7)² patches × 0.5² downsampling


def tiny_tokenizer():
    """The offline word-level tokenizer with InternVL's image tokens."""
    from core.models.tiny_mllm import WORDS, word_tokenizer

    return word_tokenizer(
        SPECIALS,
        [*WORDS, *EXTRA_WORDS],
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


def build_tiny_internvl(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random InternVL (model + processor) to ``out_dir`` and return it.

    Vision: 2 layers, hidden 32, 56 px images in 7 px patches (64 patches → 16 tokens after the
    0.5 pixel shuffle). Text: Qwen2, 2 layers, hidden 64. About 0.2 M parameters.
    """
    from transformers import InternVLForConditionalGeneration

    from core.models.tiny_mllm import start_build

    out = start_build(out_dir, seed)
    tok = tiny_tokenizer()
    cfg = internvl_config(
        vision={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": [56, 56],
            "patch_size": [7, 7],
        },
        text={
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=IMAGE_SEQ_LENGTH,
    )
    model = InternVLForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    # random weights favour <unk> and image tokens; suppress them so the text is (random) words
    model.generation_config.suppress_tokens = [
        tok.convert_tokens_to_ids(t) for t in SPECIALS if t != "<|im_end|>"
    ]
    model.save_pretrained(out)
    internvl_processor(tok, 56, IMAGE_SEQ_LENGTH).save_pretrained(out)
    return out


def internvl_config(vision: dict, text: dict, image_token_id: int, image_seq_length: int, **extra):
    """An ``InternVLConfig`` from the vision (``InternVLVisionConfig``) and text (``Qwen2Config``)
    keyword dicts, with the 0.5 pixel shuffle of InternVL3."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    return InternVLConfig(
        vision_config=InternVLVisionConfig(**vision),
        text_config=Qwen2Config(**text),
        image_token_id=image_token_id,
        image_seq_length=image_seq_length,
        downsample_ratio=0.5,
        **extra,
    )


def internvl_processor(tok, side: int, image_seq_length: int):
    """The ``InternVLProcessor`` for ``side``² tiles (no cropping to patches) with the chat template."""
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(
            size={"height": side, "width": side}, crop_to_patches=False
        ),
        tokenizer=tok,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=image_seq_length,
        chat_template=CHAT_TEMPLATE,
    )
