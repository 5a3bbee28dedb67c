"""``rea2seg run`` (stage 1 over a store's samples) and ``rea2seg trace`` (dump a saved trace)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.cli import ray_run
from core.pipeline.runner import (  # noqa: F401  (names the GUI and tests reach through this module)
    OutOfMemory,
    Segmenter,
    canonical_preset,
    default_settings,
    load_segmenter,
    resumed_settings,
    run_samples,
)


def _bar(i: int, n: int, t0: float, label: str) -> None:
    width = 30
    done = int(width * i / max(n, 1))
    rate = (time.perf_counter() - t0) / max(i, 1)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n}  {rate:.2f} s/sample  {label[:40]:<40}")
    sys.stderr.flush()


def _parse_overrides(text: str | None) -> dict:
    """``--settings`` JSON → overrides of the stage-1 settings (checked against the field names)."""
    from core.pipeline.settings import Stage1Settings

    if not text:
        return {}
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--settings is not valid JSON ({exc}); example: '{{\"k1\": 40, \"tau\": 0.75}}'") from exc
    if not isinstance(d, dict):
        raise ValueError("--settings must be a JSON object, e.g. '{\"k1\": 40}'")
    unknown = set(d) - set(Stage1Settings.__dataclass_fields__)
    if unknown:  # reported before any model loads; values are checked with the run's base settings
        raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
    return d


def cmd_run(args: argparse.Namespace) -> int:
    from core.store import open_store, repo

    overrides = _parse_overrides(args.settings)
    ray_run.check_engine_arguments(args)
    preset = canonical_preset(args.preset)
    store = open_store(args.db)
    with store.session(write=False) as s:
        if args.sample:
            ids = list(args.sample)
            for sid in ids:
                repo.get_sample(s, sid)
        else:
            ids = [x.id for x in repo.list_samples(s, status=args.status, category=args.category)]
        run = repo.latest_run(s, preset) if args.resume else None
    if args.resume and run is None:
        print(f"rea2seg: no earlier run with preset {preset} to resume; starting a new one", file=sys.stderr)
    resumed = None if run is None else resumed_settings(run, overrides)  # checked before loading models
    if args.engine == "ray":
        from core.cli.ray_run import run_with_ray

        return run_with_ray(args, store, ids, run, resumed, overrides)
    seg = load_segmenter(preset, device=args.device)
    evaluator = None
    if args.evaluator:
        from core.evaluator.presets import load_evaluator

        evaluator = load_evaluator(args.evaluator)
    settings = default_settings(seg, **overrides) if resumed is None else resumed
    if run is None:
        with store.session() as s:
            run_id = repo.create_run(
                s, name=args.run_name or f"{preset} {time.strftime('%Y-%m-%d %H:%M')}", preset=preset,
                config={"stage1": settings.to_dict(), "stage2": {"evaluator": args.evaluator, "cot": args.cot,
                                                                  "group_size": args.group_size},
                        "engines": [{"engine": "local", "workers": 1}]},
                model_ids={"mllm": seg.prompt_model.name, "sam": seg.sam.name,
                           "evaluator": evaluator.name if evaluator else None},
                is_random=seg.is_random or bool(evaluator and evaluator.is_random),
            )
    else:
        run_id = run.id
    with store.session(write=False) as s:
        finished = repo.finished_sample_ids(s, run_id)
    todo = [i for i in ids if i not in finished]
    if args.limit is not None:
        todo = todo[: args.limit]
    label = " (RANDOM WEIGHTS: output is noise, not a result)" if seg.is_random else ""
    print(f"run {run_id}: {len(todo)} samples to do, {len(finished)} already done{label}", file=sys.stderr)
    t0 = time.perf_counter()
    skipped: list[tuple[int, str]] = []
    n = run_samples(store, seg, todo, run_id, settings, progress=lambda i, k, name: _bar(i, k, t0, name),
                    evaluator=evaluator, cot=args.cot, group_size=args.group_size, skipped=skipped)
    sys.stderr.write("\n")
    for sid, reason in skipped:
        print(f"rea2seg: skipped sample {sid}: {reason}", file=sys.stderr)
    print(f"run {run_id}: saved {n} traces" + (f", skipped {len(skipped)}" if skipped else ""))
    return 1 if skipped else 0


def cmd_trace(args: argparse.Namespace) -> int:
    from core.store import open_store, repo

    store = open_store(args.db)
    with store.session(write=False) as s:
        if args.run is None:
            runs = repo.runs_for_sample(s, args.sample)
            if not runs:
                print(f"rea2seg: sample {args.sample} has no saved trace", file=sys.stderr)
                return 1
            run_id = runs[-1].id
        else:
            run_id = args.run
        trace = repo.load_trace(s, run_id, args.sample)
    if trace is None:
        print(f"rea2seg: no trace for sample {args.sample} in run {run_id}", file=sys.stderr)
        return 1
    d = trace.to_dict()
    if args.json:
        print(json.dumps(d))
    else:
        print(f"sample {args.sample}, run {run_id}, preset {trace.preset}{'  [RANDOM WEIGHTS]' if trace.is_random else ''}")
        print(f"question: {trace.question}")
        print(f"candidates: {len(trace.candidates)}  " + ", ".join(f"#{c.id} {c.origin} {c.sam_score:.3f}" for c in trace.candidates))
        print("timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in trace.timings.items()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run stage 1 (candidate discovery) over a store's samples")
    p.add_argument("--db", required=True)
    p.add_argument("--preset", required=True, help="lisa-7b | lens-3b (paths from the config file) | tiny-random-lisa (alias tiny-random) | tiny-random-lens")
    p.add_argument("--limit", type=int)
    p.add_argument("--resume", action="store_true", help="continue the latest run of this preset")
    p.add_argument("--run-name")
    p.add_argument("--sample", type=int, nargs="+", help="only these sample ids")
    p.add_argument("--status")
    p.add_argument("--category")
    p.add_argument("--device")
    p.add_argument("--evaluator", help="also run stage 2 with this evaluator preset: tiny-random | internvl3-8b | openai")
    p.add_argument("--cot", action=argparse.BooleanOptionalAction, default=True, help="chain of thought before the scores")
    p.add_argument("--group-size", type=int, default=5, help="masks per evaluator group (s, default 5)")
    p.add_argument("--settings", help='JSON overrides of the stage-1 settings, e.g. \'{"k1": 40, "tau": 0.75}\'')
    ray_run.add_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("trace", help="print a saved trace")
    p.add_argument("--db", required=True)
    p.add_argument("--sample", type=int, required=True)
    p.add_argument("--run", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trace)
