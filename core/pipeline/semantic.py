"""Semantic-level candidates: seed features, cosine graph, k-core, negative point (§4.2)."""

from __future__ import annotations

import numpy as np


def sample_features(features: np.ndarray, points_xy: np.ndarray, xy_scale: tuple[float, float]) -> np.ndarray:
    """Bilinear features at image points, as in PerSAM.

    features: float (C, H', W') image embedding. points_xy: (K, 2) image pixels.
    xy_scale: (sx, sy) mapping image pixels to embedding cells (cell ``i`` spans
    ``[i, i + 1)``; its centre is ``i + 0.5``). Sampling is exact bilinear between cell centres
    with edge clamping (``grid_sample(align_corners=False, padding_mode="border")``).
    Returns float32 (K, C).
    """
    import torch
    import torch.nn.functional as F

    c, hh, ww = features.shape
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    u = pts[:, 0] * xy_scale[0]
    v = pts[:, 1] * xy_scale[1]
    grid = np.stack([2 * u / ww - 1, 2 * v / hh - 1], axis=-1)[None, :, None, :]
    out = F.grid_sample(
        torch.as_tensor(features, dtype=torch.float64)[None],
        torch.as_tensor(grid, dtype=torch.float64),
        mode="bilinear",
        align_corners=False,
        padding_mode="border",
    )
    return out[0, :, :, 0].T.numpy().astype(np.float32)


def cosine_graph(features: np.ndarray, tau: float) -> list[tuple[int, int, float]]:
    """Edges ``(i, j, cos)`` with ``i < j`` where the cosine similarity exceeds ``tau``."""
    f = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    f = f / np.where(norm == 0, 1.0, norm)
    sim = f @ f.T
    ii, jj = np.triu_indices(len(f), k=1)
    keep = sim[ii, jj] > tau
    return [(int(i), int(j), float(s)) for i, j, s in zip(ii[keep], jj[keep], sim[ii, jj][keep], strict=True)]


def densest_core(n_nodes: int, edges: list[tuple[int, int, float]], attention: np.ndarray | None = None) -> tuple[int, list[int]]:
    """(k, members) of the k-core with the largest k (networkx core numbers).

    k is the maximum core number of the graph, so the kept points are the most mutually
    similar group. With no edges every node has core number 0: the single seed with the highest
    ``attention`` (or seed 0) is kept, with ``k = 0``.
    """
    import networkx as nx

    if n_nodes == 0:
        return 0, []
    g = nx.Graph()
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from((i, j) for i, j, _ in edges)
    core = nx.core_number(g)
    k = max(core.values())
    if k == 0:
        best = int(np.argmax(attention)) if attention is not None and len(attention) else 0
        return 0, [best]
    return k, sorted(n for n, c in core.items() if c == k)


def negative_point(logits: np.ndarray, delta: float) -> tuple[tuple[float, float], float, bool]:
    """p⁻ = argmax{L(x, y) | L(x, y) < delta}; ``argmin L`` when no pixel is below delta.

    Returns ((x, y) pixel centre, L there, fallback_used). Ties go to the first pixel in
    row-major order.
    """
    L = np.asarray(logits)
    below = L < delta
    if below.any():
        masked = np.where(below, L, -np.inf)
        idx = int(np.argmax(masked))
        fallback = False
    else:
        idx = int(np.argmin(L))
        fallback = True
    y, x = divmod(idx, L.shape[1])
    return (float(x) + 0.5, float(y) + 0.5), float(L.flat[idx]), fallback
