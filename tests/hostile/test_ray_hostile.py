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
