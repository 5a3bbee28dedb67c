"""How long the evaluator panel takes to build when its tab is shown, at 1024² with 15 candidates
in 3 groups of 5 (each mask a 128 px or larger thumbnail), beside the candidate gallery's build
for the same trace. Target: ≤ 50 ms (the sample-switch budget of ``bench/gui_latency.py``).
Prints medians and the measured/target ratio.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/evaluator_panel.py
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

TARGET_MS = 50.0


def make_trace(
    rng: np.random.Generator, hw: tuple[int, int] = (1024, 1024), n: int = 15, s: int = 5
):
    from core.trace import Candidate, EvaluatorGroup, EvaluatorTrace, PipelineTrace

    cands = []
    for c in range(n):
        m = np.zeros(hw, bool)
        y, x = rng.integers(0, 700, 2)
        m[y : y + 300, x : x + 300] = True
        cands.append(Candidate(c, "amg", c, m, 0.9))
    ids = rng.permutation(n).tolist()
    groups = [
        EvaluatorGroup(
            g, ids[g * s : (g + 1) * s], "p", "raw", None, rng.random(s).round(2).tolist()
        )
        for g in range(n // s)
    ]
    scores = {cid: sc for g in groups for cid, sc in zip(g.candidate_ids, g.scores, strict=True)}
    ranking = sorted(scores, key=lambda c: -scores[c])
    ev = EvaluatorTrace("bench", "m", True, s, 0, False, groups, scores, ranking)
    return PipelineTrace("q", hw, "bench", {}, True, {}, None, None, None, None, None, cands, ev)


def main() -> None:
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from rea2seg_gui.gallery import CandidateGallery
    from rea2seg_gui.panels.evaluator import EvaluatorPanel

    rng = np.random.default_rng(0)
    traces = [make_trace(rng) for _ in range(6)]
    images = [rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8) for _ in traces]
    panel, gallery = EvaluatorPanel(), CandidateGallery()
    for w in (panel, gallery):
        w.resize(900, 900)
        w.show()
    app.processEvents()
    ev_ms, gal_ms = [], []
    for rep in range(3):
        for tr, img in zip(
            traces, images, strict=True
        ):  # a new image each time: no cached thumbnails
            t = time.perf_counter()
            panel.show_trace(tr, img)
            app.processEvents()
            ev_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            gallery.set_candidates(tr, img, None, None, None)
            app.processEvents()
            gal_ms.append((time.perf_counter() - t) * 1000)
        del rep
    e, g = statistics.median(ev_ms), statistics.median(gal_ms)
    print(
        f"thumbnail side: evaluator {panel.groups.iconSize().width()} px, gallery {gallery.table.iconSize().width()} px"
    )
    print(
        f"evaluator panel build (15 masks, 1024²): median {e:.1f} ms (target {TARGET_MS:.0f} ms)   ratio {e / TARGET_MS:.2f}"
    )
    print(
        f"candidate gallery build (same trace):    median {g:.1f} ms (target {TARGET_MS:.0f} ms)   ratio {g / TARGET_MS:.2f}"
    )
    print(f"evaluator / gallery: {e / g:.2f}")


if __name__ == "__main__":
    main()
