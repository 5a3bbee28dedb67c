"""Local evaluator: InternVL3 (transformers' native ``InternVLForConditionalGeneration``, the
``-hf`` checkpoints) with an optional PEFT LoRA adapter, loaded offline from local paths.

Each group is one user turn: the original image, then the group's masks as white-on-black
images, then the text of :mod:`core.evaluator.prompt`. Tiling is off (``crop_to_patches=False``):
every image costs exactly ``image_seq_length`` tokens (256 for InternVL3 at 448 px), which bounds
a 5-mask group at 6 × 256 image tokens. All groups of a sample go through one batched
``generate`` call (left padding).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from core.evaluator.base import GroupResult, mask_image
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import SYSTEM, user_text
from core.models.base import ModelLoadError


class InternVLEvaluator:
    backend = "local-internvl"

    def __init__(self, model, processor, name: str, is_random: bool, device: str = "cpu", max_new_tokens: int = 512,
                 batch_groups: bool = True) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.name = name
        self.is_random = is_random
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.batch_groups = batch_groups
        self.processor.tokenizer.padding_side = "left"

    def _text(self, question: str, n: int, cot: bool) -> str:
        content = [{"type": "image"} for _ in range(n + 1)] + [{"type": "text", "text": user_text(question, n, cot)}]
        messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]}, {"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _generate(self, texts: list[str], images: list[np.ndarray]) -> list[str]:
        inputs = self.processor(text=texts, images=images, return_tensors="pt", padding=True, crop_to_patches=False)
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def score_groups(self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool) -> list[GroupResult]:
        prompts = [self._text(question, len(g), cot) for g in groups]
        imgs = [[image_rgb, *[mask_image(m) for m in g]] for g in groups]
        t = time.perf_counter()
        if self.batch_groups:
            raws = self._generate(prompts, [im for group in imgs for im in group])
        else:
            raws = [self._generate([p], im)[0] for p, im in zip(prompts, imgs, strict=True)]
        dt = (time.perf_counter() - t) / max(len(groups), 1)
        results = []
        for g, p, raw in zip(groups, prompts, raws, strict=True):
            parsed = parse_scores(raw, len(g))
            results.append(GroupResult(parsed.scores, parsed.cot, raw, p, parsed.error, dt))
        return results


def load_internvl(path: str | Path, *, lora_path: str | Path | None = None, device: str = "cpu", is_random: bool = False,
                  setting: str = "model_path", max_new_tokens: int = 512) -> InternVLEvaluator:
    from transformers import AutoProcessor, InternVLForConditionalGeneration

    p = Path(path) if path else None
    if p is None or not (p / "config.json").is_file():
        raise ModelLoadError(f"InternVL checkpoint '{path}' does not exist or has no config.json (setting {setting})")
    try:
        model = InternVLForConditionalGeneration.from_pretrained(p, local_files_only=True, attn_implementation="sdpa")
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"'{p}' could not be loaded as InternVL ({exc}) (setting {setting})") from exc
    name = f"internvl:{p.name}"
    if lora_path:
        from peft import PeftModel

        lp = Path(lora_path)
        if not (lp / "adapter_config.json").is_file():
            raise ModelLoadError(f"LoRA adapter '{lp}' has no adapter_config.json (setting lora_path)")
        model = PeftModel.from_pretrained(model, lp, is_trainable=False)
        name += f"+lora:{lp.name}"
    return InternVLEvaluator(model, processor, name, is_random, device, max_new_tokens)
