"""Canvas latency at 1024² with a full trace (k1 = 50, k2 = 30, 30 seeds, a k-core), offscreen.

Rows: showing an image with its ground truth and trace (every trace layer on), switching between
15 candidate overlays, toggling a layer, the outline mode, the difference view and the hover
read-out. Targets: ≤ 50 ms to show a sample or switch the outline mode, ≤ 16 ms per overlay or
toggle, ≤ 2 ms per hover read-out. Prints measured/target ratios (min and median of repeats).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/canvas_latency.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def full_trace(h: int = 1024, w: int = 1024, grid: int = 32):
    from core.trace import (
        AttentionTrace,
        Candidate,
        FeatureGraphTrace,
        PipelineTrace,
        SeedTrace,
        TokenScore,
    )

    rng = np.random.default_rng(0)
    s = w // grid
    tm = rng.random((grid, grid)).astype(np.float32)
    boxes = np.array(
        [(c * s, r * s, c * s + s, r * s + s) for r in range(grid) for c in range(grid)], np.float32
    )
    order = np.argsort(-tm.ravel())

    def tok(i: int) -> TokenScore:
        return TokenScore(
            int(i), int(i) // grid, int(i) % grid, float(tm.ravel()[i]), tuple(boxes[i]), 0.0
        )

    top1 = [tok(i) for i in order[:50]]
    top2 = top1[:30]
    seeds = np.array([[t.box_xyxy[0] + s / 2, t.box_xyxy[1] + s / 2] for t in top2], np.float32)
    edges = [(i, j, 0.9) for i in range(30) for j in range(i + 1, 30) if rng.random() < 0.3]
    graph = FeatureGraphTrace(0.8, -0.5, edges, 3, list(range(0, 30, 2)), (10.0, 10.0), -1.0, False)
    gt = np.zeros((h, w), bool)
    gt[200:600, 300:700] = True
    cands = []
    for c in range(15):
        m = np.zeros((h, w), bool)
        y, x = rng.integers(0, 700, 2)
        m[y : y + 300, x : x + 300] = True
        cands.append(Candidate(c, "amg", c, m, 0.9))
    logits = rng.normal(size=(h, w)).astype(np.float32)
    tr = PipelineTrace(
        "q",
        (h, w),
        "bench",
        {},
        True,
        {},
        logits,
        gt,
        AttentionTrace((grid, grid), tm, boxes, [0]),
        SeedTrace(50, 30, top1, top2, seeds, [t.index for t in top2]),
        graph,
        cands,
    )
    return tr, gt, rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def main() -> None:
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from rea2seg_gui.canvas import Canvas

    tr, gt, img = full_trace()
    c = Canvas()
    c.resize(1000, 900)
    c.show()
    app.processEvents()
    for key in ("topk1", "topk2", "graph", "initial"):
        c.set_layer_visible(key, True)
    rows: dict[str, list[float]] = {
        k: [] for k in ("show", "candidate", "toggle", "outline", "diff", "hover")
    }

    def timed(row: str, fn) -> None:
        t = time.perf_counter()
        fn()
        app.processEvents()
        rows[row].append(time.perf_counter() - t)

    edited = gt.copy()
    edited[100:300, 100:900] = True
    for _ in range(8):
        timed(
            "show",
            lambda: (
                c.set_image(img.copy()),
                c.set_mask("gt", gt),
                c.set_mask("edited", edited),
                c.set_trace(tr),
            ),
        )
        for cand in tr.candidates:
            timed("candidate", lambda m=cand.mask: c.set_mask("candidate", m))
        for _ in range(4):
            timed("toggle", lambda: c.set_layer_visible("candidate", not c.visible["candidate"]))
        for _ in range(2):
            timed("outline", lambda: c.set_outline_mode(not c.outline_mode))
            timed("diff", lambda: c.set_layer_visible("diff", not c.visible["diff"]))
        for x in range(0, 1000, 50):
            t = time.perf_counter()
            c.hover_at(x + 0.5, 500.5)
            rows["hover"].append(time.perf_counter() - t)
    c.close()
    labels = {
        "show": ("image + GT + edited + full trace", 50),
        "candidate": ("show one of 15 candidates", 16),
        "toggle": ("toggle the candidate layer", 16),
        "outline": ("outline mode on / off", 50),
        "diff": ("difference view on / off", 16),
        "hover": ("hover read-out", 2),
    }
    for key, (label, target) in labels.items():
        lo, med = min(rows[key]) * 1000, statistics.median(rows[key]) * 1000
        print(
            f"{label:34s} min {lo:6.2f} ms  median {med:6.2f} ms (target {target} ms)   ratio {med / target:.2f}"
        )


if __name__ == "__main__":
    main()
