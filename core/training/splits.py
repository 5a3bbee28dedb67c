"""Seed ranges of the geometric split, in one place: training never sees an evaluation scene.

The geometric split (:mod:`core.geometric`) is a pure function of its seed
(``rea2seg generate geometric --seed S``). Evaluation splits use seeds in
:data:`EVALUATION_SEEDS` (the command's default seed 0 lies there); every trainer draws its
scenes from :data:`TRAINING_SEEDS` and refuses any other seed (:func:`check_training_seed`).
Each seed starts its own ``numpy`` generator, so distinct seeds give independent scene streams.
The split of the seed space is not from the paper.

:func:`prepare_training_split` writes a training split with the project's own generator and
marks it (``split.json``) so a later run can check where its scenes came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVALUATION_SEEDS = range(0, 1_000_000)
TRAINING_SEEDS = range(1_000_000, 2_000_000)
DEFAULT_TRAINING_SEED = TRAINING_SEEDS.start
SPLIT_FILE = "split.json"


def check_training_seed(seed: int) -> int:
    """``seed`` when it lies in :data:`TRAINING_SEEDS`, else ``ValueError`` naming the range."""
    seed = int(seed)
    if seed not in TRAINING_SEEDS:
        where = "an evaluation seed" if seed in EVALUATION_SEEDS else "outside every range"
        raise ValueError(
            f"training seed {seed} is {where}: training scenes use seeds "
            f"{TRAINING_SEEDS.start}…{TRAINING_SEEDS.stop - 1} (core.training.splits)"
        )
    return seed


def prepare_training_split(
    out_dir: str | Path,
    n_questions: int,
    seed: int = DEFAULT_TRAINING_SEED,
    size_wh: tuple[int, int] = (256, 192),
    per_scene: int = 3,
) -> dict[str, Any]:
    """Generate (once) a geometric training split under ``out_dir`` and return its ``split.json``.

    The folder holds what ``rea2seg generate geometric`` writes (``scenes/*.json`` with the
    checked questions, ``images/``, ``sgdr.json``) plus ``split.json`` (purpose, seed, size,
    counts). A folder already marked with the same seed, size and count is reused as it is."""
    seed = check_training_seed(seed)
    out = Path(out_dir)
    want = {
        "purpose": "training",
        "seed": seed,
        "size_wh": [int(size_wh[0]), int(size_wh[1])],
        "n_questions": int(n_questions),
        "per_scene": int(per_scene),
    }
    marker = out / SPLIT_FILE
    if marker.is_file():
        have = json.loads(marker.read_text(encoding="utf-8"))
        if {k: have.get(k) for k in want} == want:
            return have
    from core.geometric.generate import generate

    report = generate(out, n_questions, seed=seed, size_wh=tuple(size_wh), per_scene=per_scene)
    info = {**want, "scenes": report.scenes, "summary": report.summary()}
    marker.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def read_training_split(path: str | Path) -> dict[str, Any]:
    """The ``split.json`` of a training split folder, checked: it must exist, say ``training``
    and name a training seed (``ValueError`` otherwise)."""
    marker = Path(path) / SPLIT_FILE
    if not marker.is_file():
        raise ValueError(
            f"'{path}' is not a training split (no {SPLIT_FILE}); make one with "
            "core.training.splits.prepare_training_split or the trainer's --scenes option"
        )
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info.get("purpose") != "training":
        raise ValueError(f"'{marker}' does not describe a training split")
    check_training_seed(info.get("seed", -1))
    return info
