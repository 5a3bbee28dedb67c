"""Tiny evaluator-training data and models for the trainer tests (written as the export does)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from core.evaluator.grouping import make_groups
from core.evaluator.prompt import canonical_answer, human_value


def box(hw, y0, y1, x0, x1) -> np.ndarray:
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = (a | b).sum()
    return 1.0 if u == 0 else float((a & b).sum() / u)


def write_toy_jsonl(
    folder: Path,
    n_questions: int = 3,
    n_candidates: int = 7,
    hw=(24, 32),
    reasoning: bool | list[bool] = False,
    name: str = "train.jsonl",
) -> Path:
    """``n_questions`` questions about a bright box on noise, ``n_candidates`` box candidates each,
    grouped in fives (last padded) as ``rea2seg export evaluator-train`` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    out = folder / name
    rng = np.random.default_rng(0)
    lines = []
    for q in range(n_questions):
        img = rng.integers(0, 80, (*hw, 3), dtype=np.uint8)
        y0, x0 = int(rng.integers(0, hw[0] // 2)), int(rng.integers(0, hw[1] // 2))
        gt = box(hw, y0, y0 + hw[0] // 3, x0, x0 + hw[1] // 3)
        img[gt] = (230, 40, 40)
        cv2.imwrite(str(folder / "img" / f"q{q}.png"), img[:, :, ::-1])
        masks = {}
        for c in range(n_candidates):
            dy, dx = int(rng.integers(-6, 7)), int(rng.integers(-6, 7))
            m = box(hw, y0 + dy, y0 + dy + hw[0] // 3, x0 + dx, x0 + dx + hw[1] // 3)
            p = folder / "img" / f"q{q}_c{c}.png"
            cv2.imwrite(str(p), m.astype(np.uint8) * 255)
            masks[c] = (f"img/q{q}_c{c}.png", iou(m, gt))
        has_r = reasoning[q] if isinstance(reasoning, list) else reasoning
        for gi, g in enumerate(make_groups(list(masks), 5, [0, q])):
            ious = [masks[c][1] for c in g.candidate_ids]
            rec = {
                "id": f"s{q}-r1-g{gi}",
                "image": [f"img/q{q}.png", *[masks[c][0] for c in g.candidate_ids]],
                "conversations": [
                    {
                        "from": "human",
                        "value": human_value(f"which red box {q} ?", len(ious), False),
                    },
                    {"from": "gpt", "value": canonical_answer(ious)},
                ],
                "sample_id": q,
                "run_id": 1,
                "candidate_ids": list(g.candidate_ids),
                "padded": g.padded,
                "ious": ious,
            }
            if has_r:
                rec["reasoning"] = f"the red box is the target {q} ."
            lines.append(json.dumps(rec))
    out.write_text("\n".join(lines) + "\n")
    return out


def tiny_scoring_model(folder: Path) -> Path:
    from core.training.tiny_evaluator import build_tiny_scoring_internvl

    return build_tiny_scoring_internvl(folder, "which red box the target is".split())
