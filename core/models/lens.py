"""LENS-style segmentation MLLM: Qwen2.5-VL + learnable query tokens + connector → SAM2 (§4.1, App. B).

Accepted directory layout (:func:`load_lens`, offline, ``local_files_only=True``):

- a transformers ``Qwen2_5_VLForConditionalGeneration`` checkpoint (config, weights, processor
  with its chat template). A released LENS directory is accepted as it is: its legacy weight
  names (``model.layers.*``, ``visual.*``) are mapped by transformers, and its ``qwen2_vl``
  model type is read as Qwen2.5-VL (with transformers' warning).
- the query head, from the first of:
  1. ``lens_head.pt``: ``{"queries": (n_queries, hidden) or (1, n_queries, hidden),
     "conv_1d": state dict of Conv1d(hidden, hidden, kernel_size=n_queries), "proj_to_sam":
     state dict of Linear(hidden, hidden) → GELU → Linear(hidden, 256)}`` plus optionally
     ``"connector"`` (state dict of :class:`QueryConnector`) and ``"connector_heads"`` (int,
     default 16);
  2. the checkpoint's own tensors, LENS's names: ``learnable_query`` (1, 64, hidden),
     ``connector.*`` (pos_embed + 4 pre-norm blocks), ``conv_1d.*``, ``proj_to_sam.*`` (a
     ``model.`` prefix is accepted). LENS's ``sam.*`` tensors are ignored: the paper keeps the
     original SAM2 (App. B), given by the preset's ``sam2_checkpoint``.
- optional ``rea2seg.json`` (:class:`LensOptions`): ``system_prompt``, ``question_template``
  (``{question}``), ``resize_longest`` (0 = off), ``max_new_tokens``, ``positions``.

Flow of :meth:`LensPromptModel.encode` (as LENS's ReasonSeg evaluation runs it):
1. The image is resized so its longest side is ``resize_longest`` (640; bicubic), the question is
   put in LENS's CoT template with LENS's system prompt, and the model answers greedily (the
   answer keeps its closing ``<|im_end|>``; image/video placeholders are dropped from it).
2. A second forward pass over prompt + answer + the ``n_queries`` (64) learned query embeddings
   appended at the end. LENS feeds this pass as ``inputs_embeds`` without ``input_ids``, so
   under its transformers (4.51) every token gets a plain sequential position
   (``positions = "sequential"``, the default here; ``"mrope"`` gives image tokens their 2-D
   M-RoPE positions instead).
3. The queries' last-layer (final-norm) hidden states go through the connector, ``conv_1d`` (folds
   the queries into one token) and ``proj_to_sam`` → one SAM2 prompt token, float32 (1, 256).
4. The attention row of the *first* query token over the image tokens is captured at the chosen
   layers (default 33, App. B). LENS itself extracts no attention; 33 is read as a 0-based layer
   index (``attentions[33]`` of ``output_attentions``, the 34th of Qwen2.5-VL-3B's 36 decoder
   layers), the same convention as LLaVA's 14–30. It is clipped to the last layer for smaller
   models. LENS loads with flash attention; this adapter runs on SDPA, and the capture works
   with SDPA or eager.

Token geometry: :func:`core.models.tokens.qwen_token_boxes` — each merged token covers a 28 × 28
block of the processor's ``smart_resize`` image, i.e. ``W / gw × H / gh`` original pixels (both
resizes are plain stretches of the whole image).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.models.attention import AttentionRowCapture
from core.models.base import ModelLoadError, PromptModelOutput, read_options_file
from core.models.lisa import (
    PreparedPass,
    check_image,
    load_pretrained,
    model_dir,
    read_tensors,
)
from core.models.tokens import qwen_token_boxes, resize_longest_hw

DEFAULT_LAYER = 33
HEAD_FILE = "lens_head.pt"
LENS_SYSTEM_PROMPT = "You are a helpful assistant. "
LENS_COT_TEMPLATE = (
    'Locate "{question}", report the bbox coordinates in JSON format.'
    "Compare the difference between objects and find the most closely matched one."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the one bbox inside the interested object in JSON format."
    "i.e., <think>thinking process here</think>"
    "<answer>answer here</answer>"
)


@dataclass(frozen=True)
class LensOptions:
    """Per-model settings read from ``rea2seg.json`` (module docstring). Defaults are LENS's
    ReasonSeg CoT evaluation: its system prompt, its CoT question template, longest side 640."""

    system_prompt: str = LENS_SYSTEM_PROMPT
    question_template: str = LENS_COT_TEMPLATE
    resize_longest: int = 640
    max_new_tokens: int = 512
    positions: str = "sequential"

    def __post_init__(self) -> None:
        if "{question}" not in self.question_template:
            raise ValueError("question_template needs {question}")
        if self.positions not in ("sequential", "mrope"):
            raise ValueError(f"positions must be 'sequential' or 'mrope', got {self.positions!r}")
        if int(self.resize_longest) < 0 or int(self.max_new_tokens) < 0:
            raise ValueError("resize_longest and max_new_tokens must be ≥ 0")


def read_lens_options(path: Path, setting: str) -> LensOptions:
    """:class:`LensOptions` from ``path/rea2seg.json`` (defaults when absent)."""
    return read_options_file(path, LensOptions, setting)


def make_proj_to_sam(hidden: int, out_dim: int = 256) -> torch.nn.Sequential:
    """LENS's ``proj_to_sam``: Linear(hidden, hidden) → GELU → Linear(hidden, out_dim)."""
    return torch.nn.Sequential(
        torch.nn.Linear(hidden, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, out_dim)
    )


