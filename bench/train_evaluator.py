"""Does training move the evaluator? A tiny InternVL-architecture evaluator trained for a few
minutes on CPU, held-out Spearman of predicted vs true IoU before and after.

Data (made here, not by stage 1): scenes of the geometric split (:mod:`core.geometric`: the
scene sampler and renderer with exact instance masks) at ``--size`` pixels. Each question is
either a program-checked question of the split (:func:`core.geometric.program.random_program`
accepted by :func:`core.geometric.program.check`) or, for a share ``--simple`` of them, the
shortest attribute description that picks one object ("the red cube"). Candidates per question
are made DIRECTLY from the scene's instance masks, not by the candidate generator: the target
exact, eroded, dilated, shifted and cut in half, the target joined with another object, and other
objects (exact or dilated): ten masks, true IoU against the target computed exactly. Training
questions come from one seed, held-out ones from another; the files are written in the format of
``rea2seg export evaluator-train`` (no CoT) and read back by the trainer.

Model: :func:`core.training.tiny_evaluator.build_tiny_scoring_internvl` (random init; a
word-level vocabulary with the score tokens ``0.00`` … ``1.00`` and the questions' words),
trained with :func:`core.training.evaluator.train_evaluator` for ``--minutes`` minutes at a
constant learning rate. ``--train all`` (default; not from the paper, whose InternVL3 is
pretrained): every weight of the random model trains — language model, projector and output
layer as ``modules_to_save``, full-rank LoRA on the vision tower's ``fc1`` — as the miniature's
evaluator; ``--train lora``: LoRA on the language model with the projector, output layer and
vision tower trained, the earlier recipe. ``--groups FILE`` trains on the candidates of an
``export evaluator-train`` file (e.g. the miniature's ``groups/train.jsonl``), every sixth sample
held out, instead of candidates made from instance masks.

Two readings of the held-out scores, before and after:

- ``generated``: the real inference path (``load_internvl`` / the adapter directory through
  ``load_evaluator``, greedy generation, the parser); unreadable scores are left out and counted;
- ``expected``: a teacher-forced readout that is defined even for the untrained model — for each
  mask slot, the model's next-token distribution after ``Mask k:`` restricted to the 101 score
  tokens, its expectation as the score (previous slots filled with their rounded expectation).

Prints both, with the wall time of each phase and the process's peak resident memory.

    nice -n 10 .venv/bin/python bench/train_evaluator.py [--minutes 3] [--train-scenes 150]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.evaluator.evaluate import pearson, spearman  # noqa: E402
from core.evaluator.grouping import make_groups  # noqa: E402
from core.evaluator.prompt import canonical_answer, human_value, prompt_format  # noqa: E402
from core.evaluator.quality import assess_evaluator, mae  # noqa: E402
from core.evaluator.trainset import load_question_sets  # noqa: E402
from core.geometric.program import check, describe, phrase, random_program, unique_desc  # noqa: E402
from core.geometric.render import render  # noqa: E402
from core.geometric.scene import sample_scene  # noqa: E402


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = int((a | b).sum())
    return 1.0 if u == 0 else float((a & b).sum()) / u


def _shift(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
    yd, xd = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[ys, xs] = m[yd, xd]
    return out


def _morph(m: np.ndarray, k: int, grow: bool) -> np.ndarray:
    ker = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    f = cv2.dilate if grow else cv2.erode
    return f(m.astype(np.uint8), ker).astype(bool)


def candidate_masks(masks: dict[int, np.ndarray], target: int, rng) -> list[np.ndarray]:
    """Ten candidates from the instance masks (module docstring)."""
    t = masks[target]
    ys, xs = np.nonzero(t)
    h = max(int(ys.max() - ys.min()), 2)
    w = max(int(xs.max() - xs.min()), 2)
    half = t.copy()
    if rng.random() < 0.5:
        half[:, : int(xs.min() + w // 2)] = False
    else:
        half[: int(ys.min() + h // 2), :] = False
    others = [o for o in masks if o != target and masks[o].any()]
    rng.shuffle(others)
    cands = [
        t,
        _morph(t, int(rng.integers(1, 3)), grow=False),
        _morph(t, int(rng.integers(2, 5)), grow=True),
        _shift(t, int(rng.integers(-h // 2, h // 2 + 1)), int(rng.integers(-w // 2, w // 2 + 1))),
        half,
    ]
    if others:
        cands.append(t | masks[others[0]])
    for o in others[:4]:
        m = masks[o]
        cands.append(_morph(m, 2, grow=True) if rng.random() < 0.3 else m)
    while len(cands) < 10:
        cands.append(_shift(t, int(rng.integers(-h, h + 1)), int(rng.integers(-w, w + 1))))
    return [c for c in cands if c.any()][:10]


def make_questions(n_scenes: int, seed: int, size_wh: tuple[int, int], simple: float):
    """[(image, question, [candidate masks], [true IoUs])] from ``n_scenes`` scenes (≤ 2 each)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_scenes):
        scene = sample_scene(rng, f"s{seed}-{i}", size_wh)
        img, masks = render(scene)
        for _ in range(2):
            if rng.random() < simple:
                obj = scene.objects[int(rng.integers(len(scene.objects)))]
                d = unique_desc(scene, obj, rng)
                if d is None or not masks[obj.id].any():
                    continue
                q, tid = f"Find the {describe(d, rng)} .", obj.id
            else:
                for _try in range(30):
                    prog = random_program(scene, rng)
                    v = check(scene, prog)
                    if v.ok:
                        break
                else:
                    continue
                q, tid = phrase(prog, rng), v.target
                if not masks[tid].any():
                    continue
            cands = candidate_masks(masks, tid, rng)
            out.append((img, q, cands, [_iou(c, masks[tid]) for c in cands]))
    return out


