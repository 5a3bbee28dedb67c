"""LISA-style segmentation MLLM: LLaVA + ``[SEG]`` token + ``text_hidden_fcs`` → SAM (§4.1, App. B).

Accepted directory layout (:func:`load_lisa`, offline, ``local_files_only=True``):

- a transformers ``LlavaForConditionalGeneration`` checkpoint: ``config.json`` with
  ``text_config`` (Llama) and ``vision_config`` (CLIP), weights ``*.safetensors`` (or
  ``pytorch_model*.bin``), and the processor (``processor_config.json``, the CLIP image processor
  config, the tokenizer files). The tokenizer must know ``[SEG]``. A released LISA checkpoint
  (``LISAForCausalLM``: flat Llama config, ``model.mm_projector``) is *not* this layout; it is
  refused with a pointer to ``rea2seg convert lisa`` (:mod:`core.models.convert`).
- the ``[SEG]`` projection (LISA's ``text_hidden_fcs[0]``: Linear(d, d) → ReLU → Linear(d, 256)
  → Dropout), from the first of:
  1. ``text_hidden_fcs.pt``: a state dict with keys ``0.weight 0.bias 2.weight 2.bias`` (keys
     prefixed ``text_hidden_fcs.0.`` or ``model.text_hidden_fcs.0.`` are accepted too);
  2. tensors inside the weight files named ``model.text_hidden_fcs.0.{0,2}.{weight,bias}``
     (LISA's own names) or ``text_hidden_fcs.0.{0,2}.{weight,bias}``.
- SAM (for the SAM backend, not used here; see :func:`find_lisa_sam` and
  :mod:`core.models.config`): ``sam.pth`` (segment-anything key names) or tensors inside the
  weight files prefixed ``model.visual_model.`` / ``visual_model.`` (LISA's names), unless the
  preset names a separate SAM checkpoint.
- optional ``rea2seg.json`` (:class:`LisaOptions`): ``image_aspect_ratio`` (``"crop"`` — the
  default: LISA's code sets LLaVA's aspect mode to ``"square"``, i.e. CLIP's own resize + centre
  crop, for LLaVA-v1 and LLaVA-1.5 bases alike — or ``"pad"`` for models trained with
  LLaVA-1.5's ``expand2square``), ``prompt_template`` (with ``{image}`` and ``{question}``;
  default :func:`default_prompt`, LISA's),
  ``answer_template`` (must contain ``[SEG]``), ``max_new_tokens``.

Flow of :meth:`LisaPromptModel.encode` (§4.1–4.2):
1. The question goes into the prompt (:func:`lisa_query` wording). By default
   (``max_new_tokens = 0``) nothing is generated: ``answer_template`` ``"[SEG]."`` is fed as the
   assistant turn, as LISA's own ReasonSeg validation does. With ``max_new_tokens > 0`` the model
   generates greedily and stops at ``[SEG]`` (or EOS, or the limit); if it never emits ``[SEG]``,
   the template is appended and the output says so (``extra["seg_forced"]``, and the text).
2. One forward pass (SDPA) over prompt + answer up to the first ``[SEG]``. LISA's one-token
   shift: the embedding is ``text_hidden_fcs`` of the last-layer (final-norm) hidden state at
   the position *before* ``[SEG]`` — the one predicting it (:func:`seg_query_position`).
3. The attention row of that same position over the image tokens, at the chosen layers
   (default 14–30 inclusive, App. B), is captured by :class:`core.models.attention.AttentionRowCapture`.

Token geometry (:mod:`core.models.tokens`): ``crop`` → :func:`crop_token_boxes` (e.g. LISA-7B-v1,
CLIP-L/14 at 224 px: 16 × 16 = 256 tokens); ``pad`` → :func:`pad_token_boxes` (LLaVA-1.5, CLIP
336 px: 24 × 24 = 576 tokens).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.models.attention import AttentionRowCapture
from core.models.base import ModelLoadError, PromptModelOutput, read_options_file
from core.models.tokens import (  # re-exported: older callers import the geometry from here
    crop_grid_boxes,
    crop_token_boxes,
    expand_to_square,
    llava_pad_colour,
    pad_token_boxes,
    square_grid_boxes,
)

__all__ = [
    "ANSWER_TEMPLATE",
    "DEFAULT_LAYERS",
    "DEFAULT_PROMPT",
    "SEG_TOKEN",
    "LisaOptions",
    "LisaPromptModel",
    "LisaSamSource",
    "PreparedPass",
    "crop_grid_boxes",
    "crop_token_boxes",
    "default_prompt",
    "expand_to_square",
    "find_lisa_sam",
    "llava_pad_colour",
    "load_lisa",
    "make_text_hidden_fcs",
    "pad_token_boxes",
    "read_lisa_sam_state_dict",
    "read_text_hidden_fcs",
    "seg_query_position",
    "square_grid_boxes",
]

SEG_TOKEN = "[SEG]"
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human's questions."
)
# LISA's ReasonSeg validation turn (utils/dataset.py ValDataset with the llava_v1 conversation):
# "<image>\n " + the query; the query wrapped by lisa_query; the assistant turn teacher-forced.
DEFAULT_PROMPT = LLAVA_V1_SYSTEM + " USER: {image}\n {question} ASSISTANT:"
LISA_SENTENCE = "{text} Please output segmentation mask."
LISA_PHRASE = "What is {text} in this image? Please output segmentation mask."
ANSWER_TEMPLATE = "[SEG]."  # LISA's validation answer, fed as input (teacher forcing)
DEFAULT_LAYERS = list(range(14, 31))  # App. B: LLaVA layers 14 to 30, 0-based
FCS_FILE = "text_hidden_fcs.pt"
SAM_FILE = "sam.pth"
SAM_PREFIXES = ("model.visual_model.", "visual_model.")
_FCS_KEY = re.compile(r"^(?:.*text_hidden_fcs\.0\.)?([02]\.(?:weight|bias))$")


@dataclass(frozen=True)
class LisaOptions:
    """Per-model settings read from ``rea2seg.json`` (module docstring)."""

    image_aspect_ratio: str = "crop"
    prompt_template: str = ""  # "" = LISA's prompt (see default_prompt)
    answer_template: str = ANSWER_TEMPLATE
    max_new_tokens: int = (
        0  # 0 = LISA's validation: no generation, the answer template teacher-forced
    )

    def __post_init__(self) -> None:
        if self.image_aspect_ratio not in ("pad", "crop"):
            raise ValueError(
                f"image_aspect_ratio must be 'pad' or 'crop', got {self.image_aspect_ratio!r}"
            )
        if self.prompt_template and (
            "{image}" not in self.prompt_template or "{question}" not in self.prompt_template
        ):
            raise ValueError("prompt_template needs {image} and {question}")
        if SEG_TOKEN not in self.answer_template:
            raise ValueError(f"answer_template must contain {SEG_TOKEN}")
        if int(self.max_new_tokens) < 0:
            raise ValueError("max_new_tokens must be ≥ 0")


def read_options(path: Path, setting: str) -> LisaOptions:
    """:class:`LisaOptions` from ``path/rea2seg.json`` (defaults when absent)."""
    return read_options_file(path, LisaOptions, setting)


def lisa_query(text: str, is_sentence: bool | None = True) -> str:
    """The query as LISA's ReasonSeg validation words it: a sentence (``is_sentence`` true, or
    unknown) → ``"{text} Please output segmentation mask."``; a phrase (``is_sentence`` false) →
    ``"What is {text} in this image? Please output segmentation mask."``. ``text`` is stripped."""
    return (LISA_PHRASE if is_sentence is False else LISA_SENTENCE).format(text=str(text).strip())


def default_prompt(tokenizer: Any) -> str:
    """LISA's prompt (LLaVA's ``llava_v1`` conversation, ReasonSeg validation wording): the system
    sentence, ``USER: <image>\\n {question} ASSISTANT:`` (LISA's space after the newline), the
    question being :func:`lisa_query`'s wording, with the image wrapped in
    ``<im_start>``/``<im_end>`` when the tokenizer has them (LISA trains with
    ``use_mm_start_end``). The assistant turn ``" [SEG]."`` is then fed, not generated."""
    known = all(
        tokenizer.convert_tokens_to_ids(t) not in (None, tokenizer.unk_token_id)
        for t in ("<im_start>", "<im_end>")
    )
    return DEFAULT_PROMPT.replace("{image}", "<im_start>{image}<im_end>" if known else "{image}")


def seg_query_position(
    ids: torch.Tensor | np.ndarray | list[int], seg_id: int, start: int = 0
) -> int:
    """Index of the hidden state that *predicts* the first ``[SEG]`` at or after ``start``.

    LISA's one-token shift: it masks ``input_ids[:, 1:] == seg`` (padded by one False at the
    end), so the hidden state used sits one position before ``[SEG]``. ids: int (T,) — the full
    sequence as the language model sees it (image placeholders expanded). Raises ``ValueError``
    when there is no ``[SEG]`` or it is the first token."""
    seq = np.asarray(ids.tolist() if isinstance(ids, torch.Tensor) else ids).ravel()
    hits = np.flatnonzero(seq[start:] == seg_id)
    if hits.size == 0:
        raise ValueError(f"no {SEG_TOKEN} (id {seg_id}) in the sequence after position {start}")
    pos = int(hits[0]) + start
    if pos == 0:
        raise ValueError(f"{SEG_TOKEN} is the first token: nothing predicts it")
    return pos - 1


def make_text_hidden_fcs(hidden: int, out_dim: int = 256) -> torch.nn.Sequential:
    """LISA's projection: Linear(hidden, hidden) → ReLU → Linear(hidden, out_dim) → Dropout(0)."""
    return torch.nn.Sequential(
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(inplace=True),
        torch.nn.Linear(hidden, out_dim),
        torch.nn.Dropout(0.0),
    )