class _ConnectorBlock(torch.nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.norm2 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.attn = torch.nn.Module()
        self.attn.qkv = torch.nn.Linear(dim, 3 * dim)
        self.attn.proj = torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Module()
        self.mlp.fc1 = torch.nn.Linear(dim, dim * mlp_ratio)
        self.mlp.fc2 = torch.nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, C), bidirectional attention
        b, n, c = x.shape
        q, k, v = (
            self.attn.qkv(self.norm1(x))
            .reshape(b, n, 3, self.num_heads, -1)
            .permute(2, 0, 3, 1, 4)
            .unbind(0)
        )
        a = (
            torch.nn.functional.scaled_dot_product_attention(q, k, v)
            .transpose(1, 2)
            .reshape(b, n, c)
        )
        x = x + self.attn.proj(a)
        h = self.mlp.fc1(self.norm2(x))
        return x + self.mlp.fc2(h * torch.sigmoid(1.702 * h))  # quick-GELU


class QueryConnector(torch.nn.Module):
    """LENS's query connector: learned position embedding, then ``depth`` pre-norm transformer
    blocks (LayerNorm → multi-head self-attention → residual, LayerNorm → MLP with quick-GELU →
    residual) over the query tokens. (B, n_queries, dim) → same shape."""

    def __init__(
        self, dim: int, n_queries: int, depth: int = 4, num_heads: int = 16, mlp_ratio: int = 4
    ) -> None:
        super().__init__()
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, n_queries, dim))
        self.blocks = torch.nn.ModuleList(
            [_ConnectorBlock(dim, num_heads, mlp_ratio) for _ in range(depth)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x


class QueryHead(torch.nn.Module):
    """Query hidden states float (n_queries, hidden) → [connector] → Conv1d over the queries
    (kernel = n_queries, so one output token) → ``proj_to_sam`` → float (1, out_dim)."""

    def __init__(
        self,
        hidden: int,
        n_queries: int,
        out_dim: int = 256,
        connector: QueryConnector | None = None,
    ) -> None:
        super().__init__()
        self.connector = connector
        self.conv_1d = torch.nn.Conv1d(hidden, hidden, kernel_size=n_queries)
        self.proj_to_sam = make_proj_to_sam(hidden, out_dim)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if self.connector is not None:
            q = self.connector(q[None])[0]
        folded = self.conv_1d(q.T[None])[0].T  # (1, hidden)
        return self.proj_to_sam(folded)


def _sub(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


_HEAD_PREFIXES = ("learnable_query", "conv_1d.", "proj_to_sam.", "connector.")


def read_head_from_checkpoint(path: Path) -> dict[str, Any]:
    """The query head as a ``lens_head.pt``-style dict, read from a released checkpoint's tensors
    (``{}`` when it has no ``learnable_query``)."""

    def norm(k: str) -> str:
        return (
            k[len("model.") :]
            if k.startswith("model.") and k[len("model.") :].startswith(_HEAD_PREFIXES)
            else k
        )

    state = {
        norm(k): v
        for k, v in read_tensors(path, lambda k: norm(k).startswith(_HEAD_PREFIXES)).items()
    }
    if "learnable_query" not in state:
        return {}
    head: dict[str, Any] = {
        "queries": state["learnable_query"],
        "conv_1d": _sub(state, "conv_1d."),
        "proj_to_sam": _sub(state, "proj_to_sam."),
    }
    connector = _sub(state, "connector.")
    if connector:
        head["connector"] = connector
    return head


def build_query_head(state: dict[str, Any], hidden: int) -> tuple[torch.Tensor, QueryHead]:
    """(queries float32 (n_queries, hidden), :class:`QueryHead`) from a ``lens_head.pt``-style dict."""
    queries = torch.as_tensor(state["queries"]).float().reshape(-1, hidden)
    n = queries.shape[0]
    connector = None
    if state.get("connector"):
        c = state["connector"]
        depth = len({k.split(".")[1] for k in c if k.startswith("blocks.")})
        mlp_ratio = c["blocks.0.mlp.fc1.weight"].shape[0] // hidden
        connector = QueryConnector(
            hidden, n, depth, int(state.get("connector_heads", 16)), mlp_ratio
        )
        connector.load_state_dict({k: v.float() for k, v in c.items()})
    head = QueryHead(hidden, n, state["proj_to_sam"]["2.weight"].shape[0], connector)
    head.conv_1d.load_state_dict({k: v.float() for k, v in state["conv_1d"].items()})
    head.proj_to_sam.load_state_dict({k: v.float() for k, v in state["proj_to_sam"].items()})
    return queries, head.float().eval()


class LensPromptModel:
    """A loaded LENS-style model implementing :class:`core.models.base.PromptModel` (module docstring)."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        queries: torch.Tensor,
        connector: torch.nn.Module,
        name: str,
        is_random: bool,
        device: str = "cpu",
        max_new_tokens: int | None = None,
        options: LensOptions | None = None,
    ) -> None:
        opts = options or LensOptions()
        if max_new_tokens is not None:
            opts = dataclasses.replace(opts, max_new_tokens=int(max_new_tokens))
        self.options = opts
        self.model = model.to(device).eval()
        self.processor = processor
        self.queries = queries.to(device)
        self.connector = connector.to(device).float().eval()  # QueryHead
        self.name = name
        self.is_random = is_random
        self.device = device
        n = model.config.text_config.num_hidden_layers
        self.default_layers = [min(DEFAULT_LAYER, n - 1)]
        self.image_token_id = int(model.config.image_token_id)
        self.pad_id = (
            processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None else 0
        )

    @property
    def max_new_tokens(self) -> int:
        return int(self.options.max_new_tokens)

    def _messages(self, question: str) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        if self.options.system_prompt:
            msgs.append({"role": "system", "content": self.options.system_prompt})
        text = self.options.question_template.replace("{question}", question)
        msgs.append(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
        )
        return msgs

    def _model_image(self, image_rgb: np.ndarray) -> np.ndarray:
        if not self.options.resize_longest:
            return image_rgb
        from PIL import Image

        h, w = resize_longest_hw(image_rgb.shape[:2], int(self.options.resize_longest))
        return np.array(Image.fromarray(image_rgb).resize((w, h), Image.Resampling.BICUBIC))

    def prepare(self, image_rgb: np.ndarray, question: str) -> PreparedPass:
        """Steps 1–2 of the flow up to the second pass's inputs (generation included); the
        query embeddings are already in ``kwargs["inputs_embeds"]``."""
        image_rgb = check_image(image_rgb)
        text = self.processor.apply_chat_template(
            self._messages(question), add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(
            images=[self._model_image(image_rgb)], text=[text], return_tensors="pt"
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        prompt = inputs["input_ids"][0]
        answer = prompt.new_zeros((0,))
        if self.max_new_tokens > 0:
            with torch.inference_mode():
                gen = self.model.generate(
                    **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
                )
            answer = gen[0, prompt.shape[0] :]
        cfg = self.model.config
        mm = torch.tensor(
            [self.image_token_id, cfg.video_token_id, cfg.vision_start_token_id],
            device=answer.device,
        )
        answer = answer[~torch.isin(answer, mm)]  # no features exist for placeholders in the answer
        nq = self.queries.shape[0]
        ids = torch.cat(
            [prompt, answer, torch.full((nq,), self.pad_id, device=self.device, dtype=prompt.dtype)]
        )[None]
        first_query = ids.shape[1] - nq
        with torch.inference_mode():
            embeds = self.model.get_input_embeddings()(ids).clone()
            embeds[0, first_query:] = self.queries.to(embeds.dtype)
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "inputs_embeds": embeds,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": inputs["pixel_values"],
            "image_grid_thw": inputs["image_grid_thw"],
        }
        if self.options.positions == "sequential":  # LENS: inputs_embeds only → plain 1-D positions
            kwargs["position_ids"] = (
                torch.arange(ids.shape[1], device=self.device).view(1, 1, -1).expand(3, 1, -1)
            )
        else:
            kwargs["mm_token_type_ids"] = (ids == self.image_token_id).int()
        img_pos = (ids[0] == self.image_token_id).nonzero().flatten()
        _, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
        merge = int(self.processor.image_processor.merge_size)
        grid = (gh // merge, gw // merge)
        if img_pos.numel() != grid[0] * grid[1]:
            raise RuntimeError(
                f"{self.name}: {img_pos.numel()} image tokens in the sequence, expected {grid}"
            )
        return PreparedPass(
            kwargs,
            first_query,
            img_pos,
            int(prompt.shape[0]),
            answer.tolist(),
            qwen_token_boxes(image_rgb.shape[:2], grid),
            grid,
            {"n_queries": nq},
        )

    def encode(
        self, image_rgb: np.ndarray, question: str, layers: list[int] | None = None
    ) -> PromptModelOutput:
        """image_rgb: uint8 (H, W, 3). Prompt embedding float32 (1, 256) and the first query
        token's attention rows float32 (n_layers, n_heads, gh*gw) (module docstring)."""
        layers = [int(i) for i in layers] if layers else list(self.default_layers)
        sp = self.prepare(image_rgb, question)
        q = sp.query_index
        with torch.inference_mode():
            with AttentionRowCapture(self.model.model.language_model.layers, layers, q) as cap:
                out = self.model.model(**sp.kwargs, use_cache=False)
            emb = self.connector(out.last_hidden_state[0, q:].float())
        text = self.processor.tokenizer.decode(sp.answer_ids, skip_special_tokens=True)
        return sp.output(
            emb,
            cap.rows(),
            layers,
            text,
            "query[0]",
            {
                "query_position": q,
                "n_queries": sp.extra["n_queries"],
                "positions": self.options.positions,
            },
        )


def load_lens(
    path: str | Path,
    *,
    device: str = "cpu",
    is_random: bool = False,
    setting: str = "mllm_path",
    max_new_tokens: int | None = None,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> LensPromptModel:
    """Load a LENS-style model directory offline (layout in the module docstring); arguments and
    errors as :func:`core.models.lisa.load_lisa`."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    p = model_dir(path, "LENS", setting)
    if not (p / "config.json").is_file():
        raise ModelLoadError(
            f"'{p}' has no config.json: not a transformers model directory (setting {setting})"
        )
    options = read_lens_options(p, setting)
    if max_new_tokens is not None and int(max_new_tokens) < 0:
        raise ModelLoadError(
            f"max_new_tokens must be ≥ 0, got {max_new_tokens} (setting max_new_tokens)"
        )
    head_file = p / HEAD_FILE
    try:
        state = (
            torch.load(head_file, map_location="cpu", weights_only=True)
            if head_file.is_file()
            else read_head_from_checkpoint(p)
        )
    except (OSError, RuntimeError, EOFError) as exc:
        raise ModelLoadError(
            f"'{head_file}' could not be read ({exc}) (setting {setting})"
        ) from exc
    if not state:
        raise ModelLoadError(
            f"'{head_file}' is missing and the checkpoint has no learnable_query: the query tokens "
            f"and their head are needed (setting {setting})"
        )
    missing = [k for k in ("queries", "conv_1d", "proj_to_sam") if not len(state.get(k, ()))]
    if missing:
        raise ModelLoadError(f"the LENS query head in '{p}' lacks {missing} (setting {setting})")
    model, processor = load_pretrained(
        Qwen2_5_VLForConditionalGeneration, p, "LENS", setting, dtype, device
    )
    try:
        queries, head = build_query_head(state, model.config.text_config.hidden_size)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"the LENS query head in '{p}' does not fit the model: {exc} (setting {setting})"
        ) from exc
    return LensPromptModel(
        model,
        processor,
        queries,
        head,
        name or f"lens:{p.name}",
        is_random,
        device,
        max_new_tokens,
        options,
    )
