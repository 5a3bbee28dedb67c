"""``rea2seg ask IMAGE "QUESTION"``: answer one question on one image (the app's Ask bar, for
scripts and demos); prints the answer and the ranked candidates."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.common import add_scoring_options

RANDOM_NOTE = "RANDOM WEIGHTS: the answer is noise, not a result"


def cmd_ask(args: argparse.Namespace) -> int:
    from core.images import load_image_rgb
    from core.pipeline.ask import ask, save_answer, summary
    from core.pipeline.cache import ModelCache
    from core.pipeline.settings import Stage2Settings

    image = load_image_rgb(args.image)  # ImageError: one line, status 2
    if not args.question.strip():
        raise ValueError("the question is empty")
    store = None
    if args.db:
        from core.store import open_store

        store = open_store(args.db, create=True)
    models = ModelCache(device=args.device)
    together = _fits(args) if args.evaluator else True
    segmenter = models.segmenter(args.preset)
    evaluator = models.evaluator(args.evaluator) if args.evaluator and together else None

    def load_evaluator():  # when both do not fit: after stage 1, the segmenter freed first
        models.release_segmenter(args.preset)
        return models.evaluator(args.evaluator)

    stage2 = Stage2Settings(args.evaluator, cot=args.cot, group_size=args.group_size)

    def progress(stage: str, fraction: float, trace: object) -> None:
        if not args.json and stage != "done":
            print(f"  {fraction:4.0%} {stage}", file=sys.stderr)

    trace = ask(
        image,
        args.question,
        segmenter,
        evaluator=evaluator,
        stage2=stage2,
        progress=progress,
        load_evaluator=None if together else load_evaluator,
    )
    info = summary(trace)
    if args.mask_out:
        _write_mask(args.mask_out, trace)
    if store is not None:
        try:
            info["sample_id"], info["run_id"] = save_answer(store, trace, args.image, stage2=stage2)
        finally:
            store.close()
    if args.json:
        if info["is_random"]:
            info["note"] = RANDOM_NOTE
        print(json.dumps(info, indent=2))
        return 0
    if info["is_random"]:
        print(RANDOM_NOTE)
    answer = info["answer"]
    print(
        f"answer: candidate {answer}"
        if answer is not None
        else "answer: the initial mask M (no candidate could be scored)"
    )
    print(f"{'rank':>4}  {'id':>3}  {'origin':<9}  {'score':>6}  {'SAM IoU':>7}  {'area':>8}")
    for c in info["candidates"]:
        score = "-" if c["score"] is None else f"{c['score']:.3f}"
        print(
            f"{c['rank']:>4}  {c['id']:>3}  {c['origin']:<9}  {score:>6}  "
            f"{c['sam_score']:>7.3f}  {c['area']:>8}"
        )
    if "sample_id" in info:
        print(f"saved as sample {info['sample_id']} (dataset ask) with run {info['run_id']}")
    return 0


def _fits(args: argparse.Namespace) -> bool:
    """Whether the segmenter and the evaluator presets both fit on the device
    (:func:`core.pipeline.memory.plan_ask`); when not, says so on stderr. An evaluator given as a
    folder, or a plan that cannot be made, loads them together."""
    from core.models.base import ModelLoadError
    from core.pipeline.memory import plan_ask

    try:
        plan = plan_ask(args.preset, args.evaluator, device=args.device)
    except (ModelLoadError, ValueError, OSError):
        return True
    if not plan.together:
        print(plan.message, file=sys.stderr)
    return plan.together


def _write_mask(path: str, trace: object) -> None:
    """The answer mask as an 8-bit PNG, 255 inside and 0 outside, at the image's resolution."""
    import cv2
    import numpy as np

    from core.evaluator.stage2 import answer_mask

    mask = answer_mask(trace)  # type: ignore[arg-type]
    if mask is None:
        raise ValueError("there is no answer mask to write (no candidate and no initial mask)")
    ok, data = cv2.imencode(".png", np.asarray(mask, dtype=np.uint8) * 255)
    if not ok:
        raise OSError(f"{path}: cannot encode the mask as PNG")
    from core.fileio import atomic_write

    atomic_write(path, data.tobytes())


def register(sub) -> None:
    from core.models.config import ALIASES, EVALUATOR_SPECS, PRESET_SPECS, PRESETS

    p = sub.add_parser(
        "ask",
        help="answer one question on one image: prints the answer and the ranked candidates",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file (JPEG, PNG, …)")
    p.add_argument("question", metavar="QUESTION", help="the question, in quotes")
    p.add_argument(
        "--preset",
        required=True,
        choices=PRESETS + tuple(ALIASES),
        metavar="PRESET",
        help="segmenter: "
        + " | ".join(x.name + (" (random weights)" if x.is_random else "") for x in PRESET_SPECS),
    )
    p.add_argument(
        "--evaluator",
        metavar="PRESET|DIR",
        help="also run stage 2 with this evaluator: "
        + " | ".join(x.name + (" (random weights)" if x.is_random else "") for x in EVALUATOR_SPECS)
        + " or a local InternVL checkpoint directory",
    )
    add_scoring_options(p)
    p.add_argument("--device", help="torch device (cpu, cuda, cuda:N, mps); default: the preset's")
    p.add_argument("--json", action="store_true", help="print the answer and candidates as JSON")
    p.add_argument("--mask-out", metavar="PNG", help="write the answer mask here (0/255 PNG)")
    p.add_argument(
        "--db",
        metavar="PATH|URL",
        help="also save the answer in this store: a sample of dataset 'ask' with its run and trace",
    )
    p.set_defaults(func=cmd_ask)
