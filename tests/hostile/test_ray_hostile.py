"""A Ray run whose cluster fails part-way (a system process dies): every sample without a
trace is listed, with one line for why, and the exit status is 1. No Ray needed: the engine
is replaced by one that saves two traces and then fails as Ray does."""

from __future__ import annotations

import argparse
import contextlib
import types

import pytest


class RayError(Exception):
    pass


class RaySystemError(RayError):
    pass


_FAKE_RAY = types.SimpleNamespace(
    exceptions=types.SimpleNamespace(RayError=RayError, RaySystemError=RaySystemError)
)


class FakeEngine:
    """Saves the first two samples of the plan, then fails as a Ray cluster does."""

    ray = _FAKE_RAY
    saved: list[int] = []

    def summary(self) -> str:
        return "on 2 Ray workers"

    def fail(self) -> Exception:
        return RaySystemError("System error: the raylet on node 10.0.0.7 died\nmore detail")

    def run(self, store, plan, *, progress=None, should_cancel=None):
        FakeEngine.saved = plan.todo[:2]
        raise self.fail()

    def close(self) -> None:
        pass


@pytest.mark.parametrize("failure", ["system", "workers", "connection"])
def test_a_dead_ray_system_lists_every_unfinished_sample(monkeypatch, capsys, failure):
    from core.cli import ray_run
    from core.cli import run as cli_run
    from core.pipeline import engine as engine_mod
    from core.pipeline import plan as plan_mod
    from core.store import repo

    FakeEngine.saved = []
    engine = FakeEngine()
    if failure == "workers":
        engine.fail = lambda: engine_mod.EngineError("segmenter: workers died 9 times; stopping")
    elif failure == "connection":
        engine.fail = lambda: ConnectionError("GCS at 10.0.0.7:6379 unreachable")

    class Store:
        @contextlib.contextmanager
        def session(self, write=True):
            yield None

    plan = types.SimpleNamespace(
        run_id=7, todo=[11, 12, 13, 14, 15], done=0, resumed=False, is_random=True, preset="p"
    )
    monkeypatch.setattr(ray_run, "make_engine", lambda args: engine)
    monkeypatch.setattr(plan_mod, "plan_run", lambda store, request, eng: plan)
    monkeypatch.setattr("core.store.open_store", lambda db, create=False: Store())
    monkeypatch.setattr(repo, "finished_sample_ids", lambda s, run_id: set(FakeEngine.saved))
    args = argparse.Namespace(
        preset="p",
        evaluator=None,
        cot=False,
        group_size=2,
        pad_last=False,
        settings=None,
        sample=None,
        status=None,
        category=None,
        resume=False,
        limit=None,
        run_name=None,
        db="unused",
    )
    rc = cli_run.cmd_run(args)
    out, err = capsys.readouterr()
    assert rc == 1
    assert [ln for ln in err.splitlines() if "unfinished sample" in ln] == [
        f"rea2seg: unfinished sample {i}" for i in (13, 14, 15)
    ]
    assert "the Ray run stopped" in err and "Traceback" not in err
    assert "saved 2 traces, unfinished 3" in out


def test_a_local_run_error_is_not_taken_for_a_stopped_ray_run():
    from core.cli import ray_run
    from core.pipeline.engine import EngineError

    local = types.SimpleNamespace()  # a LocalEngine has no .ray
    assert not ray_run.stopped_part_way(local, EngineError("x"))
    assert ray_run.stopped_part_way(FakeEngine(), EngineError("x"))
    assert not ray_run.stopped_part_way(FakeEngine(), KeyError("bug"))


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


# -- a system process dies between samples ---------------------------------------------------


class _Ref:
    def __init__(self, value) -> None:
        self.value = value


class _Died(BaseException):
    """What Ray does at a put once its raylet is gone: the driver process ends (no exception
    the run could catch)."""


def test_a_system_process_dying_between_samples_stops_before_the_next_put(monkeypatch):
    """No sample is in flight when the raylet dies: the run must see it before it sends the
    next sample (whose ``ray.put`` would end the process) and raise the engine's error, which
    the CLI turns into the list of unfinished samples."""
    from core.pipeline import ray_engine
    from core.pipeline.engine import EngineError
    from core.store import repo

    state = {"dead": False, "puts": 0, "saved": []}

    class Actor:
        class _Method:
            def __init__(self, fn) -> None:
                self.remote = fn

        def __init__(self) -> None:
            self.configure = self._Method(lambda settings: _Ref(None))
            self.segment = self._Method(self._segment)

        def _segment(self, sid, name, question, ref, is_sentence):
            state["dead"] = True  # the raylet dies once this sample's answer is back
            return _Ref(("trace", {"sample": sid}))

    def put(data):
        if state["dead"]:
            raise _Died
        state["puts"] += 1
        return _Ref(data)

    fake_ray = types.SimpleNamespace(
        put=put,
        get=lambda x: [r.value for r in x] if isinstance(x, list) else x.value,
        wait=lambda refs, num_returns=1: (refs[:1], refs[1:]),
        exceptions=types.SimpleNamespace(
            RayActorError=type("RayActorError", (Exception,), {}),
            RayTaskError=type("RayTaskError", (Exception,), {}),
        ),
    )
    engine = ray_engine.RayEngine.__new__(ray_engine.RayEngine)
    engine.ray, engine.info, engine.evaluators = fake_ray, "models", None
    engine.options = types.SimpleNamespace(retries=0)
    engine.segmenters = types.SimpleNamespace(actors=[Actor()], idle=[0], replaced=0)
    monkeypatch.setattr(
        ray_engine.RayEngine, "node_alive", lambda self: not state["dead"], raising=True
    )
    monkeypatch.setattr(ray_engine, "read_image_bytes", lambda path: b"png")
    sample = types.SimpleNamespace(external_id="x", question="q", is_sentence=None)
    monkeypatch.setattr(repo, "get_sample", lambda s, sid: sample)
    monkeypatch.setattr(repo, "image_path", lambda smp: "a.png")
    monkeypatch.setattr(repo, "save_trace", lambda s, run, sid, tr: state["saved"].append(sid))
    store = types.SimpleNamespace(run=lambda action, write=True: action(None))
    plan = types.SimpleNamespace(
        run_id=1, todo=[1, 2, 3], models="models", settings=types.SimpleNamespace(to_dict=dict)
    )
    with pytest.raises(EngineError, match="raylet or the GCS"):
        engine.run(store, plan)
    assert state["saved"] == [1] and state["puts"] == 1  # nothing sent after the death


_KILL_GCS = """
import os, signal, types
import ray
from core.pipeline.ray_engine import RayEngine

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
engine = types.SimpleNamespace(ray=ray)  # node_alive reads only .ray
before = RayEngine.node_alive(engine)
gcs = ray._private.worker._global_node.all_processes["gcs_server"][0].process.pid
os.kill(gcs, signal.SIGKILL)  # the GCS this process started, by its id
os.waitpid(gcs, 0)
print("RESULT", before, RayEngine.node_alive(engine), flush=True)
os._exit(0)  # before Ray's own exit hooks, which would wait for the dead GCS
"""


@pytest.mark.ray
def test_a_killed_gcs_is_seen_by_the_driver():
    """A real local Ray instance: its GCS killed between samples, the check the run makes
    before each sample turns false (the run then stops and lists its unfinished samples)."""
    import os
    import subprocess
    import sys

    from tests.hostile.conftest import ROOT

    pytest.importorskip("ray")
    r = subprocess.run(
        [sys.executable, "-c", _KILL_GCS],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert result == ["RESULT True False"], r.stdout[-2000:]
