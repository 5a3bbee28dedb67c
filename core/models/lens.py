"""LENS-style segmentation MLLM: Qwen2.5-VL + learnable query tokens + connector → SAM2 (§4.1, App. B).

On-disk layout accepted by :func:`load_lens` (a local directory, loaded offline):

- a transformers ``Qwen2_5_VLForConditionalGeneration`` checkpoint with its processor;
- ``lens_head.pt``: ``{"queries": float (n_queries, hidden), "conv_1d": state dict of
  Conv1d(hidden, hidden, kernel_size=n_queries), "proj_to_sam": state dict of Linear(hidden,
  hidden) → GELU → Linear(hidden, 256)}`` — LENS's learnable query tokens (64), the 1-D
  convolution that folds their last hidden states into one token, and the projection to SAM2's
  prompt space (LENS's ``learnable_query``, ``conv_1d`` and ``proj_to_sam`` weights), plus
  ``"connector"`` when the model has LENS's query connector (a small pre-norm transformer over
  the queries: learned position embedding, then blocks of LayerNorm → multi-head attention →
  residual, LayerNorm → MLP (quick-GELU) → residual).

A released LENS checkpoint directory loads as it is: without ``lens_head.pt`` the same weights
are read from the checkpoint's own ``learnable_query``, ``connector.*``, ``conv_1d.*`` and
``proj_to_sam.*`` tensors (its ``sam.*`` weights are not used: the paper keeps the original
SAM2, given by the preset's ``sam2_checkpoint``).

Flow: the model first answers the question (generation); then a second forward pass runs over
prompt + answer + the query tokens appended at the end (their embeddings replace placeholder
ids through a hook on the embedding layer). ``conv_1d`` and ``proj_to_sam`` map the queries'
last hidden states to one SAM2 prompt token (1, 256); the attention row is that of the *first* query
token, captured by :mod:`core.models.attention` at the chosen decoder layers (default layer 33,
counted from 0, as the paper's App. B; clipped to the model's depth for small models).

Token → pixel geometry: the processor resizes the image to (h', w'), multiples of 28
(``smart_resize``); 14-px patches are merged 2×2, so each image token covers a 28 × 28 block of
the resized image, i.e. ``28 · W / w'`` × ``28 · H / h'`` original pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.models.attention import AttentionRowCapture
from core.models.base import ModelLoadError, PromptModelOutput

DEFAULT_LAYER = 33


def qwen_grid_boxes(image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> np.ndarray:
    """float32 (gh*gw, 4) xyxy boxes of the merged Qwen token grid in original pixels."""
    h, w = image_hw
    gh, gw = grid_hw
    ch, cw = h / gh, w / gw
    ys, xs = np.mgrid[0:gh, 0:gw]
    return np.stack([xs.ravel() * cw, ys.ravel() * ch, (xs.ravel() + 1) * cw, (ys.ravel() + 1) * ch], 1).astype(np.float32)


def make_proj_to_sam(hidden: int, out_dim: int = 256) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, out_dim))


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
        q, k, v = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        x = x + self.attn.proj(a)
        h = self.mlp.fc1(self.norm2(x))
        return x + self.mlp.fc2(h * torch.sigmoid(1.702 * h))  # quick-GELU


class QueryConnector(torch.nn.Module):
    """LENS's query connector: position embedding, then ``depth`` pre-norm transformer blocks."""

    def __init__(self, dim: int, n_queries: int, depth: int = 4, num_heads: int = 16, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, n_queries, dim))
        self.blocks = torch.nn.ModuleList([_ConnectorBlock(dim, num_heads, mlp_ratio) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x


class QueryHead(torch.nn.Module):
    """Query hidden states (n, hidden) → [connector] → Conv1d over the n queries → projection → (1, 256)."""

    def __init__(self, hidden: int, n_queries: int, out_dim: int = 256, connector: QueryConnector | None = None) -> None:
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
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def read_head_from_checkpoint(path: Path) -> dict:
    """The query head as a ``lens_head.pt``-style dict, read from a released checkpoint's tensors."""
    from safetensors import safe_open

    wanted = ("learnable_query", "conv_1d.", "proj_to_sam.", "connector.")
    state: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), "pt") as fh:
            for k in fh.keys():
                key = k[len("model."):] if k.startswith("model.") and k[len("model."):].startswith(wanted) else k
                if key.startswith(wanted):
                    state[key] = fh.get_tensor(k)
    if "learnable_query" not in state:
        return {}
    head = {"queries": state["learnable_query"], "conv_1d": _sub(state, "conv_1d."), "proj_to_sam": _sub(state, "proj_to_sam.")}
    connector = _sub(state, "connector.")
    if connector:
        head["connector"] = connector
    return head


