"""Samples per second of ``rea2seg run --engine ray`` with 1 and 2 (or ``--workers``) workers,
against ``--engine local`` (the models in this process, no Ray).

Runs stage 1 of the ``--preset`` (default ``tiny-random``; with ``--evaluator`` also stage 2) over
the first ``--samples`` samples of the bundled demo project (default all 40), in passes until at
least ``--window`` seconds (default 30) have gone by, so start-up and the first sample's warm-up
weigh little. The local engine runs first, then each worker count on a Ray instance started on
this machine. Each gets a fresh run in a scratch copy of the store and is timed from the first
sample sent to the last trace saved (model loading is timed apart, it happens once per worker). With CUDA, each worker takes one GPU and the line also gives samples/s
per GPU; without, each worker takes one CPU. Prints samples/s per count, the ratio to one worker
and the machine's load average (the numbers are noisy on a shared machine).

    .venv/bin/python bench/ray_scaling.py [--workers 1 2] [--samples 40] [--window 30] [--preset tiny-random] [--evaluator tiny-random]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--window", type=float, default=30.0, help="seconds each engine runs at least")
    ap.add_argument("--preset", default="tiny-random")
    ap.add_argument("--evaluator")
    args = ap.parse_args()

    import ray
    import torch

    from core.demo import ensure_demo_store
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.ray_engine import RayEngine, RayOptions
    from core.pipeline.settings import Stage2Settings
    from core.store import open_store, repo

    def timed(engine, plan) -> tuple[float, float, int]:
        """(samples/s, seconds, samples) over passes of ``engine.run`` on ``plan`` (each pass
        saves its traces again) until the window is full."""
        done, t = 0, time.perf_counter()
        while True:
            report = engine.run(store, plan)
            assert report.saved == len(ids), report
            done += report.saved
            secs = time.perf_counter() - t
            if secs >= args.window:
                return done / secs, secs, done

    def request(name: str) -> RunRequest:
        return RunRequest(
            args.preset, stage2=Stage2Settings(args.evaluator), samples=ids, name=name
        )

    gpus = torch.cuda.device_count()
    cpus = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    store = open_store(ensure_demo_store(tmp / "demo.sqlite"))
    with store.session(write=False) as s:
        ids = [x.id for x in repo.list_samples(s)][: args.samples]
    t_load = time.perf_counter()
    local_engine = LocalEngine()
    local_plan = plan_run(store, request("bench local"), local_engine)
    load_s = time.perf_counter() - t_load
    local, secs, done = timed(local_engine, local_plan)
    local_engine.close()
    print(
        f"local engine: {local:.3f} samples/s ({secs:.1f} s for {done}; models loaded in "
        f"{load_s:.1f} s)"
    )
    t0 = time.perf_counter()
    ray.init(
        num_cpus=max(cpus, max(args.workers)),
        num_gpus=gpus,
        include_dashboard=False,
        log_to_driver=False,
    )
    print(
        f"ray.init {time.perf_counter() - t0:.1f} s; {cpus} CPUs, {gpus} GPUs; {len(ids)} samples, "
        f"preset {args.preset}, evaluator {args.evaluator or 'none'}"
    )
    rates: dict[int, float] = {}
    for n in args.workers:
        options = RayOptions(workers=n, gpus_per_worker=1.0 if gpus else 0.0)
        t_load = time.perf_counter()
        with RayEngine(options) as engine:
            plan = plan_run(store, request(f"bench {n} workers"), engine)
            load_s = time.perf_counter() - t_load
            rates[n], secs, done = timed(engine, plan)
        per_gpu = f", {rates[n] / n:.3f} samples/s per GPU" if gpus else ""
        print(
            f"{n} workers: {rates[n]:.3f} samples/s ({secs:.1f} s for {done}; models loaded in {load_s:.1f} s)"
            f"{per_gpu}; ratio to 1 worker {rates[n] / rates[min(rates)]:.2f}, "
            f"to the local engine {rates[n] / local:.2f}"
        )
    ray.shutdown()
    store.close()
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
