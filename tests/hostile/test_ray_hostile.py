"""A Ray run whose cluster fails part-way (a system process dies): every sample without a
trace is listed, with one line for why, and the exit status is 1. No Ray needed: the engine
is replaced by one that saves two traces and then fails as Ray does."""

from __future__ import annotations

import argparse
import contextlib
import types

import pytest


class RaySystemError(Exception):
    pass


_FAKE_RAY = types.SimpleNamespace(
    exceptions=types.SimpleNamespace(RayError=Exception, RaySystemError=RaySystemError)
)


class FakeEngine:
    ray = _FAKE_RAY
    workers = 2
    saved: list[int] = []

    def __init__(self, job, options) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def describe(self, overrides):
        return {"settings": {}, "is_random": True, "preset": "p", "mllm": "m", "sam": "s"}

    def record(self):
        return {"engine": "ray"}

    def run(self, store, run_id, todo, settings, progress=None):
        FakeEngine.saved = todo[:2]
        raise RaySystemError("System error: the raylet on node 10.0.0.7 died\nmore detail")


@pytest.mark.parametrize("failure", ["system", "workers", "connection"])
def test_a_dead_ray_system_lists_every_unfinished_sample(monkeypatch, capsys, failure):
    from core.cli import ray_run
    from core.pipeline import ray_engine, runner
    from core.store import repo

    FakeEngine.saved = []
    engine_cls = FakeEngine
    if failure == "workers":

        class WorkersDie(FakeEngine):
            def run(self, store, run_id, todo, settings, progress=None):
                FakeEngine.saved = todo[:2]
                raise ray_engine.EngineError("segmenter: workers died 9 times; stopping")

        engine_cls = WorkersDie
    elif failure == "connection":

        class GcsGone(FakeEngine):
            def run(self, store, run_id, todo, settings, progress=None):
                FakeEngine.saved = todo[:2]
                raise ConnectionError("GCS at 10.0.0.7:6379 unreachable")

        engine_cls = GcsGone
    monkeypatch.setattr(ray_engine, "RayEngine", engine_cls)
    monkeypatch.setattr(runner, "record_run", lambda *a, **k: 7)
    monkeypatch.setattr(ray_run, "_settings", lambda d: None)
    monkeypatch.setattr(repo, "finished_sample_ids", lambda s, run_id: set(FakeEngine.saved))

    class Store:
        @contextlib.contextmanager
        def session(self, write=True):
            yield None

    args = argparse.Namespace(
        address=None,
        workers=2,
        gpus_per_worker=None,
        evaluator_workers=0,
        evaluator=None,
        cot=False,
        group_size=2,
        pad_last=False,
        preset="p",
        device="cpu",
        run_name=None,
        limit=None,
    )
    rc = ray_run.run_with_ray(args, Store(), [11, 12, 13, 14, 15], None, None, {})
    out, err = capsys.readouterr()
    assert rc == 1
    assert [ln for ln in err.splitlines() if "unfinished sample" in ln] == [
        f"rea2seg: unfinished sample {i}" for i in (13, 14, 15)
    ]
    assert "the Ray run stopped" in err and "Traceback" not in err
    assert "saved 2 traces, unfinished 3" in out


_KILL_RAYLET = """
import os, signal, sys, time, types
import ray
from core.pipeline.ray_engine import RayEngine

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
engine = types.SimpleNamespace(ray=ray)  # node_alive reads only .ray
before = RayEngine.node_alive(engine)

@ray.remote
class Slow:
    def nap(self):
        time.sleep(30)

ref = Slow.remote().nap.remote()
raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
os.kill(raylet, signal.SIGKILL)  # the raylet this process started, by its id
try:
    ray.get(ref, timeout=60)
    seen = "no error"
except ray.exceptions.RayActorError:
    seen = "actor error"
except ray.exceptions.GetTimeoutError:
    seen = "timeout"
print("RESULT", before, seen, RayEngine.node_alive(engine), flush=True)
os._exit(0)  # before Ray's own exit hooks, which may touch the dead raylet
"""


@pytest.mark.ray
def test_a_killed_raylet_is_seen_before_ray_ends_the_driver():
    """A real local Ray instance: its raylet killed, the driver's next call sees an actor error
    and ``node_alive`` turns false (the run then stops and lists its unfinished samples)."""
    import os
    import subprocess
    import sys

    from tests.hostile.conftest import ROOT

    pytest.importorskip("ray")
    r = subprocess.run(
        [sys.executable, "-c", _KILL_RAYLET],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]  # Ray logs here too
    assert result == ["RESULT True actor error False"], r.stdout[-2000:]
