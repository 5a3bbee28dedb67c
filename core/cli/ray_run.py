"""``rea2seg run --engine ray``: the same run as the local one, on a Ray cluster
(:mod:`core.pipeline.ray_engine`). Imported only when that engine is asked for."""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray engine (pip install -e .[ray])")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: one worker per GPU of a Ray cluster",
    )
    g.add_argument(
        "--address", help="Ray cluster: auto | ray://HOST:PORT (default: start Ray on this machine)"
    )
    g.add_argument(
        "--workers",
        type=int,
        help="segmenter workers (default: one per GPU, or per CPU without GPUs)",
    )
    g.add_argument(
        "--gpus-per-worker", type=float, help="GPUs per worker (default: 1 with GPUs, else 0)"
    )
    g.add_argument(
        "--evaluator-workers",
        type=int,
        default=0,
        help="stage 2 in its own pool of N evaluator workers (default 0: inside each segmenter worker)",
    )


def check_engine_arguments(args: argparse.Namespace) -> None:
    """Ray options given to a local run are an error, not silently ignored."""
    given = [
        f
        for f, v in (
            ("--address", args.address),
            ("--workers", args.workers),
            ("--gpus-per-worker", args.gpus_per_worker),
            ("--evaluator-workers", args.evaluator_workers or None),
        )
        if v is not None
    ]
    if args.engine != "ray" and given:
        raise ValueError(f"{', '.join(given)} only apply with --engine ray")


def run_with_ray(
    args: argparse.Namespace, store, ids: list[int], run, resumed, overrides: dict
) -> int:
    """The part of ``cmd_run`` after the samples and the resumed run are known."""
    from core.pipeline.ray_engine import EngineError

    try:
        return _run_with_ray(args, store, ids, run, resumed, overrides)
    except EngineError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2


def list_unfinished(store, run_id: int, todo: list[int], exc: BaseException) -> int:
    """The run stopped part-way (a Ray system process died, or workers kept dying): one line per
    sample of ``todo`` with no trace saved, then the summary; exit status 1."""
    from core.store import repo

    with store.session(write=False) as s:
        done = repo.finished_sample_ids(s, run_id)
    unfinished = [i for i in todo if i not in done]
    why = " ".join(str(exc).split())[:200] or type(exc).__name__
    print(f"rea2seg: the Ray run stopped: {why}", file=sys.stderr)
    for sid in unfinished:
        print(f"rea2seg: unfinished sample {sid}", file=sys.stderr)
    print(
        f"run {run_id}: saved {len(todo) - len(unfinished)} traces, unfinished {len(unfinished)} "
        f"(run again with --resume to finish them)"
    )
    return 1


def _run_with_ray(
    args: argparse.Namespace, store, ids: list[int], run, resumed, overrides: dict
) -> int:
    from core.cli.common import progress_bar
    from core.pipeline.ray_engine import EngineError, JobSpec, RayEngine, RayOptions
    from core.pipeline.runner import Stage2Settings, record_run
    from core.store import repo

    options = RayOptions(
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        evaluator_workers=args.evaluator_workers,
    )
    stage2 = Stage2Settings(
        args.evaluator, cot=args.cot, group_size=args.group_size, pad_last=args.pad_last
    )
    job = JobSpec(
        args.preset if run is None else run.preset,
        args.device,
        args.evaluator,
        args.cot,
        args.group_size,
        args.pad_last,
    )
    t_start = time.perf_counter()
    with RayEngine(job, options) as engine:
        info = engine.describe(overrides)
        record = engine.record()
        if run is None:
            settings = _settings(info["settings"])
            run_id = record_run(
                store,
                info["preset"],
                {"mllm": info["mllm"], "sam": info["sam"], "evaluator": info.get("evaluator")},
                bool(info["is_random"]),
                settings,
                stage2=stage2,
                name=args.run_name,
                engine=record,
            )
        else:
            settings, run_id = resumed, run.id
            with store.session() as s:
                r = repo.get_run(s, run_id)
                r.config = {**r.config, "engines": [*r.config.get("engines", []), record]}
        with store.session(write=False) as s:
            finished = repo.finished_sample_ids(s, run_id)
        todo = [i for i in ids if i not in finished]
        if args.limit is not None:
            todo = todo[: args.limit]
        label = " (RANDOM WEIGHTS: output is noise, not a result)" if info["is_random"] else ""
        print(
            f"run {run_id}: {len(todo)} samples to do, {len(finished)} already done, on {engine.workers} Ray "
            f"workers{f' + {options.evaluator_workers} evaluator workers' if options.evaluator_workers else ''}"
            f" (models loaded in {time.perf_counter() - t_start:.1f} s){label}",
            file=sys.stderr,
        )
        progress, close = progress_bar(len(todo))
        try:
            report = engine.run(store, run_id, todo, settings, progress=progress)
        except (engine.ray.exceptions.RayError, EngineError, ConnectionError) as exc:
            close()
            return list_unfinished(store, run_id, todo, exc)
        finally:
            close()
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
    return 1 if report.skipped or report.failed else 0


def _settings(d: dict):
    from core.pipeline.settings import Stage1Settings

    return Stage1Settings.from_dict(d)
