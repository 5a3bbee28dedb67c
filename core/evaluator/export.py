"""Evaluator-training export (§4.4, App. B/D): for every finished sample of a run, its candidates
shuffled and grouped exactly as at inference (:func:`core.evaluator.grouping.make_groups`, last
group padded), each group labelled with the candidates' TRUE IoU against the ground truth, as
InternVL fine-tuning conversations.

Output, beside ``out_jsonl``:

- ``out_jsonl`` — one line per group, InternVL's multi-image chat format::

      {"id": "s12-r3-g0",
       "image": ["../img/a.png", "train_images/s12_r3_c4.png", …],   # original first, then masks
       "width_list": [W, W, …], "height_list": [H, H, …],
       "conversations": [
         {"from": "system", "value": "<core.evaluator.prompt.SYSTEM>"},
         {"from": "human", "value": "Image-1: <image>\\nImage-2: <image>\\n…\\n<prompt>"},
         {"from": "gpt", "value": "<reasoning>\\nAnswer:\\nMask 1: 0.83\\nMask 2: 0.05\\n…"}],
       "sample_id": 12, "run_id": 3, "candidate_ids": [4, 9, …], "padded": 0,
       "ious": [0.8312…, …], "shuffle_seed": [seed, 12]}

  Image paths are relative to the folder of ``out_jsonl`` (InternVL joins them to ``root``).
  The conversation is :func:`core.evaluator.prompt.internvl_conversations`: the system turn and
  the human turn inference sends, in the SAME prompt format the run's stage 2 used (chain of
  thought or not: the run's ``stage2.cot``, default on, or ``cot`` given explicitly), and every
  line carries ``"prompt_format"`` (:func:`core.evaluator.prompt.prompt_format`, which names the
  tile budget too), as does the meta entry, so a LoRA trained on the file is run on the prompt
  it saw (the backends refuse an adapter whose ``rea2seg_adapter.json`` declares another). The
  answer is :func:`core.evaluator.prompt.assistant_text` of the IoUs (two decimals; ``ious``
  keeps them exact); in the chain-of-thought format the sample's reasoning (§4.4, App. D; written
  by ``rea2seg reasoning …`` and reviewed) comes before ``Answer:``. A sample without a reasoning
  text, or whose reasoning a reviewer rejected, gets ``"reasoning_missing": true``; the lines
  with reasoning carry ``"reasoning_source"`` (how it was written).
- ``<stem>_images/`` — the masks as 8-bit PNG, 0 / 255 (for the model's eyes only; the store
  keeps RLE).
- ``<stem>_meta.json`` — InternVL's dataset meta entry (``root``, ``annotation``,
  ``data_augment``, ``repeat_time``, ``length``, ``max_dynamic_patch``: the group's tile budget,
  which InternVL's multi-image recipe divides by the number of images exactly as inference
  does, :func:`core.evaluator.prompt.tiles_per_image`).

True IoU: ``|M ∧ G| / |M ∨ G|`` over pixels outside the sample's ignore region, 1.0 when both are
empty; ``G`` is the sample's current mask (edited if reviewed, else imported).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.evaluator.grouping import GROUP_SIZE, make_groups
from core.evaluator.prompt import (
    MAX_PATCHES,
    assistant_text,
    internvl_conversations,
    prompt_format,
)
from core.fileio import atomic_open, atomic_write
from core.metrics import intersection_union


def true_iou(mask: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Exact IoU of bool (H, W) masks, ignore pixels excluded; 1.0 when the union is empty."""
    inter, union = intersection_union(mask, gt, ignore, "exclude")
    return 1.0 if union == 0 else inter / union


