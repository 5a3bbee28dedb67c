"""Memory-lean capture of ONE query row of self-attention at chosen decoder layers (§4.1).

Asking a transformers model for ``output_attentions=True`` needs the eager kernel and keeps
every layer's full (heads × T × T) matrix. Here forward hooks keep only what one row needs: the
layer's ``q_proj`` output at the query position, the whole ``k_proj`` output (T × kv_dim), and
the rotary ``position_embeddings`` given to ``self_attn``. The row is then recomputed exactly:
RoPE on q and k, key heads repeated for grouped-query attention, causal mask (keys ≤ query),
softmax of ``q·kᵀ / √d``. The model itself keeps running on SDPA. Memory per captured layer is
O(T · d) instead of O(H · T²).

Works for decoder layers shaped like Llama/Qwen2 (``self_attn.q_proj``/``k_proj``,
``head_dim``, ``num_key_value_groups``, rotary ``position_embeddings`` of shape (B, T, d)).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


class AttentionRowCapture:
    """Context manager: ``with AttentionRowCapture(layers, [3, 5], query_index=q) as cap: model(...)``;
    then ``cap.rows()`` is float32 (n_layers, n_heads, T): softmax attention of position
    ``query_index`` over all positions, per layer and head."""

    def __init__(self, decoder_layers: Sequence[torch.nn.Module], layer_ids: Sequence[int], query_index: int) -> None:
        n = len(decoder_layers)
        bad = [i for i in layer_ids if not 0 <= i < n]
        if bad:
            raise ValueError(f"layers {bad} out of range: the model has {n} decoder layers (0..{n - 1})")
        self.layers = decoder_layers
        self.layer_ids = list(layer_ids)
        self.query_index = query_index
        self._store: dict[int, dict[str, Any]] = {i: {} for i in self.layer_ids}
        self._handles: list[Any] = []

    def __enter__(self) -> AttentionRowCapture:
        for i in self.layer_ids:
            attn = self.layers[i].self_attn
            slot = self._store[i]

            def pre(_mod, args, kwargs, slot=slot):
                pe = kwargs.get("position_embeddings")
                if pe is None and len(args) > 1:
                    pe = args[1]
                slot["cos"], slot["sin"] = (t.detach() for t in pe)

            def q_hook(_mod, _inp, out, slot=slot):
                slot["q"] = out[:, self.query_index].detach()

            def k_hook(_mod, _inp, out, slot=slot):
                slot["k"] = out.detach()

            self._handles.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
            self._handles.append(attn.q_proj.register_forward_hook(q_hook))
            self._handles.append(attn.k_proj.register_forward_hook(k_hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def rows(self) -> torch.Tensor:
        out = []
        p = self.query_index
        for i in self.layer_ids:
            slot = self._store[i]
            if "q" not in slot:
                raise RuntimeError(f"layer {i} did not run; was the model called inside the context?")
            attn = self.layers[i].self_attn
            d = attn.head_dim
            q = slot["q"][0].float().view(-1, d)  # (H, d)
            k = slot["k"][0].float().view(slot["k"].shape[1], -1, d)  # (T, Hkv, d)
            cos, sin = slot["cos"][0].float(), slot["sin"][0].float()  # (T, d)
            q = q * cos[p] + _rotate_half(q) * sin[p]
            k = k * cos[:, None] + _rotate_half(k) * sin[:, None]
            k = k.repeat_interleave(attn.num_key_value_groups, dim=1)  # (T, H, d)
            scores = torch.einsum("hd,thd->ht", q, k) * attn.scaling
            scores[:, p + 1 :] = float("-inf")
            out.append(torch.softmax(scores, dim=-1))
        return torch.stack(out).float()


@contextlib.contextmanager
def capture_rows(decoder_layers: Sequence[torch.nn.Module], layer_ids: Sequence[int], query_index: int) -> Iterator[AttentionRowCapture]:
    with AttentionRowCapture(decoder_layers, layer_ids, query_index) as cap:
        yield cap