def write_jsonl(folder: Path, questions, name: str) -> Path:
    """The questions as ``rea2seg export evaluator-train`` lines (groups of five, no CoT)."""
    img_dir = folder / f"{Path(name).stem}_images"
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for qi, (img, q, cands, ious) in enumerate(questions):
        ip = img_dir / f"q{qi}.png"
        cv2.imwrite(str(ip), img[:, :, ::-1])
        paths = []
        for ci, m in enumerate(cands):
            mp = img_dir / f"q{qi}_c{ci}.png"
            cv2.imwrite(str(mp), m.astype(np.uint8) * 255)
            paths.append(str(mp.relative_to(folder)))
        for gi, g in enumerate(make_groups(range(len(cands)), 5, [0, qi])):
            gi_ious = [ious[c] for c in g.candidate_ids]
            lines.append(
                json.dumps(
                    {
                        "id": f"s{qi}-r0-g{gi}",
                        "image": [
                            str(ip.relative_to(folder)),
                            *[paths[c] for c in g.candidate_ids],
                        ],
                        "conversations": [
                            {"from": "human", "value": human_value(q, len(gi_ious), False)},
                            {"from": "gpt", "value": canonical_answer(gi_ious)},
                        ],
                        "prompt_format": prompt_format(False),
                        "sample_id": qi,
                        "run_id": 0,
                        "candidate_ids": list(g.candidate_ids),
                        "padded": g.padded,
                        "ious": gi_ious,
                    }
                )
            )
    out = folder / name
    out.write_text("\n".join(lines) + "\n")
    return out


