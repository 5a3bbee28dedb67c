"""Local evaluator: InternVL3 through transformers' native ``InternVLForConditionalGeneration``
and ``AutoProcessor`` (the ``-hf`` checkpoints), with an optional PEFT LoRA adapter (App. B:
InternVL3-8B fine-tuned with LoRA), loaded offline from local paths only.

Input per group (§4.3, App. B): one user turn with the original image, then the group's masks as
white-on-black pictures (:func:`core.evaluator.base.mask_image`), then the text, laid out by
:func:`core.evaluator.prompt.hf_user_content` through the checkpoint's own chat template.

Image resolution and the conversation: :func:`core.evaluator.inputs.build_evaluator_input`, the
same function a trainer uses — the system turn, then a group's images sharing ``max_patches``
tiles (12, InternVL's ``max_dynamic_patch``), ``max_patches // images`` per image (InternVL's own
multi-image recipe; 2 per image for the original and five masks, plus a thumbnail each). The
choice is recorded in each trace (``EvaluatorTrace.image_tiling``) and in the prompt format id.

Prompt format: an adapter directory's ``rea2seg_adapter.json`` (or the ``prompt_format`` setting)
declares the format it was trained on; :func:`load_internvl` refuses with
:class:`core.evaluator.adapter.PromptFormatError` when this evaluator would send another (other
prompt version or tile budget; with ``cot`` given, the other chain-of-thought choice).

All groups of a sample go through left-padded batched ``generate`` calls (``batch_groups=True``,
at most ``max_batch`` groups per call, groups of one size per call since they share a tiling); ``batch_groups=False`` runs one call per group
(``bench/evaluator_batching.py`` compares the two). Greedy decoding.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluator.adapter import check_prompt_format, declared_format
from core.evaluator.base import EvaluatorBase, GroupResult, check_inputs
from core.evaluator.inputs import EvaluatorInput, build_evaluator_input, chat_text, encode_inputs
from core.evaluator.parser import parse_scores
from core.evaluator.progress import TextFn
from core.evaluator.prompt import MAX_PATCHES, prompt_format
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
        max_patches: int = MAX_PATCHES,
        max_batch: int | None = None,
        prompt_format: str | None = None,
        cot: bool | None = None,
    ) -> None:
        import torch  # noqa: F401 - the model needs it; imported here so the module imports light

        if int(max_patches) < 1:
            raise ValueError(f"max_patches must be at least 1, got {max_patches}")
        # a 4-bit model is placed on its device when loaded and cannot be moved
        quantized = bool(getattr(model, "is_loaded_in_4bit", False))
        self.model = (model if quantized else model.to(device)).eval()
        self.processor = processor
        self.name = name
        self.is_random = bool(is_random)
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.batch_groups = bool(batch_groups)
        self.max_patches = int(max_patches)
        self.max_batch = max_batch
        # the prompt format a fine-tuned adapter was trained on (its rea2seg_adapter.json); refused
        # here, before any sample, when this evaluator would send another. None: a base model.
        check_prompt_format(prompt_format, self.max_patches, cot, who=f"evaluator {name}")
        self.prompt_format = prompt_format
        tok = processor.tokenizer
        tok.padding_side = "left"
        self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self._image_token = getattr(processor, "image_token", "<IMG_CONTEXT>")

    # -- prompt --------------------------------------------------------------------------------
    def format_for(self, cot: bool) -> str:
        """The prompt format id this evaluator sends with or without chain of thought."""
        return prompt_format(cot, self.max_patches)

    def inputs(
        self, image_rgb: np.ndarray, question: str, masks: list[np.ndarray], cot: bool
    ) -> EvaluatorInput:
        """One group's input (:func:`core.evaluator.inputs.build_evaluator_input`)."""
        return build_evaluator_input(
            image_rgb, question, masks, cot=cot, max_patches=self.max_patches
        )

    def prompt_text(self, question: str, n_masks: int, cot: bool) -> str:
        """The chat-templated text for one group (images still as one placeholder each)."""
        blank = np.zeros((1, 1, 3), np.uint8)
        item = self.inputs(blank, question, [np.zeros((1, 1), bool)] * n_masks, cot)
        try:
            return chat_text(self.processor, item)
        except ValueError as exc:
            raise ModelLoadError(f"{self.name}: {exc}") from None

    @property
    def image_tiling(self) -> str:
        """How images are tiled, as recorded in the trace."""
        return f"dynamic, {self.max_patches} tiles per group, {self.max_patches} // images each"

    # -- generation ----------------------------------------------------------------------------
    def _generate(self, items: list[EvaluatorInput], on_text: TextFn | None = None) -> list[str]:
        import torch

        try:
            inputs = encode_inputs(self.processor, items)
        except ValueError as exc:
            if "chat template" in str(exc):
                raise ModelLoadError(f"{self.name}: {exc}") from None
            raise
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        extra = {} if on_text is None else {"streamer": _streamer(self.processor, on_text)}
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self._pad_id,
                **extra,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def score_group_stream(
        self,
        image_rgb: np.ndarray,
        question: str,
        masks: list[np.ndarray],
        cot: bool,
        on_text: TextFn,
    ) -> GroupResult:
        """Score one group, handing the answer to ``on_text`` word by word as it is generated
        (transformers' ``TextStreamer``); the result is what :meth:`score_group` returns."""
        check_inputs(image_rgb, [list(masks)])
        item = self.inputs(image_rgb, question, list(masks), cot)
        prompt = chat_text(self.processor, item)
        t = time.perf_counter()
        raw = self._generate([item], on_text)[0]
        parsed = parse_scores(raw, len(masks))
        return GroupResult(
            parsed.scores, parsed.cot, raw, prompt, parsed.error, time.perf_counter() - t
        )

    def _score_checked(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """All groups in batched generate calls (see :class:`core.evaluator.base.MaskEvaluator`)."""
        items = [self.inputs(image_rgb, question, g, cot) for g in groups]
        prompts = [chat_text(self.processor, it) for it in items]
        step = max(1, self.max_batch or len(groups)) if self.batch_groups else 1
        # consecutive groups of one size share a tiling and can share a call
        chunks: list[list[int]] = []
        for j in range(len(groups)):
            if chunks and len(chunks[-1]) < step and len(groups[chunks[-1][0]]) == len(groups[j]):
                chunks[-1].append(j)
            else:
                chunks.append([j])
        raws: list[str] = []
        seconds: list[float] = []
        for chunk in chunks:
            t = time.perf_counter()
            raws += self._generate([items[j] for j in chunk])
            seconds += [(time.perf_counter() - t) / len(chunk)] * len(chunk)
        results = []
        for g, p, raw, sec in zip(groups, prompts, raws, seconds, strict=True):
            parsed = parse_scores(raw, len(g))
            results.append(GroupResult(parsed.scores, parsed.cot, raw, p, parsed.error, sec))
        return results


def _streamer(processor: Any, on_text: TextFn) -> Any:
    """A transformers ``TextStreamer`` that hands each finished piece of new text to
    ``on_text`` instead of printing it (the prompt is skipped)."""
    from transformers import TextStreamer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    return _Streamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)


