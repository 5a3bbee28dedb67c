"""Semantic-level candidates: seed features, cosine graph, densest k-core, negative point (§4.2).

Points are pixel indices ``(x, y)`` = ``(column, row)`` of the original image (SAM's point
convention; the pixel's centre is at ``(x + 0.5, y + 0.5)`` in continuous image coordinates).
"""

from __future__ import annotations

import numpy as np


def sample_features(
    features: np.ndarray, points_xy: np.ndarray, xy_scale: tuple[float, float]
) -> np.ndarray:
    """Bilinear interpolation of the SAM image embedding F at seed points (§4.2, after PerSAM).

    features: float (C, H', W'), the embedding of the current image.
    points_xy: (K, 2) pixel indices ``(x, y)``.
    xy_scale: ``(sx, sy)`` from ``SamBackend.embedding_xy_scale()``: continuous image coordinates
        times ``(sx, sy)`` give embedding-grid coordinates, where cell ``i`` spans ``[i, i + 1)``
        (this includes SAM's longest-side resize and its padding, or SAM2's square stretch).

    The point's continuous position ``((x + 0.5) sx, (y + 0.5) sy)`` is interpolated between the
    four nearest cell centres, clamped at the grid border; identical to
    ``grid_sample(align_corners=False, padding_mode="border")``. Returns float32 (K, C).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 3:
        raise ValueError(f"features must be (C, H', W'), got shape {f.shape}")
    _, hh, ww = f.shape
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    # cell-index coordinates: cell i's centre is at i
    fx = np.clip((pts[:, 0] + 0.5) * xy_scale[0] - 0.5, 0.0, ww - 1)
    fy = np.clip((pts[:, 1] + 0.5) * xy_scale[1] - 0.5, 0.0, hh - 1)
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.floor(fy).astype(np.int64)
    x1 = np.minimum(x0 + 1, ww - 1)
    y1 = np.minimum(y0 + 1, hh - 1)
    wx = (fx - x0)[None]
    wy = (fy - y0)[None]
    out = (
        f[:, y0, x0] * (1 - wx) * (1 - wy)
        + f[:, y0, x1] * wx * (1 - wy)
        + f[:, y1, x0] * (1 - wx) * wy
        + f[:, y1, x1] * wx * wy
    )
    return out.T.astype(np.float32)


def graph_nodes(seed_token: list[int]) -> list[int]:
    """Indices of the first seed of each distinct token, in seed order: the nodes of the
    similarity graph. Several seeds in one patch have near-identical features and would form a
    clique that wins the k-core by repetition alone; one node per token avoids that (§4.2 builds
    the graph over the seed points, which the paper takes one per top-k2 token)."""
    seen: set[int] = set()
    out: list[int] = []
    for i, t in enumerate(seed_token):
        if int(t) not in seen:
            seen.add(int(t))
            out.append(i)
    return out


def cosine_graph(features: np.ndarray, tau: float = 0.8) -> list[tuple[int, int, float]]:
    """Edges ``(i, j, cos)``, ``i < j``, between seeds whose L2-normalised features have
    ``f_i · f_j > tau`` (§4.2; tau = 0.8 for SAM, 0.7 for SAM2, App. B). A zero feature vector
    has cosine 0 with everything. Edges come in row-major (i, then j) order."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be (K, C), got shape {f.shape}")
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    f = f / np.where(norm == 0, 1.0, norm)
    sim = f @ f.T
    ii, jj = np.triu_indices(len(f), k=1)
    vals = sim[ii, jj]
    keep = vals > tau
    return [
        (int(i), int(j), float(s)) for i, j, s in zip(ii[keep], jj[keep], vals[keep], strict=True)
    ]


def densest_core(
    n_nodes: int, edges: list[tuple[int, int, float]], attention: np.ndarray | None = None
) -> tuple[int, list[int]]:
    """The densest k-core of the seed graph: ``(k, members)`` (§4.2).

    Core numbers come from ``networkx.core_number``; ``k`` is their maximum and the members
    are the nodes with that core number (the k-core for the largest k that is not empty; it may
    have several connected components, all kept). Members are sorted ascending.

    With no edges every core number is 0 and no group is denser than another: the single seed
    with the highest ``attention`` (per seed, float (n_nodes,); ties → lowest index; seed 0 when
    ``attention`` is None) is kept with ``k = 0``. No nodes → ``(0, [])``.
    """
    import networkx as nx

    if n_nodes == 0:
        return 0, []
    g = nx.Graph()
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from((int(i), int(j)) for i, j, _ in edges)
    core = nx.core_number(g)
    k = max(core.values())
    if k == 0:
        att = None if attention is None else np.asarray(attention, dtype=np.float64).ravel()
        best = int(np.argmax(att)) if att is not None and att.size == n_nodes else 0
        return 0, [best]
    return int(k), sorted(int(v) for v, c in core.items() if c == k)


def negative_point(
    logits: np.ndarray, delta: float = -15.0
) -> tuple[tuple[float, float], float, bool]:
    """The background point p⁻ = argmax{L(x, y) | L(x, y) < delta} (§4.2, App. B).

    logits: L, float (H, W). delta: −15 for SAM, −10 for SAM2. When no pixel is below delta the
    point is ``argmin L`` instead (App. B). Ties go to the first pixel in row-major order.
    Returns ((x, y) pixel index, L there, fallback_used).
    """
    L = np.asarray(logits)
    if L.ndim != 2 or L.size == 0:
        raise ValueError(f"logits must be a non-empty (H, W) map, got shape {L.shape}")
    below = L < delta
    if below.any():
        idx = int(np.argmax(np.where(below, L, -np.inf)))
        fallback = False
    else:
        idx = int(np.argmin(L))
        fallback = True
    y, x = divmod(idx, L.shape[1])
    return (float(x), float(y)), float(L.flat[idx]), fallback


def semantic_prompt(
    seeds_xy: np.ndarray, core_members: list[int], negative_xy: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Point prompt for the semantic refinement: the core seeds P* (label 1) then p⁻ (label 0).

    Returns float32 (|P*| + 1, 2) points and int32 labels.
    """
    seeds = np.asarray(seeds_xy, dtype=np.float32).reshape(-1, 2)
    pts = np.concatenate(
        [seeds[list(core_members)], np.asarray([negative_xy], dtype=np.float32)], axis=0
    )
    labels = np.array([1] * len(core_members) + [0], dtype=np.int32)
    return pts, labels
