"""Memory-lean capture of ONE query row of self-attention at chosen decoder layers (§4.1–4.2).

``output_attentions=True`` needs the eager kernel and materialises every layer's full
(heads × T × T) matrix. Here forward hooks see what one row needs while the model keeps running
on its fast kernel (SDPA): a pre-hook on ``self_attn`` takes the rotary ``position_embeddings``
(cos, sin) the layer receives, a hook on ``q_proj`` (or ``q_norm`` where the layer has one) keeps
the query vector at the query position, and a hook on ``k_proj`` (or ``k_norm``) computes the row
at once and drops the keys: RoPE on q and k (for Qwen2.5-VL the cos/sin the layer gets already
carry the multimodal sections, so M-RoPE is covered), key heads repeated for grouped-query
attention (query head h reads key head ``h // n_rep``, as transformers' ``repeat_kv``), causal
mask (keys ≤ query), softmax of ``q·kᵀ · scaling``. What is kept per captured layer is one
float32 (heads, T) row; the transient work is O(T · d), never O(T²).

Layer numbers are 0-based indices into the decoder's layer list, the same numbering as the
``attentions`` tuple of ``output_attentions=True`` (LLaVA default 14–30 → ``attentions[14:31]``;
LENS 33 → ``attentions[33]``, the 34th of Qwen2.5-VL-3B's 36 layers).

Works for decoder layers shaped like Llama / Qwen2 / Qwen2.5-VL: ``self_attn.q_proj``/``k_proj``,
``head_dim``, ``num_key_value_groups``, ``scaling``, and rotary ``position_embeddings`` of shape
(B, T, head_dim) passed to ``self_attn``. Batch size 1 (batch element 0 is read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """The RoPE partner of ``x`` along the last axis: (-x2, x1) for halves (x1, x2)."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def attention_row(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    query_index: int,
    n_rep: int,
    scaling: float,
) -> torch.Tensor:
    """One causal softmax attention row, float32 (H, T).

    q: (H, d) projected query at ``query_index`` (before RoPE); k: (T, Hkv, d) projected keys
    (before RoPE); cos, sin: (T, d) rotary tables; ``n_rep = H / Hkv``; ``scaling`` usually
    d^-0.5. Keys after the query are masked (causal)."""
    q, k, cos, sin = q.float(), k.float(), cos.float(), sin.float()
    q = q * cos[query_index] + rotate_half(q) * sin[query_index]
    k = k * cos[:, None] + rotate_half(k) * sin[:, None]
    k = k.repeat_interleave(n_rep, dim=1)  # (T, H, d)
    scores = torch.einsum("hd,thd->ht", q, k) * scaling
    scores[:, query_index + 1 :] = float("-inf")
    return torch.softmax(scores, dim=-1)


def decoder_layers(model: Any) -> Sequence[torch.nn.Module]:
    """The decoder layer list of a transformers LLaVA / Qwen2.5-VL / Llama model."""
    for path in ("model.language_model.layers", "language_model.layers", "model.layers", "layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise TypeError(f"{type(model).__name__}: no decoder layer list found")


class AttentionRowCapture:
    """Context manager capturing the attention row of one query position (module docstring).

    ``with AttentionRowCapture(layers, [14, 15], query_index=q) as cap: model(...)``; then
    ``cap.rows()`` is float32 (n_layers, n_heads, T): softmax attention of position
    ``query_index`` (0-based; negative counts from the end) over all T positions, per captured
    layer (in ``layer_ids`` order) and head. Hooks are removed on exit. Only one forward pass may
    run inside the context (a second one raises).
    """

    def __init__(
        self, decoder_layers: Sequence[torch.nn.Module], layer_ids: Sequence[int], query_index: int
    ) -> None:
        n = len(decoder_layers)
        bad = [i for i in layer_ids if not 0 <= int(i) < n]
        if bad:
            raise ValueError(
                f"layers {bad} out of range: the model has {n} decoder layers (0..{n - 1})"
            )
        if not layer_ids:
            raise ValueError("no layers to capture")
        self.layers = decoder_layers
        self.layer_ids = [int(i) for i in layer_ids]
        self.query_index = int(query_index)
        self._rows: dict[int, torch.Tensor] = {}
        self._slots: dict[int, dict[str, Any]] = {}
        self._handles: list[Any] = []

    def _hooks_for(self, i: int) -> None:
        attn = self.layers[i].self_attn
        slot: dict[str, Any] = {}
        self._slots[i] = slot
        n_rep = int(getattr(attn, "num_key_value_groups", 1))
        d = int(attn.head_dim)
        scaling = float(getattr(attn, "scaling", d**-0.5))

        def pre(_mod, args, kwargs):
            pe = kwargs.get("position_embeddings")
            if pe is None and len(args) > 1:
                pe = args[1]
            if pe is None:
                raise RuntimeError(
                    f"layer {i}: self_attn got no position_embeddings; this model is not supported"
                )
            slot["cos"], slot["sin"] = pe

        def q_hook(_mod, _inp, out):
            t = out.shape[1]
            p = self.query_index if self.query_index >= 0 else t + self.query_index
            if not 0 <= p < t:
                raise IndexError(f"query index {self.query_index} outside a sequence of {t} tokens")
            slot["p"] = p
            slot["q"] = out[0, p].detach().reshape(-1, d)  # (H, d)

        def k_hook(_mod, _inp, out):
            if i in self._rows:
                raise RuntimeError(
                    "AttentionRowCapture saw a second forward pass; use one context per pass"
                )
            k = out[0].detach().reshape(out.shape[1], -1, d)  # (T, Hkv, d)
            cos, sin = slot.pop("cos"), slot.pop("sin")
            self._rows[i] = attention_row(
                slot.pop("q"), k, cos[0], sin[0], slot.pop("p"), n_rep, scaling
            )

        q_mod = attn.q_norm if hasattr(attn, "q_norm") else attn.q_proj
        k_mod = attn.k_norm if hasattr(attn, "k_norm") else attn.k_proj
        self._handles.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
        self._handles.append(q_mod.register_forward_hook(q_hook))
        self._handles.append(k_mod.register_forward_hook(k_hook))

    def __enter__(self) -> AttentionRowCapture:
        for i in self.layer_ids:
            self._hooks_for(i)
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def rows(self) -> torch.Tensor:
        """float32 (n_layers, n_heads, T) on the model's device."""
        missing = [i for i in self.layer_ids if i not in self._rows]
        if missing:
            raise RuntimeError(
                f"layers {missing} did not run; was the model called inside the context?"
            )
        return torch.stack([self._rows[i] for i in self.layer_ids])