def checkpoint_problem(path: str | Path | None, setting: str = "model_path") -> str | None:
    """What :func:`load_internvl` would say about ``path`` before loading anything (``None``
    when it is a directory with a ``config.json``)."""
    if path is None or str(path).strip() == "":
        return f"no InternVL checkpoint directory is set (setting {setting})"
    p = Path(str(path)).expanduser()
    if not (p / "config.json").is_file():
        return f"InternVL checkpoint directory '{p}' does not exist or has no config.json (setting {setting})"
    return None


def bitsandbytes_problem(device: str) -> str | None:
    """Why 4-bit loading is not offered (``None`` when it is): it needs the optional
    bitsandbytes package and a CUDA device."""
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        return "4-bit loading needs the bitsandbytes package, which is not installed"
    if not str(device).startswith("cuda"):
        return f"4-bit loading needs a CUDA device, not {device!r}"
    return None


def quantization(dtype: str, device: str, *, setting: str = "dtype") -> dict[str, Any]:
    """``from_pretrained`` keywords for ``dtype``: ``{}`` for the float dtypes; for ``"4bit"``
    a bitsandbytes NF4 ``quantization_config`` (bfloat16 compute) placed on ``device``, or a
    :class:`ModelLoadError` saying why it cannot be (bitsandbytes is never required)."""
    if dtype != "4bit":
        return {}
    problem = bitsandbytes_problem(device)
    if problem is not None:
        raise ModelLoadError(f"{problem}; choose bfloat16, float16 or float32 (setting {setting})")
    import torch
    from transformers import BitsAndBytesConfig

    cfg = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )
    return {"quantization_config": cfg, "device_map": {"": device}}


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
    max_patches: int = MAX_PATCHES,
    batch_groups: bool = True,
    max_batch: int | None = None,
    prompt_format: str | None = None,
    cot: bool | None = None,
) -> InternVLEvaluator:
    """Load an InternVL ``-hf`` checkpoint directory (``config.json``, weights, processor files)
    offline, optionally with a PEFT LoRA adapter directory (``adapter_config.json``).

    ``setting`` / ``lora_setting`` name where the paths came from, for error messages.
    ``dtype``: ``"bfloat16"``, ``"float16"``, ``"float32"``, ``"4bit"`` (bitsandbytes NF4 on a
    CUDA device, when bitsandbytes is installed: :func:`quantization`) or ``None``
    (:func:`default_dtype`).
    ``prompt_format``: the format the adapter was trained on when its directory has no
    ``rea2seg_adapter.json``; ``cot``: the chain-of-thought choice the caller will run with
    (``None``: checked later, by stage 2).
    Raises :class:`ModelLoadError` naming the file and the setting when something is missing,
    :class:`core.evaluator.adapter.PromptFormatError` (before loading any weights) when the
    declared format is not the one this evaluator would send.
    """
    import torch
    from transformers import AutoProcessor, InternVLForConditionalGeneration

    problem = checkpoint_problem(path, setting)
    if problem is not None:
        raise ModelLoadError(problem)
    p = Path(str(path)).expanduser()
    declared = declared_format(
        prompt_format, lora_path or p, setting=f"prompt_format of {lora_setting}"
    )
    check_prompt_format(
        declared, int(max_patches), cot, who=f"the evaluator adapter '{lora_path or p}'"
    )
    dt_name = dtype or default_dtype(device)
    quant = quantization(dt_name, device, setting=f"dtype of {setting}")
    dt = {
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
        "float32": torch.float32,
        "4bit": torch.bfloat16,
    }.get(dt_name)
    if dt is None:
        raise ModelLoadError(f"unknown dtype {dt_name!r}; use bfloat16, float16, float32 or 4bit")
    try:
        model = InternVLForConditionalGeneration.from_pretrained(
            p, local_files_only=True, dtype=dt, **quant
        )
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
        declared,
        cot,
    )