def _weight_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.safetensors"))
    return files or sorted(path.glob("pytorch_model*.bin"))


def read_tensors(path: Path, wanted: Any) -> dict[str, torch.Tensor]:
    """Tensors of the directory's weight files whose names satisfy ``wanted(name)``."""
    out: dict[str, torch.Tensor] = {}
    for f in _weight_files(path):
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), "pt") as fh:
                for k in fh.keys():
                    if wanted(k):
                        out[k] = fh.get_tensor(k)
        else:
            state = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
            out.update({k: v for k, v in state.items() if wanted(k)})
    return out


def _weight_names(path: Path) -> list[str]:
    names: list[str] = []
    for f in _weight_files(path):
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), "pt") as fh:
                names += list(fh.keys())
        else:
            names += list(torch.load(f, map_location="cpu", weights_only=True, mmap=True))
    return names


def _normalise_fcs(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        m = _FCS_KEY.match(k)
        if m:
            out[m.group(1)] = v
    return out


def read_text_hidden_fcs(path: str | Path, setting: str = "mllm_path") -> dict[str, torch.Tensor]:
    """The ``[SEG]`` projection's state dict (keys ``0.weight 0.bias 2.weight 2.bias``) from a
    model directory: ``text_hidden_fcs.pt`` first, else the weight files (module docstring)."""
    p = Path(path)
    f = p / FCS_FILE
    if f.is_file():
        try:
            raw = torch.load(f, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as exc:
            raise ModelLoadError(f"'{f}' could not be read ({exc}) (setting {setting})") from exc
    else:
        raw = read_tensors(p, lambda k: "text_hidden_fcs." in k)
    state = _normalise_fcs(raw if isinstance(raw, dict) else {})
    missing = sorted({"0.weight", "0.bias", "2.weight", "2.bias"} - set(state))
    if missing and f.is_file():
        raise ModelLoadError(f"'{f}' lacks {missing} of the [SEG] projection (setting {setting})")
    if missing and not state:
        raise ModelLoadError(
            f"no [SEG] projection: '{f}' is missing and the weight files in '{p}' have no "
            f"text_hidden_fcs tensors (setting {setting})"
        )
    if missing:
        raise ModelLoadError(
            f"the weight files in '{p}' lack {missing} of the [SEG] projection "
            f"(text_hidden_fcs) (setting {setting})"
        )
    return state


@dataclass(frozen=True)
class LisaSamSource:
    """Where a LISA-style directory keeps its SAM: a segment-anything ``file``, or the
    ``weights`` files of ``directory`` under ``prefix``."""

    kind: str  # "file" | "weights"
    path: Path
    prefix: str = ""


def find_lisa_sam(path: str | Path) -> LisaSamSource | None:
    """``sam.pth`` in the directory, else SAM tensors in its weight files, else ``None``."""
    p = Path(path)
    if (p / SAM_FILE).is_file():
        return LisaSamSource("file", p / SAM_FILE)
    if not p.is_dir():
        return None
    names = _weight_names(p)
    for prefix in SAM_PREFIXES:
        if any(n.startswith(prefix) for n in names):
            return LisaSamSource("weights", p, prefix)
    return None


def read_lisa_sam_state_dict(path: str | Path) -> dict[str, torch.Tensor] | None:
    """SAM's state dict (segment-anything key names) from a LISA-style directory, or ``None``."""
    src = find_lisa_sam(path)
    if src is None:
        return None
    if src.kind == "file":
        state = torch.load(src.path, map_location="cpu", weights_only=True)
        return (
            state["model"]
            if isinstance(state, dict) and isinstance(state.get("model"), dict)
            else state
        )
    raw = read_tensors(src.path, lambda k: k.startswith(src.prefix))
    return {k[len(src.prefix) :]: v for k, v in raw.items()}


def model_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """A config's dtype (name, torch dtype, or ``None``/``"auto"`` for the device's default)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "", "auto"):
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in table:
        raise ModelLoadError(
            f"unknown dtype {dtype!r}: use float32, bfloat16 or float16 (setting dtype)"
        )
    return table[dtype]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' logging at ERROR level for the duration (its load report lists every tensor
    the model does not use, e.g. all of LISA's SAM weights; missing tensors are checked by us)."""
    from transformers.utils import logging as tf_logging

    before = tf_logging.get_verbosity()
    tf_logging.set_verbosity_error()
    try:
        yield
    finally:
        tf_logging.set_verbosity(before)


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) array, or ``ValueError`` saying what is wrong."""
    a = np.asarray(image_rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8 or min(a.shape[:2]) < 1:
        raise ValueError(f"image must be uint8 (H, W, 3), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


@dataclass
class PreparedPass:
    """The inputs of the final forward pass of a prompt model, and where to read it.

    kwargs: keyword arguments for the transformers model (``input_ids`` (1, T) included);
    query_index: the position whose hidden state and attention row are used;
    image_positions: int (n_image_tokens,) positions of the image tokens, in grid order;
    prompt_len: tokens before the answer; answer_ids: the answer as fed (model ids);
    token_boxes_xyxy / grid_hw: the token geometry (:mod:`core.models.tokens`)."""

    kwargs: dict[str, Any]
    query_index: int
    image_positions: torch.Tensor
    prompt_len: int
    answer_ids: list[int]
    token_boxes_xyxy: np.ndarray
    grid_hw: tuple[int, int]
    extra: dict[str, Any]

    def output(
        self,
        emb: torch.Tensor,
        rows: torch.Tensor,
        layers: list[int],
        text: str,
        prompt_token: str,
        extra: dict[str, Any],
    ) -> PromptModelOutput:
        """The pass's :class:`PromptModelOutput`: the prompt embedding ``emb`` and the captured
        attention rows (n_layers, n_heads, T) cut to the image tokens, as float32 arrays."""
        return PromptModelOutput(
            prompt_embedding=emb.cpu().numpy().astype(np.float32),
            attention=rows[:, :, self.image_positions].cpu().numpy().astype(np.float32),
            layers=layers,
            grid_hw=self.grid_hw,
            token_boxes_xyxy=self.token_boxes_xyxy,
            generated_text=text,
            prompt_token=prompt_token,
            extra={**extra, "sequence_length": int(self.kwargs["input_ids"].shape[1])},
        )


class LisaPromptModel:
    """A loaded LISA-style model implementing :class:`core.models.base.PromptModel` (module docstring)."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        text_hidden_fcs: torch.nn.Module,
        name: str,
        is_random: bool,
        device: str = "cpu",
        options: LisaOptions | None = None,
    ) -> None:
        self.options = options or LisaOptions()
        self.model = model.to(device).eval()
        self.processor = processor
        self.fcs = text_hidden_fcs.to(device).float().eval()
        self.name = name
        self.is_random = is_random
        self.device = device
        tok = processor.tokenizer
        self.seg_id = tok.convert_tokens_to_ids(SEG_TOKEN)
        if self.seg_id is None or self.seg_id == tok.unk_token_id:
            raise ModelLoadError(f"{name}: the tokenizer has no {SEG_TOKEN} token")
        self.image_token_id = int(model.config.image_token_id)
        vc = model.config.vision_config
        self.grid = int(vc.image_size // vc.patch_size)
        n = model.config.text_config.num_hidden_layers
        self.default_layers = [i for i in DEFAULT_LAYERS if i < n] or list(range(n // 2, n))
        self._answer_ids = tok(" " + self.options.answer_template, add_special_tokens=False)[
            "input_ids"
        ]
        if self.seg_id not in self._answer_ids:
            raise ModelLoadError(
                f"{name}: answer_template {self.options.answer_template!r} does not tokenize to {SEG_TOKEN}"
            )

    # kept for callers that read these directly
    @property
    def image_aspect_ratio(self) -> str:
        return self.options.image_aspect_ratio

    @property
    def max_new_tokens(self) -> int:
        return int(self.options.max_new_tokens)

    def _prompt(self, question: str, is_sentence: bool | None = None) -> str:
        """The prompt text. With the default template the question is worded by :func:`lisa_query`;
        a custom ``prompt_template`` gets the question as it is."""
        if self.options.prompt_template:
            template = self.options.prompt_template
        else:
            template, question = (
                default_prompt(self.processor.tokenizer),
                lisa_query(question, is_sentence),
            )
        return template.replace("{image}", self.processor.image_token).replace(
            "{question}", question
        )

    def _image_and_boxes(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hw = image_rgb.shape[:2]
        ip = self.processor.image_processor
        if self.options.image_aspect_ratio == "pad":
            square, _, _ = expand_to_square(image_rgb, llava_pad_colour(ip.image_mean))
            return square, pad_token_boxes(hw, self.grid)
        size, crop = ip.size, ip.crop_size
        se = (
            size.get("shortest_edge")
            if isinstance(size, dict)
            else getattr(size, "shortest_edge", None)
        )
        ch = crop["height"] if isinstance(crop, dict) else crop.height
        cw = crop["width"] if isinstance(crop, dict) else crop.width
        return image_rgb, crop_token_boxes(hw, self.grid, se, (ch, cw))

    def answer_ids(self, generated: list[int]) -> tuple[list[int], bool]:
        """The answer as fed to the second pass, up to and including the first ``[SEG]``, and
        whether ``answer_template`` had to be appended (the model never emitted ``[SEG]``)."""
        eos = self.processor.tokenizer.eos_token_id
        new = [t for t in generated if t != self.image_token_id]  # no features exist for these
        forced = self.seg_id not in new
        if forced:
            new = [t for t in new if t != eos] + list(self._answer_ids)
        return new[: new.index(self.seg_id) + 1], forced

    def prepare(
        self, image_rgb: np.ndarray, question: str, is_sentence: bool | None = None
    ) -> PreparedPass:
        """Steps 1–2 of the flow up to the second pass's inputs (generation included)."""
        image_rgb = check_image(image_rgb)
        model_image, boxes = self._image_and_boxes(image_rgb)
        inputs = self.processor(
            images=model_image, text=self._prompt(question, is_sentence), return_tensors="pt"
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        prompt_len = int(inputs["input_ids"].shape[1])
        generated: list[int] = []
        if self.max_new_tokens > 0:
            tok = self.processor.tokenizer
            stop = [t for t in (tok.eos_token_id, self.seg_id) if t is not None]
            with torch.inference_mode():
                gen = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    eos_token_id=stop,
                    pad_token_id=tok.pad_token_id or tok.eos_token_id,
                )
            generated = gen[0, prompt_len:].tolist()
        answer, forced = self.answer_ids(generated)
        forced = (
            forced and self.max_new_tokens > 0
        )  # with 0 the template is LISA's teacher-forced answer
        ids = torch.cat(
            [inputs["input_ids"][0], torch.tensor(answer, device=self.device, dtype=torch.long)]
        )[None]
        query = seg_query_position(ids[0], self.seg_id, start=prompt_len)
        img_pos = (ids[0] == self.image_token_id).nonzero().flatten()
        if img_pos.numel() != self.grid * self.grid:
            raise RuntimeError(
                f"{self.name}: {img_pos.numel()} image tokens in the sequence, expected {self.grid}²"
            )
        kwargs = {
            "input_ids": ids,
            "pixel_values": inputs["pixel_values"],
            "attention_mask": torch.ones_like(ids),
        }
        return PreparedPass(
            kwargs,
            query,
            img_pos,
            prompt_len,
            answer,
            boxes,
            (self.grid, self.grid),
            {"seg_forced": forced},
        )

    def encode(
        self,
        image_rgb: np.ndarray,
        question: str,
        layers: list[int] | None = None,
        is_sentence: bool | None = None,
    ) -> PromptModelOutput:
        """image_rgb: uint8 (H, W, 3). Prompt embedding float32 (1, 256) and the attention rows
        float32 (n_layers, n_heads, gh*gw) of the position predicting ``[SEG]`` (module docstring).
        ``is_sentence``: the sample's flag (ReasonSeg); ``False`` words the query as a phrase."""
        layers = [int(i) for i in layers] if layers else list(self.default_layers)
        sp = self.prepare(image_rgb, question, is_sentence)
        with (
            torch.inference_mode(),
            AttentionRowCapture(
                self.model.model.language_model.layers, layers, sp.query_index
            ) as cap,
        ):
            out = self.model.model(**sp.kwargs, use_cache=False)
            emb = self.fcs(out.last_hidden_state[0, sp.query_index].float()[None])
        forced = bool(sp.extra["seg_forced"])
        text = self.processor.tokenizer.decode(sp.answer_ids, skip_special_tokens=False)
        if forced:
            text += " (answer template appended: the model did not emit [SEG])"
        return sp.output(
            emb,
            cap.rows(),
            layers,
            text,
            SEG_TOKEN,
            {
                "seg_forced": forced,
                "query_position": sp.query_index,
                "image_aspect_ratio": self.options.image_aspect_ratio,
            },
        )


def _check_llava_layout(p: Path, setting: str) -> None:
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise ModelLoadError(
            f"'{p}' has no config.json: not a transformers model directory (setting {setting})"
        )
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"'{cfg_file}' is not valid JSON ({exc}) (setting {setting})") from exc
    if "text_config" not in cfg or "vision_config" not in cfg:
        hint = (
            " It looks like a released LISA/LLaVA checkpoint; convert it first with "
            "`rea2seg convert lisa SRC --out DST --clip CLIP_DIR`."
            if "mm_vision_tower" in cfg
            or "LISAForCausalLM" in cfg.get("architectures", [])
            or "out_dim" in cfg
            else ""
        )
        raise ModelLoadError(
            f"'{cfg_file}' is not a LlavaForConditionalGeneration config (no text_config/"
            f"vision_config).{hint} (setting {setting})"
        )


def model_dir(path: str | Path | None, family: str, setting: str) -> Path:
    """``path`` (``~`` expanded) when it is a directory, else a :class:`ModelLoadError`."""
    p = Path(path).expanduser() if path else None
    if p is None or not p.is_dir():
        raise ModelLoadError(
            f"{family} model directory '{path}' does not exist (setting {setting})"
        )
    return p


def load_pretrained(
    model_cls: Any, p: Path, family: str, setting: str, dtype: str | torch.dtype | None, device: str
) -> tuple[Any, Any]:
    """(model, processor) of a transformers directory, offline; weights that leave any model
    tensor uninitialised are a :class:`ModelLoadError`, never silently random."""
    from transformers import AutoProcessor

    try:
        with quiet_transformers():
            model, info = model_cls.from_pretrained(
                p,
                local_files_only=True,
                attn_implementation="sdpa",
                dtype=model_dtype(dtype, device),
                output_loading_info=True,
            )
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"'{p}' could not be loaded as a {family}-style model ({exc}) (setting {setting})"
        ) from exc
    missing = list(info.get("missing_keys", []))
    if missing:
        raise ModelLoadError(
            f"'{p}': the weights lack {len(missing)} model tensors (e.g. {sorted(missing)[:3]}); "
            f"refusing to run with random weights (setting {setting})"
        )
    return model, processor


def load_lisa(
    path: str | Path,
    *,
    device: str = "cpu",
    is_random: bool = False,
    setting: str = "mllm_path",
    max_new_tokens: int | None = None,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> LisaPromptModel:
    """Load a LISA-style model directory offline (layout in the module docstring).

    ``max_new_tokens`` overrides ``rea2seg.json``; ``dtype`` ``None``/"auto" = float32 on CPU,
    bfloat16 on CUDA. Errors are :class:`ModelLoadError` naming the file and ``setting``; weights
    that leave any model parameter uninitialised are an error, never silently random."""
    from transformers import LlavaForConditionalGeneration

    p = model_dir(path, "LISA", setting)
    _check_llava_layout(p, setting)
    options = read_options(p, setting)
    if max_new_tokens is not None:
        if int(max_new_tokens) < 0:
            raise ModelLoadError(
                f"max_new_tokens must be ≥ 0, got {max_new_tokens} (setting max_new_tokens)"
            )
        options = dataclasses.replace(options, max_new_tokens=int(max_new_tokens))
    fcs_state = read_text_hidden_fcs(p, setting)
    model, processor = load_pretrained(
        LlavaForConditionalGeneration, p, "LISA", setting, dtype, device
    )
    hidden = model.config.text_config.hidden_size
    if fcs_state["0.weight"].shape != (hidden, hidden):
        raise ModelLoadError(
            f"'{p}': text_hidden_fcs expects hidden size {fcs_state['0.weight'].shape[1]}, the "
            f"model has {hidden} (setting {setting})"
        )
    fcs = make_text_hidden_fcs(hidden, fcs_state["2.weight"].shape[0])
    fcs.load_state_dict({k: v.float() for k, v in fcs_state.items()})
    try:
        return LisaPromptModel(
            model,
            processor,
            fcs,
            name=name or f"lisa:{p.name}",
            is_random=is_random,
            device=device,
            options=options,
        )
    except ModelLoadError as exc:
        raise ModelLoadError(f"{exc} (setting {setting})") from exc
