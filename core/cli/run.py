"""``rea2seg run`` (stage 1 over a store's samples), ``rea2seg runs`` (list a store's runs) and
``rea2seg trace`` (dump a saved trace)."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli import ray_run
from core.cli.common import add_common, progress_bar


def _parse_overrides(text: str | None) -> dict:
    """``--settings`` JSON → overrides of the stage-1 settings (checked against the field names)."""
    from core.pipeline.settings import Stage1Settings

    if not text:
        return {}
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'--settings is not valid JSON ({exc}); example: \'{{"k1": 40, "tau": 0.75}}\''
        ) from exc
    if not isinstance(d, dict):
        raise ValueError("--settings must be a JSON object, e.g. '{\"k1\": 40}'")
    unknown = set(d) - set(Stage1Settings.__dataclass_fields__)
    if unknown:  # reported before any model loads; values are checked with the run's base settings
        raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
    return d


def cmd_run(args: argparse.Namespace) -> int:
    from core.pipeline import runner
    from core.store import open_store, repo

    overrides = _parse_overrides(args.settings)
    ray_run.check_engine_arguments(args)
    preset = runner.canonical_preset(args.preset)
    store = open_store(args.db, create=False)
    with store.session(write=False) as s:
        if args.sample:
            ids = list(dict.fromkeys(repo.find_sample(s, ref).id for ref in args.sample))
        else:
            ids = [x.id for x in repo.list_samples(s, status=args.status, category=args.category)]
        run = repo.latest_run(s, preset) if args.resume else None
    if args.resume and run is None:
        print(
            f"rea2seg: no earlier run with preset {preset} to resume; starting a new one",
            file=sys.stderr,
        )
    resumed = (
        None if run is None else runner.resumed_settings(run, overrides)
    )  # checked before loading models
    stage2 = runner.Stage2Settings(
        args.evaluator, cot=args.cot, group_size=args.group_size, pad_last=args.pad_last
    )
    if args.engine == "ray":
        from core.cli.ray_run import run_with_ray

        return run_with_ray(args, store, ids, run, resumed, overrides)
    seg = runner.load_segmenter(preset, device=args.device)
    evaluator = None
    if args.evaluator:
        from core.evaluator.presets import load_evaluator

        # cot given: an adapter trained on another prompt format is refused before the run row
        evaluator = load_evaluator(args.evaluator, cot=stage2.cot)
    settings = runner.default_settings(seg, **overrides) if resumed is None else resumed
    if run is None:
        run_id = runner.create_run(
            store,
            seg,
            settings,
            stage2=stage2,
            evaluator=evaluator,
            name=args.run_name,
            engine={"engine": "local", "workers": 1},
        )
    else:
        run_id = run.id
    with store.session(write=False) as s:
        finished = repo.finished_sample_ids(s, run_id)
    todo = [i for i in ids if i not in finished]
    if args.limit is not None:
        todo = todo[: args.limit]
    label = " (RANDOM WEIGHTS: output is noise, not a result)" if seg.is_random else ""
    print(
        f"run {run_id}: {len(todo)} samples to do, {len(finished)} already done{label}",
        file=sys.stderr,
    )
    skipped: list[tuple[int, str]] = []
    progress, close = progress_bar(len(todo))
    try:
        n = runner.run_samples(
            store,
            seg,
            todo,
            run_id,
            settings,
            progress=progress,
            evaluator=evaluator,
            cot=stage2.cot,
            group_size=stage2.group_size,
            pad_last=stage2.pad_last,
            skipped=skipped,
        )
    finally:
        close()
    for sid, reason in skipped:
        print(f"rea2seg: skipped sample {sid}: {reason}", file=sys.stderr)
    print(f"run {run_id}: saved {n} traces" + (f", skipped {len(skipped)}" if skipped else ""))
    return 1 if skipped else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.store import open_store, repo

    store = open_store(args.db, create=False)
    try:
        rows = store.run(
            lambda s: [
                {
                    "id": r.id,
                    "name": r.name,
                    "preset": r.preset,
                    "is_random": r.is_random,
                    "created_at": r.created_at.isoformat(timespec="seconds"),
                    "samples": len(repo.finished_sample_ids(s, r.id)),
                }
                for r in repo.list_runs(s)
            ],
            write=False,
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        random = "  [RANDOM WEIGHTS]" if r["is_random"] else ""
        print(
            f"{r['id']:>5}  {r['created_at']}  {r['preset']:<18}{r['samples']:>7} samples  {r['name']}{random}"
        )
    if not rows:
        print("no runs yet (start one with rea2seg run)", file=sys.stderr)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from core.store import open_store, repo

    store = open_store(args.db, create=False)
    with store.session(write=False) as s:
        sample_id = repo.find_sample(s, args.sample).id
        if args.run is None:
            runs = repo.runs_for_sample(s, sample_id)
            if not runs:
                print(f"rea2seg: sample {args.sample} has no saved trace", file=sys.stderr)
                return 1
            run_id = runs[-1].id
        else:
            run_id = args.run
        trace = repo.load_trace(s, run_id, sample_id)
        stale = repo.trace_is_stale(s, run_id, sample_id)
        question_now = repo.get_sample(s, sample_id).question
    if trace is None:
        print(f"rea2seg: no trace for sample {args.sample} in run {run_id}", file=sys.stderr)
        return 1
    if stale:
        from core.trace import STALE_NOTE

        print(
            f"rea2seg: {STALE_NOTE} (run asked {trace.question!r}; now {question_now!r})",
            file=sys.stderr,
        )
    d = trace.to_dict()
    if args.json:
        print(json.dumps(d))
    else:
        print(
            f"sample {sample_id}, run {run_id}, preset {trace.preset}{'  [RANDOM WEIGHTS]' if trace.is_random else ''}"
        )
        print(f"question: {trace.question}")
        print(
            f"candidates: {len(trace.candidates)}  "
            + ", ".join(f"#{c.id} {c.origin} {c.sam_score:.3f}" for c in trace.candidates)
        )
        print("timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in trace.timings.items()))
    return 0


SAMPLE_HELP = (
    "a sample's numeric id, or its own (SGDR) id as shown in exports; #N forces numeric id N"
)


def register(sub) -> None:
    from core.evaluator.grouping import GROUP_SIZE
    from core.models.config import ALIASES, EVALUATOR_PRESETS, PRESETS
    from core.vocab import CATEGORIES, STATUSES

    p = sub.add_parser(
        "run",
        help="run stage 1 (candidate discovery), and stage 2 with --evaluator, over a store's samples",
    )
    add_common(p)
    p.add_argument(
        "--preset",
        required=True,
        choices=PRESETS + tuple(ALIASES),
        metavar="PRESET",
        help="segmenter: lisa-7b | lens-3b (paths from the config file) | tiny-random-lisa "
        "(alias tiny-random) | tiny-random-lens (random weights)",
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="run at most N samples (after those already done)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest run of this preset with its settings",
    )
    p.add_argument("--run-name", help="name of the new run (default: preset and date)")
    p.add_argument("--sample", nargs="+", metavar="ID", help="only these samples: " + SAMPLE_HELP)
    p.add_argument("--status", choices=STATUSES, help="only samples with this review status")
    p.add_argument("--category", choices=CATEGORIES, help="only samples of this category")
    p.add_argument(
        "--device",
        help="torch device for the models (cpu, cuda, cuda:N, mps); default: the preset's",
    )
    p.add_argument(
        "--evaluator",
        metavar="PRESET|DIR",
        help=f"also run stage 2 with this evaluator: a preset ({' | '.join(EVALUATOR_PRESETS)}) "
        "or a local InternVL checkpoint directory",
    )
    p.add_argument(
        "--cot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="chain of thought before the scores",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=GROUP_SIZE,
        help=f"masks per evaluator group (s, default {GROUP_SIZE})",
    )
    p.add_argument(
        "--pad-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pad a short last group with candidates of earlier groups (default; not from the paper)",
    )
    p.add_argument(
        "--settings",
        help='JSON overrides of the stage-1 settings, e.g. \'{"k1": 40, "tau": 0.75}\'',
    )
    ray_run.add_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "runs", help="list a store's runs: id, date, preset, samples with a trace, name"
    )
    add_common(p, json=True)
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("trace", help="print a saved trace")
    add_common(p)
    p.add_argument("--sample", required=True, metavar="ID", help=SAMPLE_HELP)
    p.add_argument("--run", type=int, help="run id (default: the sample's latest run with a trace)")
    p.add_argument("--json", action="store_true", help="the whole trace as JSON")
    p.set_defaults(func=cmd_trace)
