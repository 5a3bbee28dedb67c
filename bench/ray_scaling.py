"""Samples per second of ``rea2seg run --engine ray`` with 1 and 2 (or ``--workers``) workers.

Runs stage 1 of the ``--preset`` (default ``tiny-random``; with ``--evaluator`` also stage 2) over
the first ``--samples`` samples of the bundled demo project, once per worker count, on a Ray
instance started on this machine. Each count gets a fresh run in a scratch copy of the store and
is timed from the first sample sent to the last trace saved (model loading is timed apart, it
happens once per worker). With CUDA, each worker takes one GPU and the line also gives samples/s
per GPU; without, each worker takes one CPU. Prints samples/s per count, the ratio to one worker
and the machine's load average (the numbers are noisy on a shared machine).

    .venv/bin/python bench/ray_scaling.py [--workers 1 2] [--samples 8] [--preset tiny-random] [--evaluator tiny-random]
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
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--preset", default="tiny-random")
    ap.add_argument("--evaluator")
    args = ap.parse_args()

    import ray
    import torch

    from core.demo import ensure_demo_store
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.ray_engine import RayEngine, RayOptions
    from core.pipeline.settings import Stage2Settings
    from core.store import open_store, repo

    gpus = torch.cuda.device_count()
    cpus = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    store = open_store(ensure_demo_store(tmp / "demo.sqlite"))
    with store.session(write=False) as s:
        ids = [x.id for x in repo.list_samples(s)][: args.samples]
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
        request = RunRequest(
            args.preset,
            stage2=Stage2Settings(args.evaluator),
            samples=ids,
            name=f"bench {n} workers",
        )
        with RayEngine(options) as engine:
            plan = plan_run(store, request, engine)
            load_s = time.perf_counter() - t_load
            t = time.perf_counter()
            report = engine.run(store, plan)
            secs = time.perf_counter() - t
        assert report.saved == len(ids), report
        rates[n] = len(ids) / secs
        per_gpu = f", {rates[n] / n:.3f} samples/s per GPU" if gpus else ""
        print(
            f"{n} workers: {rates[n]:.3f} samples/s ({secs:.1f} s for {len(ids)}; models loaded in {load_s:.1f} s)"
            f"{per_gpu}; ratio to 1 worker {rates[n] / rates[min(rates)]:.2f}"
        )
    ray.shutdown()
    store.close()
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