def split_groups(groups: Path, folder: Path) -> tuple[Path, Path]:
    """An ``export evaluator-train`` file split by sample id (every sixth held out), image paths
    made absolute: (training file, held-out file)."""
    folder.mkdir(parents=True, exist_ok=True)
    train, held = [], []
    for line in groups.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        rec["image"] = [str((groups.parent / p).resolve()) for p in rec["image"]]
        (held if int(rec["sample_id"]) % 6 == 0 else train).append(json.dumps(rec))
    out = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, lines in zip(out, (train, held), strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def expected_scores(ev, questions, max_patches: int) -> tuple[list[float], list[float]]:
    """The teacher-forced readout of the module docstring: (predicted, true) over all candidates."""
    import torch

    from core.training.evaluator import build_group_prompt
    from core.training.tiny_evaluator import SCORE_WORDS

    tok = ev.processor.tokenizer
    score_ids = torch.tensor([tok.convert_tokens_to_ids(w) for w in SCORE_WORDS[:101]])
    values = torch.linspace(0, 1, 101, dtype=torch.float64)
    placeholder = tok.convert_tokens_to_ids("0.50")
    pred, true = [], []
    for qi, qs in enumerate(questions):
        image = qs.load_image()
        masks = [qs.load_mask(i) for i in range(len(qs))]
        for g in make_groups(range(len(qs)), 5, [0, 0, qi]):
            text, images, tiling = build_group_prompt(
                ev.processor,
                image,
                [masks[i] for i in g.candidate_ids],
                qs.question,
                False,
                max_patches,
            )
            enc = ev.processor(text=[text], images=images, return_tensors="pt", **tiling)
            ans = tok(canonical_answer([0.5] * len(g.candidate_ids)), add_special_tokens=False)
            ans = torch.tensor([ans["input_ids"]])
            ids = torch.cat([enc["input_ids"], ans], dim=1)
            with torch.inference_mode():
                logits = ev.model(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    pixel_values=enc["pixel_values"].to(ev.model.dtype),
                ).logits[0]
            n = enc["input_ids"].shape[1]
            slots = [n + k for k in range(ans.shape[1]) if int(ans[0, k]) == placeholder]
            for slot, i in zip(slots, g.own_ids, strict=False):
                p = torch.softmax(logits[slot - 1, score_ids].double(), dim=0)
                pred.append(float((p * values).sum()))
                true.append(qs.ious[i])
    return pred, true


def measure(ev, held, max_patches: int, repeats: int) -> dict:
    t = time.perf_counter()
    p, y = expected_scores(ev, held, max_patches)
    gen = assess_evaluator(ev, held, repeats=repeats, cot=False)
    return {
        "expected": {
            "spearman": spearman(np.asarray(p), np.asarray(y)),
            "pearson": pearson(np.asarray(p), np.asarray(y)),
            "mae": mae(p, y),
            "n": len(p),
        },
        "generated": {
            k: gen[k]
            for k in (
                "spearman",
                "pearson",
                "mae",
                "unscored",
                "n_candidates",
                "giou",
                "position_bias",
            )
        },
        "seconds": time.perf_counter() - t,
    }


def _f(v, d=3):
    return "—" if v is None else f"{v:.{d}f}"


def report(tag: str, m: dict) -> None:
    e, g = m["expected"], m["generated"]
    print(
        f"{tag:>9}: expected-score Spearman {_f(e['spearman'])} (Pearson {_f(e['pearson'])}, "
        f"MAE {_f(e['mae'])}, n {e['n']}); generated Spearman {_f(g['spearman'])} (Pearson "
        f"{_f(g['pearson'])}, MAE {_f(g['mae'])}, {g['n_candidates'] - g['unscored']}/{g['n_candidates']} "
        f"readable), top-1 gIoU {_f(g['giou']['top1'])} / oracle {_f(g['giou']['oracle'])}, "
        f"position bias tau {_f(g['position_bias']['kendall_tau'])} [{m['seconds']:.0f} s]"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="training time")
    ap.add_argument(
        "--train-scenes", type=int, default=150, help="training scenes (≤ 2 questions each)"
    )
    ap.add_argument("--heldout-scenes", type=int, default=20, help="held-out scenes (another seed)")
    ap.add_argument(
        "--size", type=int, nargs=2, default=(160, 120), metavar=("W", "H"), help="scene size"
    )
    ap.add_argument("--simple", type=float, default=0.5, help="share of attribute-only questions")
    ap.add_argument("--hidden", type=int, default=128, help="language model width")
    ap.add_argument("--layers", type=int, default=2, help="language model layers")
    ap.add_argument(
        "--lora-rank", type=int, default=32, help="LoRA rank (the paper's 128 is for 8B)"
    )
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate (constant after warm-up)")
    ap.add_argument("--batch-size", type=int, default=8, help="groups per step")
    ap.add_argument("--repeats", type=int, default=2, help="regroupings for the position bias")
    ap.add_argument(
        "--train",
        choices=("all", "lora"),
        default="all",
        help="all: every weight of the random model trains, as the miniature's evaluator "
        "(language model, projector and output layer as modules_to_save, full-rank LoRA on the "
        "vision tower's fc1); lora: LoRA on the language model with the projector, output layer "
        "and vision tower trained (the earlier recipe, which did not learn to rank)",
    )
    ap.add_argument(
        "--groups",
        metavar="FILE",
        help="train on the candidates of an `export evaluator-train` file (e.g. the miniature's "
        "groups/train.jsonl) instead of candidates made from instance masks; every sixth sample "
        "id is held out",
    )
    ap.add_argument("--keep", metavar="DIR", help="keep the data, model and adapter here")
    args = ap.parse_args(argv)

    import torch

    from core.evaluator.local_internvl import load_internvl
    from core.evaluator.presets import load_evaluator
    from core.training.evaluator import EvaluatorTrainSettings, train_evaluator
    from core.training.tiny_evaluator import build_tiny_scoring_internvl

    torch.set_num_threads(2)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rea2seg-bench-ev-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.groups:
        train_file, held_file = split_groups(Path(args.groups), root / "data")
        words = {w for q in load_question_sets(args.groups) for w in q.question.split()}
    else:
        train_q = make_questions(args.train_scenes, 1, tuple(args.size), args.simple)
        held_q = make_questions(args.heldout_scenes, 2, tuple(args.size), args.simple)
        train_file = write_jsonl(root / "data", train_q, "train.jsonl")
        held_file = write_jsonl(root / "data", held_q, "heldout.jsonl")
        words = {w for _, q, _, _ in train_q + held_q for w in q.split()}
    base = build_tiny_scoring_internvl(
        root / "base", words, hidden=args.hidden, layers=args.layers, side=112, patch=14
    )
    held = load_question_sets(held_file)
    n_train = len(load_question_sets(train_file))
    print(
        f"data: {n_train} training questions, {len(held)} held-out "
        f"({sum(len(q) for q in held)} candidates), {time.perf_counter() - t0:.0f} s"
    )
    ev0 = load_internvl(base, max_patches=1, max_new_tokens=58)
    n_params = sum(p.numel() for p in ev0.model.parameters())
    # the untrained model writes no readable score, so regrouping it again would only cost time
    before = measure(ev0, held, 1, 1)
    report("untrained", before)
    del ev0
    settings = EvaluatorTrainSettings(
        stage=1,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_rank,
        lr=args.lr,
        lr_scheduler="constant_with_warmup",
        warmup=10,  # steps (a share of the nominal 1000 epochs would never end)
        epochs=1000,
        max_minutes=args.minutes,
        batch_size=args.batch_size,
        save_steps=100000,
        max_patches=1,
        cot_ratio=0.0,
        **(
            {
                "lora_targets": r".*vision_tower.*\.fc1",
                "modules_to_save": ("language_model", "multi_modal_projector", "lm_head"),
            }
            if args.train == "all"
            else {"modules_to_save": ("multi_modal_projector", "lm_head", "vision_tower")}
        ),
    )
    res = train_evaluator([train_file], base, root / "adapter", settings)
    print(
        f"trained {res.steps} steps ({res.steps * args.batch_size} groups) in {res.seconds:.0f} s, "
        f"last loss {_f(res.final_loss)}; model {n_params / 1e6:.2f} M parameters"
    )
    ev1 = load_evaluator(res.out)
    after = measure(ev1, held, 1, args.repeats)
    report("trained", after)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - t0:.0f} s, peak resident memory {peak:.0f} MiB (CPU)")
    print(f"files in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
