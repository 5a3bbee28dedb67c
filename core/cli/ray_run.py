"""``rea2seg run --engine``: the engine options and the engine they ask for (the same run as
the local one, on a Ray cluster: :mod:`core.pipeline.ray_engine`, imported only when asked for)."""

from __future__ import annotations

import argparse
import sys


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


def make_engine(args: argparse.Namespace):
    """The engine ``--engine`` asks for: a :class:`core.pipeline.engine.LocalEngine`, or a
    :class:`core.pipeline.ray_engine.RayEngine` (Ray is imported only then). Ray options given
    to a local run are an error, not silently ignored."""
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
    if args.engine != "ray":
        if given:
            raise ValueError(f"{', '.join(given)} only apply with --engine ray")
        from core.pipeline.engine import LocalEngine

        return LocalEngine(device=args.device)
    from core.pipeline.ray_engine import RayEngine, RayOptions

    options = RayOptions(
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        evaluator_workers=args.evaluator_workers,
    )
    return RayEngine(options, device=args.device)


def stopped_part_way(engine, exc: BaseException) -> bool:
    """Whether ``exc``, raised by ``engine.run``, means a Ray run stopped part-way: a Ray system
    process died, the workers kept dying (:class:`core.pipeline.engine.EngineError`) or the
    cluster connection was lost. A local engine never stops so."""
    from core.pipeline.engine import EngineError

    ray = getattr(engine, "ray", None)
    if ray is None:
        return False
    return isinstance(exc, (ray.exceptions.RayError, EngineError, ConnectionError))


def list_unfinished(store, run_id: int, todo: list[int], exc: BaseException) -> int:
    """The run stopped part-way (:func:`stopped_part_way`): one line for why, one line per
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
