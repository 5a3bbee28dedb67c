"""Local evaluator: InternVL3 through transformers' native ``InternVLForConditionalGeneration``
and ``AutoProcessor`` (the ``-hf`` checkpoints), with an optional PEFT LoRA adapter (App. B:
InternVL3-8B fine-tuned with LoRA), loaded offline from local paths only.

Input per group (§4.3, App. B): one user turn with the original image, then the group's masks as
white-on-black pictures (:func:`core.evaluator.base.mask_image`), then the text, laid out by
:func:`core.evaluator.prompt.hf_user_content` through the checkpoint's own chat template.

Image resolution: InternVL3's standard dynamic tiling by default — each image is cut into up to
``max_patches`` tiles (12, InternVL's usual ``max_num``) of the model's tile size (448² for
InternVL3) in the aspect-ratio grid that fits it best, plus a thumbnail when there is more than
one tile; each tile costs ``image_seq_length`` tokens (256). ``max_patches=1`` (only when asked)
turns tiling off: every image is resized to a single tile. The choice is recorded in each trace
(``EvaluatorTrace.image_tiling``). The paper does not say which it used.

All groups of a sample go through one left-padded batched ``generate`` (``batch_groups=True``,
at most ``max_batch`` groups per call); ``batch_groups=False`` runs one call per group
(``bench/evaluator_batching.py`` compares the two). Greedy decoding.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluator.base import EvaluatorBase, GroupResult, mask_image
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import SYSTEM, hf_user_content
from core.models.base import ModelLoadError


class InternVLEvaluator(EvaluatorBase):
    """A loaded InternVL evaluator (see module docstring); build it with :func:`load_internvl`."""

    backend = "local-internvl"

    def __init__(
        self,
        model: Any,
        processor: Any,
        name: str,
        is_random: bool,
        device: str = "cpu",
        max_new_tokens: int = 512,
        batch_groups: bool = True,
        max_patches: int = 12,
        max_batch: int | None = None,
        prompt_format: str | None = None,
    ) -> None:
        import torch  # noqa: F401 - the model needs it; imported here so the module imports light

        if int(max_patches) < 1:
            raise ValueError(f"max_patches must be at least 1, got {max_patches}")
        self.model = model.to(device).eval()
        self.processor = processor
        self.name = name
        self.is_random = bool(is_random)
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.batch_groups = bool(batch_groups)
        self.max_patches = int(max_patches)
        self.max_batch = max_batch
        # the prompt format a fine-tuned adapter was trained on (export's "prompt_format"); stage 2
        # refuses to run it on another. None: not declared (a base model).
        self.prompt_format = prompt_format
        tok = processor.tokenizer
        tok.padding_side = "left"
        self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self._image_token = getattr(processor, "image_token", "<IMG_CONTEXT>")

    # -- prompt --------------------------------------------------------------------------------
    def prompt_text(self, question: str, n_masks: int, cot: bool) -> str:
        """The chat-templated text for one group (images still as one placeholder each)."""
        messages = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {"role": "user", "content": hf_user_content(question, n_masks, cot)},
        ]
        text = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        n_img = n_masks + 1
        if text.count(self._image_token) != n_img and text.count("<image>") == n_img:
            # older -hf templates write "<image>"; the processor expands its context token
            text = text.replace("<image>", self._image_token)
        if text.count(self._image_token) != n_img:
            raise ModelLoadError(
                f"the chat template of {self.name} does not place one {self._image_token} per image "
                f"({text.count(self._image_token)} for {n_img} images)"
            )
        return text

    @property
    def image_tiling(self) -> str:
        """How images are tiled, as recorded in the trace: ``dynamic max N`` or ``single tile``."""
        return "single tile" if self.max_patches == 1 else f"dynamic max {self.max_patches}"

    def image_kwargs(self) -> dict[str, Any]:
        """Processor keyword arguments that fix the number of tiles per image (module docstring)."""
        if self.max_patches == 1:
            return {"crop_to_patches": False}
        return {"crop_to_patches": True, "min_patches": 1, "max_patches": self.max_patches}

    # -- generation ----------------------------------------------------------------------------
    def _generate(self, texts: list[str], images: list[np.ndarray]) -> list[str]:
        import torch

        inputs = self.processor(
            text=texts, images=images, return_tensors="pt", padding=True, **self.image_kwargs()
        )
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self._pad_id,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def _score_checked(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """All groups in batched generate calls (see :class:`core.evaluator.base.MaskEvaluator`)."""
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        prompts = [self.prompt_text(question, len(g), cot) for g in groups]
        imgs = [[image, *[mask_image(m) for m in g]] for g in groups]
        step = max(1, self.max_batch or len(groups)) if self.batch_groups else 1
        raws: list[str] = []
        seconds: list[float] = []
        for i in range(0, len(groups), step):
            t = time.perf_counter()
            chunk = range(i, min(i + step, len(groups)))
            raws += self._generate(
                [prompts[j] for j in chunk], [im for j in chunk for im in imgs[j]]
            )
            seconds += [(time.perf_counter() - t) / len(chunk)] * len(chunk)
        results = []
        for g, p, raw, sec in zip(groups, prompts, raws, seconds, strict=True):
            parsed = parse_scores(raw, len(g))
            results.append(GroupResult(parsed.scores, parsed.cot, raw, p, parsed.error, sec))
        return results


def default_dtype(device: str) -> str:
    """``bfloat16`` on CUDA devices that support it, else ``float32``."""
    import torch

    if (
        str(device).startswith("cuda")
        and torch.cuda.is_available()
        and torch.cuda.is_bf16_supported()
    ):
        return "bfloat16"
    return "float32"


def load_internvl(
    path: str | Path | None,
    *,
    lora_path: str | Path | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    is_random: bool = False,
    setting: str = "model_path",
    lora_setting: str = "lora_path",
    max_new_tokens: int = 512,
    max_patches: int = 12,
    batch_groups: bool = True,
    max_batch: int | None = None,
    prompt_format: str | None = None,
) -> InternVLEvaluator:
    """Load an InternVL ``-hf`` checkpoint directory (``config.json``, weights, processor files)
    offline, optionally with a PEFT LoRA adapter directory (``adapter_config.json``).

    ``setting`` / ``lora_setting`` name where the paths came from, for error messages.
    ``dtype``: ``"bfloat16"``, ``"float16"``, ``"float32"`` or ``None`` (:func:`default_dtype`).
    Raises :class:`ModelLoadError` naming the file and the setting when something is missing.
    """
    import torch
    from transformers import AutoProcessor, InternVLForConditionalGeneration

    if path is None or str(path).strip() == "":
        raise ModelLoadError(f"no InternVL checkpoint directory is set (setting {setting})")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ModelLoadError(
            f"InternVL checkpoint directory '{p}' does not exist or has no config.json (setting {setting})"
        )
    dt_name = dtype or default_dtype(device)
    dt = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
        dt_name
    )
    if dt is None:
        raise ModelLoadError(f"unknown dtype {dt_name!r}; use bfloat16, float16 or float32")
    try:
        model = InternVLForConditionalGeneration.from_pretrained(p, local_files_only=True, dtype=dt)
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(
            f"'{p}' could not be loaded as an InternVL -hf checkpoint ({exc}) (setting {setting})"
        ) from exc
    if not hasattr(processor, "image_token") or not hasattr(processor, "tokenizer"):
        raise ModelLoadError(f"'{p}' has no InternVL processor files (setting {setting})")
    name = f"internvl:{p.name}"
    if lora_path:
        from peft import PeftModel

        lp = Path(lora_path).expanduser()
        if not (lp / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"LoRA adapter directory '{lp}' has no adapter_config.json (setting {lora_setting})"
            )
        try:
            model = PeftModel.from_pretrained(model, lp, is_trainable=False)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelLoadError(
                f"LoRA adapter '{lp}' does not fit '{p}' ({exc}) (setting {lora_setting})"
            ) from exc
        name += f"+lora:{lp.name}"
    return InternVLEvaluator(
        model,
        processor,
        name,
        is_random,
        device,
        max_new_tokens,
        batch_groups,
        max_patches,
        max_batch,
        prompt_format,
    )
