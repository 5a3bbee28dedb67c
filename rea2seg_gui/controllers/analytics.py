"""The metrics tab's analytics in the window: a failure class's (or origin's) samples shown in the
sample list, the list ordered by doubt, and two existing runs compared. Everything is read from
the store in the window's job runner (:mod:`core.analytics`); nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore

from core.store import Store
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.panels.metrics import AnalyticsView
from rea2seg_gui.panels.samples import SamplesPanel


class AnalyticsController(QtCore.QObject):
    """``compared(result)``: :func:`core.analytics.runs.compare_runs`' result with every shared
    sample in ``changed``; ``list_changed()``: the sample list's id condition changed (the
    window refreshes it); ``status(text)``."""

    compared = QtCore.Signal(object)
    list_changed = QtCore.Signal()
    status = QtCore.Signal(str)

    def __init__(
        self,
        jobs: JobRunner,
        view: AnalyticsView,
        samples: SamplesPanel,
        store: Callable[[], Store],
        against: Callable[[], str] = lambda: "gt",
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.view, self.samples, self._store, self._against = (
            jobs,
            view,
            samples,
            store,
            against,
        )
        view.samples_requested.connect(self.show_samples)
        view.compare_requested.connect(self.compare)
        view.doubt_requested.connect(self.order_by_doubt)

    def show_samples(self, ids: list[int], label: str) -> None:
        """Only ``ids`` in the sample list (a count clicked in the metrics tab)."""
        self.samples.show_only(ids, label)  # emits filters_changed → the window refreshes

    def order_by_doubt(self, kind: str, run_a: int | None, run_b: int | None) -> bool:
        """Score every sample's doubt of ``kind`` in the job runner, then order the list by it."""
        from core.analytics.doubt import DOUBT_LABELS, doubt_scores

        store, against = self._store(), self._against()
        label = DOUBT_LABELS.get(kind, kind)
        if kind in ("gt", "sam") and run_a is not None:
            label += f", run {run_a}"
        elif kind == "runs":
            label += f", runs {run_a} and {run_b}"

        def job(progress, should_cancel):
            return doubt_scores(store, kind, run_a, run_b, against=against)

        def done(scores) -> None:
            self.samples.set_doubt(scores, label)
            self.status.emit(f"sample list ordered by doubt: {label}")

        ok = self.jobs.start(job, done, "Doubt")
        if not ok:
            self.status.emit(f"{self.jobs.name} is still running")
        return ok

    def compare(self, run_a: int, run_b: int) -> bool:
        """:func:`core.analytics.runs.compare_runs` of two stored runs (reads only); ``compared``
        carries the result."""
        from core.analytics.runs import compare_runs

        if run_a == run_b:
            self.status.emit("choose two different runs to compare")
            return False
        store, against = self._store(), self._against()

        def job(progress, should_cancel):
            return compare_runs(store, run_a, run_b, against=against, most_changed=10**9)

        ok = self.jobs.start(job, self.compared.emit, "Compare runs")
        if not ok:
            self.status.emit(f"{self.jobs.name} is still running")
        return ok
