"""Evaluator-training export (§4.4): groups of candidates with their true IoU, as InternVL
fine-tuning conversations (JSONL), with the mask images written beside the file.

Each line: ``{"id", "image": [original, mask_1, …], "conversations": [{"from": "human",
"value": "<image>\\n… <image>\\n" + prompt}, {"from": "gpt", "value": "Mask 1: 0.83\\n…"}]}``,
image paths relative to the JSONL file. Masks are PNG (0/255) for the model's eyes only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from core.evaluator.grouping import make_groups
from core.evaluator.prompt import canonical_answer, user_text
from core.masks import mask_iou
from core.store import Store, repo


def export_evaluator_train(store: Store, run_id: int, out_jsonl: str | Path, *, group_size: int = 5, seed: int = 0,
                           cot: bool = False) -> dict[str, int]:
    out = Path(out_jsonl).resolve()
    mask_dir = out.parent / f"{out.stem}_masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    with store.session(write=False) as s:
        repo.get_run(s, run_id)
        ids = sorted(repo.finished_sample_ids(s, run_id))
    n_lines = n_masks = skipped = 0
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for sid in ids:
            with store.session(write=False) as s:
                trace = repo.load_trace(s, run_id, sid)
                smp = repo.get_sample(s, sid)
                gt = repo.current_mask(s, sid)
                img_path = repo.image_path(smp)
            if gt is None or trace is None or not trace.candidates:
                skipped += 1
                continue
            by_id = {c.id: c for c in trace.candidates}
            for gi, group in enumerate(make_groups(list(by_id), group_size, seed + sid)):
                images = [os.path.relpath(img_path, out.parent)]
                for cid in group:
                    p = mask_dir / f"s{sid}_r{run_id}_c{cid}.png"
                    if not p.exists():
                        cv2.imwrite(str(p), np.ascontiguousarray(by_id[cid].mask, dtype=np.uint8) * 255)
                        n_masks += 1
                    images.append(os.path.relpath(p, out.parent))
                ious = [mask_iou(by_id[cid].mask, gt) for cid in group]
                human = "Image-1: <image>\n" + "".join(f"Image-{i + 2}: <image>\n" for i in range(len(group)))
                human += user_text(smp.question, len(group), cot)
                rec = {"id": f"s{sid}-r{run_id}-g{gi}", "image": images, "candidate_ids": group,
                       "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": canonical_answer(ious)}]}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_lines += 1
    tmp.replace(out)
    return {"groups": n_lines, "mask_images": n_masks, "samples_skipped": skipped}