def _rel(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive (Windows): keep it absolute
        return str(path)


def export_evaluator_train(
    store,
    run_id: int,
    out_jsonl: str | Path,
    *,
    group_size: int = GROUP_SIZE,
    seed: int = 0,
    status: str | None = None,
    pad_last: bool | None = None,
    cot: bool | None = None,
    max_patches: int = MAX_PATCHES,
) -> dict[str, Any]:
    """Write the files of the module docstring for run ``run_id``; returns statistics
    ``{"samples", "groups", "mask_images", "samples_skipped", "out", "meta", "images_dir"}``.

    ``status`` keeps only samples with that review status (e.g. ``"verified"``). Samples without
    a ground truth, a trace, candidates, or a readable image file are skipped and counted.
    The JSONL and the meta file are written atomically (:mod:`core.fileio`); a missing output
    folder is created.
    ``cot`` / ``pad_last``: ``None`` = as the run's stage 2 was configured (defaults: on / padded).
    ``max_patches``: the tile budget of a group (12, as inference), written to the meta entry.
    Statistics add ``"with_reasoning"`` / ``"reasoning_missing"`` (groups).
    """
    from core.store import repo

    out = Path(out_jsonl).expanduser().resolve()
    if out.suffix.lower() != ".jsonl":
        raise ValueError(f"the evaluator-training file must end in .jsonl, got {out.name}")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; give a .jsonl file name")
    img_dir = out.parent / f"{out.stem}_images"
    with store.session(write=False) as s:
        stage2 = dict((repo.get_run(s, run_id).config or {}).get("stage2") or {})
        ids = sorted(repo.finished_sample_ids(s, run_id))
    cot = bool(stage2.get("cot", True)) if cot is None else bool(cot)
    pad_last = bool(stage2.get("pad_last", True)) if pad_last is None else bool(pad_last)
    fmt = prompt_format(cot, max_patches)
    img_dir.mkdir(parents=True, exist_ok=True)
    n_lines = n_masks = skipped = used = with_reasoning = 0
    with atomic_open(out) as f:
        for sid in ids:
            with store.session(write=False) as s:
                smp = repo.get_sample(s, sid)
                if status is not None and smp.status != status:
                    continue
                trace = repo.load_trace(s, run_id, sid)
                gt = repo.current_mask(s, sid)
                ign = repo.ignore_mask(s, sid)
                img_path = repo.image_path(smp)
                question = smp.question
                reasoning = smp.reasoning if smp.reasoning_status != "rejected" else None
                reasoning_source = smp.reasoning_source
            if gt is None or trace is None or not trace.candidates or not Path(img_path).is_file():
                skipped += 1
                continue
            used += 1
            h, w = gt.shape
            by_id = {c.id: c for c in trace.candidates}
            ious = {cid: true_iou(c.mask, gt, ign) for cid, c in by_id.items()}
            written: dict[int, str] = {}
            for gi, g in enumerate(
                make_groups(list(by_id), group_size, [seed, sid], pad_last=pad_last)
            ):
                for cid in g.candidate_ids:
                    if cid not in written:
                        p = img_dir / f"s{sid}_r{run_id}_c{cid}.png"
                        if not cv2.imwrite(str(p), by_id[cid].mask.astype(np.uint8) * 255):
                            raise OSError(f"could not write {p}")
                        written[cid] = _rel(p, out.parent)
                        n_masks += 1
                n = len(g.candidate_ids)
                group_ious = [ious[cid] for cid in g.candidate_ids]
                rec = {
                    "id": f"s{sid}-r{run_id}-g{gi}",
                    "image": [
                        _rel(Path(img_path).resolve(), out.parent),
                        *[written[c] for c in g.candidate_ids],
                    ],
                    "width_list": [w] * (n + 1),
                    "height_list": [h] * (n + 1),
                    "conversations": internvl_conversations(
                        question, n, cot, assistant_text(group_ious, cot, reasoning)
                    ),
                    "prompt_format": fmt,
                    "sample_id": sid,
                    "run_id": int(run_id),
                    "candidate_ids": list(g.candidate_ids),
                    "padded": g.padded,
                    "ious": group_ious,
                    "shuffle_seed": [int(seed), sid],
                }
                if cot and not (reasoning and reasoning.strip()):
                    rec["reasoning_missing"] = True
                elif cot:
                    rec["reasoning_source"] = reasoning_source or ""
                    with_reasoning += 1
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_lines += 1
    meta = out.with_name(f"{out.stem}_meta.json")
    atomic_write(
        meta,
        json.dumps(
            {
                f"rea2seg_evaluator_run{run_id}": {
                    "root": str(out.parent),
                    "annotation": str(out),
                    "data_augment": False,
                    "repeat_time": 1,
                    "length": n_lines,
                    "max_dynamic_patch": int(max_patches),
                    "prompt_format": fmt,
                }
            },
            indent=2,
        ),
    )
    return {
        "samples": used,
        "groups": n_lines,
        "mask_images": n_masks,
        "samples_skipped": skipped,
        "out": str(out),
        "meta": str(meta),
        "images_dir": str(img_dir),
        "prompt_format": fmt,
        "with_reasoning": with_reasoning,
        "reasoning_missing": n_lines - with_reasoning if cot else 0,
    }
