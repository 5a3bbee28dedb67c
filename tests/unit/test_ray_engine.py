"""``rea2seg run --engine ray`` on a local 2-CPU Ray instance with the tiny-random presets: the
traces equal a local run's, a killed worker or driver loses nothing, a sample that breaks its
worker fails alone. One Ray instance for the module (its start takes seconds)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [1, 2, 3, 4]  # two demo images, two questions each
RUN = ["--preset", "tiny-random", "--evaluator", "tiny-random", "--sample", *map(str, SAMPLES)]


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REA2SEG_HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }


def test_help_and_parser_do_not_import_ray():
    code = (
        "import sys\nfrom core.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(ROOT), timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "--engine {local,ray}" in r.stdout and "--gpus-per-worker" in r.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("ray-home")


@pytest.fixture(autouse=True)
def _module_home(home, monkeypatch):
    # one per-user folder for the module: the tiny-random models are built once and every worker
    # (which gets the driver's REA2SEG_HOME) loads the same ones
    monkeypatch.setenv("REA2SEG_HOME", str(home))


@pytest.fixture(scope="module")
def reference(home, tmp_path_factory):
    """The demo store with run 1: a local run (no Ray imported) of SAMPLES, stage 1 + stage 2."""
    from core.demo import ensure_demo_store

    db = tmp_path_factory.mktemp("ref") / "demo.sqlite"
    os.environ["REA2SEG_HOME"] = str(home)
    ensure_demo_store(db)
    code = (
        "import sys\nfrom core.cli import main\n"
        f"rc = main(['run', '--db', {str(db)!r}, *{RUN!r}])\n"
        "assert 'ray' not in sys.modules, 'a local run imported ray'\nsys.exit(rc)\n"
    )
    # one torch thread, as in a Ray worker with one CPU (Ray sets OMP_NUM_THREADS to it): with
    # another thread count the reductions run in another order and the scores differ in the
    # last float bits
    env = {**_env(home), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    from core.store import open_store, repo

    st = open_store(db)
    with st.session(write=False) as s:
        assert repo.get_run(s, 1).config["engines"] == [{"engine": "local", "workers": 1}]
    st.close()
    return db


@pytest.fixture(scope="module")
def cluster(home):
    ray = pytest.importorskip("ray")
    os.environ["PYTHONPATH"] = _env(home)["PYTHONPATH"]  # the workers import tests.unit.ray_helpers
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    yield ray
    ray.shutdown()


@pytest.fixture
def db(reference, tmp_path):
    path = tmp_path / "demo.sqlite"
    shutil.copy(reference, path)
    return path


def _done(db, run_id):
    from core.store import open_store, repo

    st = open_store(db)
    with st.session(write=False) as s:
        out = repo.finished_sample_ids(s, run_id)
    st.close()
    return out


def _comparable(trace) -> dict:
    d = trace.to_dict()
    d.pop("timings")
    for g in (d.get("evaluator") or {}).get("groups", []):
        g.pop("seconds", None)
    return d


def _assert_same_as_local(db, run_id, samples=SAMPLES):
    """Every trace of ``run_id`` equals run 1's (the local run): masks byte for byte, scores
    exactly, evaluator text and parses; only wall-clock timings differ."""
    from core.store import open_store, repo

    st = open_store(db)
    with st.session(write=False) as s:
        for sid in samples:
            local, remote = repo.load_trace(s, 1, sid), repo.load_trace(s, run_id, sid)
            assert remote is not None, f"sample {sid} missing"
            assert [c.mask.tobytes() for c in remote.candidates] == [
                c.mask.tobytes() for c in local.candidates
            ]
            assert [(c.sam_score, c.stability) for c in remote.candidates] == [
                (c.sam_score, c.stability) for c in local.candidates
            ]
            assert remote.initial_logits.tobytes() == local.initial_logits.tobytes()
            assert remote.evaluator.final_scores == local.evaluator.final_scores
            assert _comparable(remote) == _comparable(local)
        run = repo.get_run(s, run_id)
        config, model_ids = run.config, run.model_ids
        ref_config = repo.get_run(s, 1).config
    st.close()
    if "stage1" in config:  # a run started by the command (the library tests make bare runs)
        assert config["stage1"] == ref_config["stage1"] and config["stage2"] == ref_config["stage2"]
    return config, model_ids


pytestmark = [pytest.mark.slow]


@pytest.mark.ray
def test_ray_run_equals_local_run(cluster, db, capsys):
    from core.cli import main

    assert main(["run", "--db", str(db), *RUN, "--engine", "ray", "--workers", "2"]) == 0
    out = capsys.readouterr()
    assert "on 2 Ray workers" in out.err and "4/4" in out.err and "RANDOM WEIGHTS" in out.err
    config, model_ids = _assert_same_as_local(db, 2)
    [engine] = config["engines"]
    assert (engine["engine"], engine["workers"], engine["evaluator_workers"]) == ("ray", 2, 0)
    assert model_ids["evaluator"] and model_ids["mllm"]


def test_ray_options_on_a_local_run_are_refused(reference, tmp_path, capsys):
    from core.cli import main

    assert main(["run", "--db", str(reference), "--preset", "tiny-random", "--workers", "2"]) == 2
    assert "--workers only apply with --engine ray" in capsys.readouterr().err


@pytest.mark.ray
def test_a_worker_that_cannot_load_its_model_reports_why(
    cluster, db, tmp_path, monkeypatch, capsys
):
    from core.cli import main

    (tmp_path / "config.toml").write_text(
        ""
    )  # no model paths: the workers read the same empty file
    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
    assert (
        main(["run", "--db", str(db), "--preset", "lisa-7b", "--engine", "ray", "--workers", "1"])
        == 2
    )
    err = capsys.readouterr().err
    assert "lisa-7b: mllm_path is not set" in err and "Traceback" not in err
    from core.store import open_store, repo

    st = open_store(db)
    with st.session(write=False) as s:
        assert [r.id for r in repo.list_runs(s)] == [1]  # the refused run left no row
    st.close()


@pytest.mark.ray
def test_stage2_in_its_own_evaluator_pool(cluster, db, capsys):
    from core.cli import main

    assert (
        main(
            [
                "run",
                "--db",
                str(db),
                *RUN,
                "--engine",
                "ray",
                "--workers",
                "1",
                "--evaluator-workers",
                "1",
            ]
        )
        == 0
    )
    config, _ = _assert_same_as_local(db, 2)
    assert (config["engines"][0]["workers"], config["engines"][0]["evaluator_workers"]) == (1, 1)


def _request(name: str):
    from core.pipeline.plan import RunRequest
    from core.pipeline.settings import Stage2Settings

    return RunRequest(
        "tiny-random", stage2=Stage2Settings("tiny-random"), samples=SAMPLES, name=name
    )


@pytest.mark.ray
def test_killed_worker_is_replaced_and_its_sample_retried(cluster, db):
    from core.pipeline.plan import plan_run
    from core.pipeline.ray_engine import RayEngine, RayOptions
    from core.store import open_store

    st = open_store(db)
    with RayEngine(RayOptions(workers=2)) as engine:
        plan = plan_run(st, _request("kill"), engine)
        killed = []

        def progress(i, n, label):
            if not killed:  # kill a worker that has a sample in flight
                busy = [k for k in range(2) if k not in engine.segmenters.idle]
                killed.append(busy[0] if busy else 0)
                cluster.kill(engine.segmenters.actors[killed[0]], no_restart=True)

        report = engine.run(st, plan, progress=progress)
    st.close()
    assert killed and report.replaced == 1 and report.failed == [] and report.saved == 4
    _assert_same_as_local(db, plan.run_id)


@pytest.mark.ray
def test_sample_that_kills_or_exhausts_its_worker_fails_alone(cluster, db):
    from core.pipeline.plan import plan_run
    from core.pipeline.ray_engine import RayEngine, RayOptions
    from core.store import open_store, review

    st = open_store(db)
    review.edit_question(st, 2, "[crash] which cube?", user="test")
    review.edit_question(st, 3, "[oom] which sphere?", user="test")
    options = RayOptions(workers=2, loader="tests.unit.ray_helpers:load_faulty")
    with RayEngine(options) as engine:
        plan = plan_run(st, _request("faults"), engine)
        seen = []
        report = engine.run(st, plan, progress=lambda i, n, label: seen.append((i, n)))
    st.close()
    run_id = plan.run_id
    failed = dict(report.failed)
    assert sorted(failed) == [2, 3] and report.saved == 2
    assert "worker died" in failed[2] and "out of device memory" in failed[3]
    assert (
        report.replaced == 2
    )  # the crashing sample took its worker down twice: first try + one retry
    assert seen[-1] == (4, 4)
    assert _done(db, run_id) == {1, 4}
    _assert_same_as_local(db, run_id, [1, 4])


@pytest.mark.ray
def test_killed_driver_resumes_to_completion(cluster, db, home, capsys):
    from core.cli import main

    address = cluster.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli",
            "run",
            "--db",
            str(db),
            *RUN,
            "--engine",
            "ray",
            "--workers",
            "1",
            "--address",
            address,
        ],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if _done_or_none(db):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    before = _done(db, 2)
    assert 1 <= len(before) < 4  # killed mid-run, with some traces committed
    assert (
        main(["run", "--db", str(db), *RUN, "--engine", "ray", "--workers", "2", "--resume"]) == 0
    )
    assert f"{4 - len(before)} samples to do, {len(before)} already done" in capsys.readouterr().err
    config, _ = _assert_same_as_local(db, 2)
    assert [e["workers"] for e in config["engines"]] == [1, 2]  # started, then resumed, on Ray


def _done_or_none(db) -> set[int]:
    from core.store import open_store, repo

    st = open_store(db)
    try:
        with st.session(write=False) as s:
            return (
                repo.finished_sample_ids(s, 2)
                if repo.latest_run(s) and repo.latest_run(s).id == 2
                else set()
            )
    finally:
        st.close()


@pytest.mark.ray
def test_stage2_against_an_openai_compatible_server(cluster, db, tmp_path, monkeypatch):
    from core.cli import main
    from core.store import open_store, repo
    from tests.unit.test_evaluator_openai import Server, _ok

    srv = Server(
        default=(
            200,
            _ok("Answer:\nMask 1: 0.9\nMask 2: 0.8\nMask 3: 0.7\nMask 4: 0.6\nMask 5: 0.5"),
            0.0,
            {},
        )
    )
    try:
        (tmp_path / "config.toml").write_text(
            f'[evaluator.openai]\nbase_url = "{srv.url}"\nmodel = "served-evaluator"\n'
        )
        monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
        assert (
            main(
                [
                    "run",
                    "--db",
                    str(db),
                    "--preset",
                    "tiny-random",
                    "--evaluator",
                    "openai",
                    "--sample",
                    "1",
                    "2",
                    "--engine",
                    "ray",
                    "--workers",
                    "2",
                ]
            )
            == 0
        )
    finally:
        srv.close()
    assert {body["model"] for _, _, body in srv.seen} == {"served-evaluator"}
    st = open_store(db)
    with st.session(write=False) as s:
        traces = [repo.load_trace(s, 2, sid) for sid in (1, 2)]
    st.close()
    assert len(srv.seen) == sum(
        len(t.evaluator.groups) for t in traces
    )  # each group asked once, by a worker
    for t in traces:
        assert (
            t.evaluator.backend == "openai-compatible" and 0.9 in t.evaluator.final_scores.values()
        )
