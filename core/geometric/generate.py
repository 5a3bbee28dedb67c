"""Generate the geometric-reasoning split: scenes, exact masks and program-checked questions.

``generate(out_dir, n, seed, size_wh)`` writes ``images/<scene>.png``, ``scenes/<scene>.json``
(scene graph + the kept programs) and ``sgdr.json`` (the interchange format, category
``geometric``), and returns the kept count and the rejection counts per checker reason.
Deterministic for a given seed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.formats.sgdr import SgdrSample, write_sgdr
from core.geometric.program import check, phrase, random_program
from core.geometric.render import render
from core.geometric.scene import sample_scene
from core.masks import encode_rle

MIN_VISIBLE_FRACTION = 0.35  # a scene is resampled when an object is hidden more than this allows
TRIES_PER_SCENE = 60


@dataclass
class GenerationReport:
    samples: int = 0
    scenes: int = 0
    tried: int = 0
    rejected: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        rej = ", ".join(
            f"{k} {self.rejected.get(k, 0)}"
            for k in ("ambiguous", "shortcut", "trivial", "duplicate")
        )
        return f"kept {self.samples} questions over {self.scenes} scenes from {self.tried} programs; rejected: {rej}"


def _scene_ok(scene, masks, full_areas) -> bool:
    return all(
        masks[o.id].sum() >= MIN_VISIBLE_FRACTION * max(full_areas[o.id], 1) for o in scene.objects
    )


def generate(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    size_wh: tuple[int, int] = (960, 720),
    per_scene: int = 3,
) -> GenerationReport:
    """Write ``n`` samples (at most ``per_scene`` questions per scene) under ``out_dir``."""
    from core.geometric.render import silhouettes

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    report = GenerationReport()
    samples: list[SgdrSample] = []
    scene_idx = 0
    while report.samples < n:
        scene_id = f"scene{scene_idx:05d}"
        scene_idx += 1
        scene = sample_scene(rng, scene_id, size_wh)
        img, masks = render(scene)
        full = {k: int(v.sum()) for k, v in silhouettes(scene).items()}
        if len(scene.objects) < 3 or not _scene_ok(scene, masks, full):
            continue
        kept = []
        texts: set[str] = set()
        for _ in range(TRIES_PER_SCENE):
            if len(kept) >= per_scene or report.samples + len(kept) >= n:
                break
            prog = random_program(scene, rng)
            report.tried += 1
            verdict = check(scene, prog)
            if not verdict.ok:
                report.rejected[verdict.reason] += 1
                continue
            if any(p.to_dict() == prog.to_dict() for p, _, _ in kept):
                report.rejected["duplicate"] += 1
                continue
            q = phrase(prog, rng)
            if q in texts:
                report.rejected["duplicate"] += 1
                continue
            texts.add(q)
            kept.append((prog, verdict.target, q))
        if not kept:
            continue
        report.scenes += 1
        cv2.imwrite(
            str(out / "images" / f"{scene_id}.png"),
            img[:, :, ::-1],
            [cv2.IMWRITE_PNG_COMPRESSION, 9],
        )
        graph = scene.to_dict()
        graph["questions"] = []
        for qi, (prog, tid, q) in enumerate(kept):
            sid = f"{scene_id}-q{qi}"
            graph["questions"].append(
                {"id": sid, "question": q, "target": tid, "program": prog.to_dict()}
            )
            samples.append(
                SgdrSample(
                    sid,
                    f"images/{scene_id}.png",
                    q,
                    "geometric",
                    "rea2seg-geometric",
                    "pending",
                    encode_rle(masks[tid]),
                )
            )
            report.samples += 1
        (out / "scenes" / f"{scene_id}.json").write_text(json.dumps(graph, indent=1) + "\n")
    write_sgdr(out / "sgdr.json", samples)
    return report
