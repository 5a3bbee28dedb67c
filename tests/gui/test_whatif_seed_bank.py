"""The What-if tab fills its seed bank in the background after Prepare (every token's centre
seed decoded once), gives way to any other job, and a change of k1 / k2 then takes its AMG masks
from the bank: no decoder pass (tiny random models: the masks are noise)."""

from __future__ import annotations

import threading
import time

import pytest

from core.cancel import Cancelled
from rea2seg_gui.controllers.jobs import JobRunner
from tests.gui.test_tune_panel import tuned  # noqa: F401 - the fixture


@pytest.mark.slow  # builds the tiny random models
def test_the_bank_fills_after_prepare_and_a_seed_move_then_decodes_nothing(
    qtbot,
    tuned,  # noqa: F811
    monkeypatch,
):
    window, calls = tuned
    panel = window.tune_panel
    qtbot.waitUntil(lambda: "complete" in panel.bank_text(), timeout=60_000)
    assert not window.jobs.background_running or window.tuning.bank_filling()
    import core.pipeline.tune_amg as tune_amg

    passes: list[int] = []
    real = tune_amg._batches
    monkeypatch.setattr(
        tune_amg,
        "_batches",
        lambda sam, seeds, *a: (passes.append(len(seeds)), real(sam, seeds, *a))[1],
    )
    base = window.tuning.base
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000) as blocker:
        panel.set_value("k1", base.k1 - 1)
        panel.set_value("k2", base.k2 - 3)
    assert blocker.args[0].settings["k2"] == base.k2 - 3
    assert passes == [] and calls == {"mllm": 0, "encoder": 0}
    held, total = (int(v) for v in panel.bank_text().split()[2:5:2])
    assert held == total > 0


def _background(started: threading.Event):
    def job(_progress, should_cancel):
        started.set()
        while not should_cancel():
            time.sleep(0.005)
        raise Cancelled("seed bank cancelled after 0 seeds")

    return job


def test_a_job_started_while_a_background_job_runs_cancels_it_and_runs_next(qtbot):
    jobs = JobRunner()
    busy: list[tuple[bool, bool]] = []
    jobs.busy_changed.connect(lambda b, c: busy.append((b, c)))
    started, errors, results = threading.Event(), [], []
    assert jobs.start(_background(started), None, "bank", errors.append, background=True)
    assert started.wait(5) and not jobs.busy and jobs.background_running and busy == []
    assert not jobs.start(_background(threading.Event()), None, "bank 2", background=True)
    assert jobs.start(lambda p, c: 42, results.append, "Run")  # waits for the bank to stop
    assert jobs.busy and jobs.name == "Run"
    assert not jobs.start(lambda p, c: 0, None, "another")  # one waits; the next is refused
    qtbot.waitUntil(lambda: results == [42], timeout=5000)
    assert "cancelled" in errors[0] and busy == [(True, True), (True, True), (False, False)]
    assert not jobs.busy and not jobs.background_running
    jobs.shutdown()


def _run_behind_a_background_job() -> tuple[JobRunner, list[int]]:
    """A runner with a background job running and a "Run" job waiting behind it (its results)."""
    jobs = JobRunner()
    started, results = threading.Event(), []
    jobs.start(_background(started), None, "bank", lambda m: None, background=True)
    assert started.wait(5)
    assert jobs.start(lambda p, c: 1, results.append, "Run")
    return jobs, results


def test_cancel_drops_a_job_waiting_behind_a_background_job(qtbot):
    jobs, results = _run_behind_a_background_job()
    assert jobs.cancel() and not jobs.busy  # the waiting run is dropped; the bank goes on
    assert jobs.background_running
    jobs.worker.cancel()
    qtbot.waitUntil(lambda: not jobs.background_running, timeout=5000)
    qtbot.wait(50)
    assert results == []
    jobs.shutdown()


def test_a_job_waiting_behind_a_background_job_does_not_start_after_shutdown(qtbot):
    jobs, results = _run_behind_a_background_job()
    jobs.shutdown()
    qtbot.wait(100)  # the background job's end is delivered
    assert results == [] and jobs.worker is None
