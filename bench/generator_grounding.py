"""Does the grounding stage ground a from-scratch LLaVA's attention? (``train generator --stage
grounding``)

Makes a geometric training split and a held-out split of another training seed, a fresh small
LLaVA (``--base scratch``), scores it, trains the grounding stage for ``--minutes``, and scores it
again. Scores on held-out referring questions ("the red cube", LISA's phrase wording, ``[SEG]``
teacher-forced as the LISA loader does):

- ``lift``: attention mass of the position predicting ``[SEG]`` (mean over the loader's layers
  and heads) on image tokens that overlap the target, divided by those tokens' share (1 = chance);
- ``top1``: how often the most attended token overlaps the target;
- ``where``: exact answers to "Where is the …?" (3 × 3 cell words, greedy decoding).

Usage: ``PYTHONPATH=. python bench/generator_grounding.py --out /tmp/grounding --minutes 4``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def score(model_dir: Path, bank, n: int = 60, seed: int = 0) -> dict[str, float]:
    from core.geometric.program import describe, unique_desc
    from core.models.lisa import load_lisa
    from core.training.generator_data import cell_of

    lisa = load_lisa(model_dir)
    tok = lisa.processor.tokenizer
    rng = np.random.default_rng(seed)
    lifts, hits, where = [], [], []
    for i in range(min(n, len(bank))):
        scene, img, masks = bank.get(i)
        objs = [o for o in scene.objects if masks[o.id].sum() >= 50]
        if not objs:
            continue
        o = objs[int(rng.integers(len(objs)))]
        desc = unique_desc(scene, o, rng)
        if desc is None:
            continue
        phrase = describe(desc, rng)
        out = lisa.encode(img, f"the {phrase}", is_sentence=False)
        att = out.attention.mean(axis=(0, 1))
        att = att / att.sum()
        m = masks[o.id]
        on = np.array(
            [
                m[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))].any()
                for x0, y0, x1, y1 in out.token_boxes_xyxy
            ]
        )
        if on.any() and not on.all():
            lifts.append(float(att[on].sum() / on.mean()))
            hits.append(bool(on[int(att.argmax())]))
        # "Where is the …?" answered greedily
        prompt = lisa._prompt("x").replace(
            "x Please output segmentation mask.", f"Where is the {phrase}?"
        )
        square = lisa._image_and_boxes(img)[0]
        inputs = lisa.processor(images=square, text=prompt, return_tensors="pt")
        with torch.inference_mode():
            gen = lisa.model.generate(
                **inputs, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id
            )
        words = tok.decode(gen[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).split()
        where.append(" ".join(words[:2]) == " ".join(cell_of(m)))
    return {
        "questions": len(where),
        "lift": float(np.mean(lifts)) if lifts else 0.0,
        "top1": float(np.mean(hits)) if hits else 0.0,
        "where": float(np.mean(where)) if where else 0.0,
    }


def main() -> None:
    from core.training.generator import GeneratorSettings, scratch_base, train_generator
    from core.training.generator_data import SceneBank
    from core.training.splits import DEFAULT_TRAINING_SEED, prepare_training_split

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--questions", type=int, default=900)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.time()
    train = prepare_training_split(out / "split", args.questions, size_wh=(256, 192))
    held = prepare_training_split(
        out / "held_out", 120, seed=DEFAULT_TRAINING_SEED + 1, size_wh=(256, 192)
    )
    print(f"splits: {train['summary']} | held out: {held['summary']} ({time.time() - t0:.0f} s)")
    base = scratch_base(out / "split", out / "base")
    # the scratch base has no connection module file yet: export it once untrained to score it
    s0 = GeneratorSettings(
        stage="grounding", batch_size=1, grad_accum=1, max_steps=1, lr=1e-12, warmup_steps=0
    )
    before_dir = train_generator(base, out / "split", out / "untrained", s0, progress_bar=False)
    bank = SceneBank(out / "held_out")
    before = score(before_dir, bank)
    print("before grounding:", json.dumps(before))
    s = GeneratorSettings(
        stage="grounding",
        batch_size=args.batch_size,
        grad_accum=1,
        max_steps=100_000,
        max_minutes=args.minutes,
        lr=args.lr,
        warmup_steps=20,
        logging_steps=20,
        save_steps=100_000,
    )
    t1 = time.time()
    after_dir = train_generator(base, out / "split", out / "grounded", s, progress_bar=False)
    info = json.loads((after_dir / "training.json").read_text())
    after = score(after_dir, bank)
    print(f"after grounding ({info['steps']} steps, {time.time() - t1:.0f} s):", json.dumps(after))


if __name__ == "__main__":
    main()
