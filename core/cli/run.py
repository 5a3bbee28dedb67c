"""``rea2seg run`` (stage 1 over a store's samples), ``rea2seg runs`` (list a store's runs) and
``rea2seg trace`` (dump a saved trace)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from core.cli import ray_run
from core.cli.common import add_common, add_scoring_options, progress_bar

if TYPE_CHECKING:
    from core.pipeline.engine import RunReport


def _parse_overrides(text: str | None) -> dict:
    """``--settings`` JSON → overrides of the stage-1 settings (names checked by the request)."""
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
    return d


def cmd_run(args: argparse.Namespace) -> int:
    """Parse → plan → engine → show."""
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.settings import Stage2Settings
    from core.store import open_store

    request = RunRequest(
        args.preset,
        stage2=Stage2Settings(
            args.evaluator, cot=args.cot, group_size=args.group_size, pad_last=args.pad_last
        ),
        overrides=_parse_overrides(args.settings),
        samples=args.sample,
        status=args.status,
        category=args.category,
        resume=args.resume,
        limit=args.limit,
        name=args.run_name,
    )
    engine = ray_run.make_engine(args)
    store = open_store(args.db, create=False)
    try:
        plan = plan_run(store, request, engine)
        if args.resume and not plan.resumed:
            print(
                f"rea2seg: no earlier run with preset {plan.preset} to resume; started a new one",
                file=sys.stderr,
            )
        where = f", {engine.summary()}" if engine.summary() else ""
        label = " (RANDOM WEIGHTS: output is noise, not a result)" if plan.is_random else ""
        print(
            f"run {plan.run_id}: {len(plan.todo)} samples to do, {plan.done} already done"
            f"{where}{label}",
            file=sys.stderr,
        )
        progress, close = progress_bar(len(plan.todo))
        try:
            report = engine.run(store, plan, progress=progress)
        except Exception as exc:
            if not ray_run.stopped_part_way(engine, exc):
                raise
            close()
            return ray_run.list_unfinished(store, plan.run_id, plan.todo, exc)
        finally:
            close()
    finally:
        engine.close()
    return show_report(plan.run_id, report)


def show_report(run_id: int, report: RunReport) -> int:
    """Print a :class:`core.pipeline.engine.RunReport`; the exit status (1 if any sample was
    skipped or failed)."""
    for sid, reason in report.skipped:
        print(f"rea2seg: skipped sample {sid}: {reason}", file=sys.stderr)
    for sid, reason in report.failed:
        print(f"rea2seg: failed sample {sid}: {reason}", file=sys.stderr)
    if report.replaced:
        print(f"rea2seg: {report.replaced} Ray workers died and were replaced", file=sys.stderr)
    extra = "".join(
        f", {k} {len(v)}" for k, v in (("skipped", report.skipped), ("failed", report.failed)) if v
    )
    print(f"run {run_id}: saved {report.saved} traces{extra}")
    return 0 if report.ok else 1


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
    from core.models.config import ALIASES, EVALUATOR_SPECS, PRESET_SPECS, PRESETS
    from core.vocab import CATEGORIES, STATUSES

    p = sub.add_parser(
        "run",
        help="run stage 1 (candidate discovery), and stage 2 with --evaluator, over a store's samples",
    )
    add_common(p)

    def described(spec) -> str:
        notes = [f"alias {a}" for a in getattr(spec, "aliases", ())]
        notes += ["random weights"] if spec.is_random else []
        notes += [spec.label] if getattr(spec, "label", "") else []
        return spec.name + (f" ({', '.join(notes)})" if notes else "")

    p.add_argument(
        "--preset",
        required=True,
        choices=PRESETS + tuple(ALIASES),
        metavar="PRESET",
        help="segmenter: "
        + " | ".join(described(x) for x in PRESET_SPECS)
        + "; paths from the config file",
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
    p.add_argument(
        "--sample",
        nargs="+",
        action="extend",
        metavar="ID",
        help="only these samples (several after one --sample, or --sample repeated): "
        + SAMPLE_HELP,
    )
    p.add_argument("--status", choices=STATUSES, help="only samples with this review status")
    p.add_argument("--category", choices=CATEGORIES, help="only samples of this category")
    p.add_argument(
        "--device",
        help="torch device for the models (cpu, cuda, cuda:N, mps); default: the preset's",
    )
    p.add_argument(
        "--evaluator",
        metavar="PRESET|DIR",
        help="also run stage 2 with this evaluator: a preset ("
        + " | ".join(described(x) for x in EVALUATOR_SPECS)
        + ") or a local InternVL checkpoint directory",
    )
    add_scoring_options(p)
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
