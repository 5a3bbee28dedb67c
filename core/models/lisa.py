"""LISA-style segmentation MLLM: LLaVA + ``[SEG]`` token + ``text_hidden_fcs`` → SAM (§4.1).

On-disk layout accepted by :func:`load_lisa` (a local directory, loaded offline):

- a transformers ``LlavaForConditionalGeneration`` checkpoint (``config.json``, weights) with its
  processor (``AutoProcessor``: CLIP image processor + tokenizer that knows ``[SEG]``);
- ``text_hidden_fcs.pt``: the projection into SAM's prompt space, a state dict of
  ``Linear(d, d) → ReLU → Linear(d, 256) → Dropout`` (keys ``0.weight``, ``0.bias``,
  ``2.weight``, ``2.bias``), as LISA trains it.

Flow: the question is put in LISA's prompt, the model generates its answer; if it never emits
``[SEG]`` the answer template ``"Sure, it is [SEG]."`` is appended (and the trace says so). One
forward pass over the whole sequence then gives the last-layer hidden state at the position
that *predicts* ``[SEG]`` (LISA's one-token shift), projected by ``text_hidden_fcs`` into the
prompt embedding, and — through :mod:`core.models.attention` — that same position's attention
row over the image tokens at the chosen layers (default 14–30, App. B).

- optional ``rea2seg.json`` with ``{"image_aspect_ratio": "pad" | "crop", "prompt_template":
  "…{image}…{question}…"}`` (``{image}`` becomes the processor's image token).

Token → pixel geometry depends on how the model saw the image. ``pad`` (LLaVA-1.5, READ; the
default): the image is centred on a square of its mean colour and resized, so the ``g × g``
grid maps back to squares of side ``max(H, W) / g`` shifted by the padding. ``crop`` (LISA-7B-v1,
whose CLIP processor resizes the shortest side and centre-crops): the grid covers only the
central ``min(H, W)`` square, cells of side ``min(H, W) / g``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.models.attention import AttentionRowCapture
from core.models.base import ModelLoadError, PromptModelOutput

SEG_TOKEN = "[SEG]"
DEFAULT_PROMPT = "USER: {image}\n{question} Please output segmentation mask. ASSISTANT:"
ANSWER_TEMPLATE = "Sure, it is [SEG]."
DEFAULT_LAYERS = list(range(14, 31))


def expand_to_square(image_rgb: np.ndarray, fill: tuple[int, int, int]) -> tuple[np.ndarray, int, int]:
    """Centre the image on a square of side max(H, W); returns (square, pad_x, pad_y)."""
    h, w = image_rgb.shape[:2]
    side = max(h, w)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = np.asarray(fill, dtype=np.uint8)
    px, py = (side - w) // 2, (side - h) // 2
    out[py : py + h, px : px + w] = image_rgb
    return out, px, py


def crop_grid_boxes(image_hw: tuple[int, int], grid: int) -> np.ndarray:
    """float32 (grid², 4) xyxy boxes for a centre-cropped square input (``crop`` mode)."""
    h, w = image_hw
    side = min(h, w)
    return square_grid_boxes((side, side), grid, (-(w - side) / 2, -(h - side) / 2))


def square_grid_boxes(image_hw: tuple[int, int], grid: int, pad_xy: tuple[float, float]) -> np.ndarray:
    """float32 (grid², 4) xyxy boxes of the patch grid in original-image pixels (row-major)."""
    h, w = image_hw
    cell = max(h, w) / grid
    ys, xs = np.mgrid[0:grid, 0:grid]
    x0 = xs.ravel() * cell - pad_xy[0]
    y0 = ys.ravel() * cell - pad_xy[1]
    return np.stack([x0, y0, x0 + cell, y0 + cell], axis=1).astype(np.float32)


class LisaPromptModel:
    """A loaded LISA-style model; see the module docstring."""

    default_layers = DEFAULT_LAYERS

    def __init__(self, model, processor, text_hidden_fcs: torch.nn.Module, name: str, is_random: bool,
                 device: str = "cpu", max_new_tokens: int = 32, image_aspect_ratio: str = "pad",
                 prompt_template: str = DEFAULT_PROMPT) -> None:
        if "{image}" not in prompt_template or "{question}" not in prompt_template:
            raise ModelLoadError(f"{name}: prompt_template needs {{image}} and {{question}}")
        self.prompt_template = prompt_template
        if image_aspect_ratio not in ("pad", "crop"):
            raise ModelLoadError(f"{name}: image_aspect_ratio must be 'pad' or 'crop', got {image_aspect_ratio!r}")
        self.image_aspect_ratio = image_aspect_ratio
        self.model = model.to(device).eval()
        self.processor = processor
        self.fcs = text_hidden_fcs.to(device).eval()
        self.name = name
        self.is_random = is_random
        self.device = device
        self.max_new_tokens = max_new_tokens
        tok = processor.tokenizer
        self.seg_id = tok.convert_tokens_to_ids(SEG_TOKEN)
        if self.seg_id is None or self.seg_id == tok.unk_token_id:
            raise ModelLoadError(f"{name}: the tokenizer has no {SEG_TOKEN} token")
        self.image_token_id = model.config.image_token_id
        vc = model.config.vision_config
        self.grid = vc.image_size // vc.patch_size
        n = model.config.text_config.num_hidden_layers
        self.default_layers = [i for i in DEFAULT_LAYERS if i < n] or list(range(n // 2, n))

    def _prompt(self, question: str) -> str:
        return self.prompt_template.replace("{image}", self.processor.image_token).replace("{question}", question)

    def encode(self, image_rgb: np.ndarray, question: str, layers: list[int] | None = None) -> PromptModelOutput:
        layers = list(layers) if layers else self.default_layers
        ip = self.processor.image_processor
        if self.image_aspect_ratio == "pad":
            fill = tuple(int(round(m * 255)) for m in ip.image_mean)
            square, px, py = expand_to_square(image_rgb, fill)
            boxes = square_grid_boxes(image_rgb.shape[:2], self.grid, (px, py))
        else:  # the processor resizes the shortest side and centre-crops
            square = image_rgb
            boxes = crop_grid_boxes(image_rgb.shape[:2], self.grid)
        inputs = self.processor(images=square, text=self._prompt(question), return_tensors="pt").to(self.device)
        prompt_len = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            gen = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        # an answer may not carry image placeholders (no features exist for them)
        new = [t for t in gen[0, prompt_len:].tolist() if t != self.image_token_id]
        forced = self.seg_id not in new
        if forced:
            tail = self.processor.tokenizer(" " + ANSWER_TEMPLATE, add_special_tokens=False)["input_ids"]
            eos = self.processor.tokenizer.eos_token_id
            new = [t for t in new if t != eos] + tail
        new = new[: new.index(self.seg_id) + 1]
        ids = torch.cat([inputs["input_ids"][0], torch.tensor(new, device=self.device)])[None]
        seg_pos = ids.shape[1] - 1
        query = seg_pos - 1  # the hidden state that predicts [SEG]
        lm_layers = self.model.model.language_model.layers
        with torch.inference_mode(), AttentionRowCapture(lm_layers, layers, query) as cap:
            out = self.model(input_ids=ids, pixel_values=inputs["pixel_values"], attention_mask=torch.ones_like(ids),
                             output_hidden_states=True)
        hidden = out.hidden_states[-1][0, query]
        with torch.inference_mode():
            emb = self.fcs(hidden.float()[None])[0]
        rows = cap.rows()  # (n_layers, heads, T)
        img_pos = (ids[0] == self.image_token_id).nonzero().flatten()
        attention = rows[:, :, img_pos].cpu().numpy().astype(np.float32)
        text = self.processor.tokenizer.decode(new, skip_special_tokens=False)
        return PromptModelOutput(
            prompt_embedding=emb.cpu().numpy().astype(np.float32)[None],
            attention=attention,
            layers=layers,
            grid_hw=(self.grid, self.grid),
            token_boxes_xyxy=boxes,
            generated_text=text + (" (answer template appended: the model did not emit [SEG])" if forced else ""),
            prompt_token=SEG_TOKEN,
        )


def make_text_hidden_fcs(hidden: int, out_dim: int = 256) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(inplace=True),
                               torch.nn.Linear(hidden, out_dim), torch.nn.Dropout(0.0))


def load_lisa(path: str | Path, *, device: str = "cpu", is_random: bool = False, setting: str = "mllm_path",
              max_new_tokens: int = 32) -> LisaPromptModel:
    """Load a LISA-style model directory offline (layout in the module docstring)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    p = Path(path) if path else None
    if p is None or not p.is_dir():
        raise ModelLoadError(f"LISA model directory '{path}' does not exist (setting {setting})")
    fcs_file = p / "text_hidden_fcs.pt"
    if not fcs_file.is_file():
        raise ModelLoadError(f"'{fcs_file}' is missing: the [SEG] projection is needed (setting {setting})")
    try:
        model = LlavaForConditionalGeneration.from_pretrained(p, local_files_only=True, attn_implementation="sdpa")
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
        state = torch.load(fcs_file, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"'{p}' could not be loaded as a LISA-style model ({exc}) (setting {setting})") from exc
    fcs = make_text_hidden_fcs(model.config.text_config.hidden_size, state["2.weight"].shape[0])
    fcs.load_state_dict(state)
    extra = {}
    if (p / "rea2seg.json").is_file():
        import json

        try:
            extra = json.loads((p / "rea2seg.json").read_text())
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"'{p / 'rea2seg.json'}' is not valid JSON ({exc}) (setting {setting})") from exc
    return LisaPromptModel(model, processor, fcs, name=f"lisa:{p.name}", is_random=is_random, device=device,
                           max_new_tokens=max_new_tokens, image_aspect_ratio=extra.get("image_aspect_ratio", "pad"),
                           prompt_template=extra.get("prompt_template", DEFAULT_PROMPT))