class LensPromptModel:
    def __init__(self, model, processor, queries: torch.Tensor, connector: torch.nn.Module, name: str, is_random: bool,
                 device: str = "cpu", max_new_tokens: int = 64) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.queries = queries.to(device)
        self.connector = connector.to(device).eval()  # QueryHead
        self.name = name
        self.is_random = is_random
        self.device = device
        self.max_new_tokens = max_new_tokens
        n = model.config.text_config.num_hidden_layers
        self.default_layers = [min(DEFAULT_LAYER, n - 1)]
        self.image_token_id = model.config.image_token_id
        self.pad_id = processor.tokenizer.pad_token_id

    def _messages(self, question: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]

    def encode(self, image_rgb: np.ndarray, question: str, layers: list[int] | None = None) -> PromptModelOutput:
        layers = list(layers) if layers else self.default_layers
        text = self.processor.apply_chat_template(self._messages(question), add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=[image_rgb], text=[text], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            gen = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        answer = gen[0, inputs["input_ids"].shape[1]:]
        # an answer may not carry image/video placeholders (no features exist for them)
        mm = {self.image_token_id, self.model.config.video_token_id, self.model.config.vision_start_token_id}
        answer = answer[~torch.isin(answer, torch.tensor(sorted(mm), device=answer.device))]
        nq = self.queries.shape[0]
        ids = torch.cat([inputs["input_ids"][0], answer, torch.full((nq,), self.pad_id, device=self.device)])[None]
        first_query = ids.shape[1] - nq
        emb_layer = self.model.get_input_embeddings()

        def put_queries(_mod, _inp, out):
            if out.shape[1] == ids.shape[1]:
                out = out.clone()
                out[0, first_query:] = self.queries.to(out.dtype)
            return out

        handle = emb_layer.register_forward_hook(put_queries)
        try:
            with torch.inference_mode(), AttentionRowCapture(self.model.model.language_model.layers, layers, first_query) as cap:
                out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"],
                                 image_grid_thw=inputs["image_grid_thw"], output_hidden_states=True)
        finally:
            handle.remove()
        with torch.inference_mode():
            emb = self.connector(out.hidden_states[-1][0, first_query:].float())
        rows = cap.rows()
        img_pos = (ids[0] == self.image_token_id).nonzero().flatten()
        _, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
        merge = self.processor.image_processor.merge_size
        grid = (gh // merge, gw // merge)
        return PromptModelOutput(
            prompt_embedding=emb.cpu().numpy().astype(np.float32),
            attention=rows[:, :, img_pos].cpu().numpy().astype(np.float32),
            layers=layers,
            grid_hw=grid,
            token_boxes_xyxy=qwen_grid_boxes(image_rgb.shape[:2], grid),
            generated_text=self.processor.tokenizer.decode(answer, skip_special_tokens=True),
            prompt_token="query[0]",
        )


def load_lens(path: str | Path, *, device: str = "cpu", is_random: bool = False, setting: str = "mllm_path",
              max_new_tokens: int = 64) -> LensPromptModel:
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    p = Path(path) if path else None
    if p is None or not p.is_dir():
        raise ModelLoadError(f"LENS model directory '{path}' does not exist (setting {setting})")
    head = p / "lens_head.pt"
    try:
        state = torch.load(head, map_location="cpu", weights_only=True) if head.is_file() else read_head_from_checkpoint(p)
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"'{head}' could not be read ({exc}) (setting {setting})") from exc
    if not state:
        raise ModelLoadError(f"'{head}' is missing and the checkpoint has no learnable_query: the query tokens and "
                             f"their head are needed (setting {setting})")
    missing = [k for k in ("queries", "conv_1d", "proj_to_sam") if not len(state.get(k, ()))]
    if missing:
        raise ModelLoadError(f"the LENS query head in '{p}' lacks {missing} (setting {setting})")
    try:
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(p, local_files_only=True, attn_implementation="sdpa")
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"'{p}' could not be loaded as a LENS-style model ({exc}) (setting {setting})") from exc
    hidden = model.config.text_config.hidden_size
    queries = state["queries"].float().reshape(-1, hidden)
    connector = None
    if "connector" in state:
        c = state["connector"]
        depth = len({k.split(".")[1] for k in c if k.startswith("blocks.")})
        mlp_ratio = c["blocks.0.mlp.fc1.weight"].shape[0] // hidden
        heads = int(state.get("connector_heads", 16))
        connector = QueryConnector(hidden, queries.shape[0], depth, heads, mlp_ratio)
        connector.load_state_dict(c)
    head_mod = QueryHead(hidden, queries.shape[0], state["proj_to_sam"]["2.weight"].shape[0], connector)
    head_mod.conv_1d.load_state_dict(state["conv_1d"])
    head_mod.proj_to_sam.load_state_dict(state["proj_to_sam"])
    return LensPromptModel(model, processor, queries, head_mod.float(), f"lens:{p.name}", is_random, device, max_new_tokens)
