"""Loading a sample (image, masks, trace) and reading the next one ahead, off the GUI thread.

Images decode and traces load in a thread pool; the next sample in the list is read ahead on its
own thread so that a jump never queues behind it. Futures hold plain data, no Qt objects. The trace
loads right after the image decode (with L and the candidate masks left for later it takes a few
ms); a trace not loaded ``trace_wait_s`` (:data:`TRACE_WAIT_S`) after the image arrives later
through ``trace_arrived(sample_id, run_id)``, so a large trace never holds the image back longer.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6 import QtCore

from core.images import ImageError, load_image_rgb
from core.store import Store, repo
from core.trace import PipelineTrace

READ_AHEAD_DELAY_S = 0.04  # a read-ahead starts this long after the sample before it is shown
TRACE_WAIT_S = 0.015  # the image waits at most this long for its trace, so both are painted at once


@dataclass
class LoadedSample:
    """One sample as shown: ``image`` uint8 (H, W, 3) RGB (black when unreadable, ``image_error``
    says why), ``gt`` / ``ignore`` / ``edited`` bool (H, W) or None, ``runs`` newest last."""

    sample: Any
    runs: list[Any]
    image: np.ndarray
    image_error: str | None
    gt: np.ndarray | None
    ignore: np.ndarray | None
    edited: np.ndarray | None
    run_id: int | None
    trace: PipelineTrace | None
    trace_ready: bool
    trace_future: Future | None


@dataclass
class _Ahead:
    """A read-ahead's result: the newest run it loaded the trace of, the image or why not."""

    run_id: int | None
    image: np.ndarray | None
    image_error: str | None
    trace: PipelineTrace | None


@dataclass
class _Pending:
    """A load under way: the store's part is read, the image and trace are in the pool."""

    sample_id: int
    sample: Any
    runs: list[Any]
    masks: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]
    run_id: int | None
    ahead: Future | None
    image: Future | None
    trace: Future | None

    def image_ready(self) -> bool:
        return (self.image if self.image is not None else self.ahead).done()


def _decode(path) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_image_rgb(path), None
    except (ImageError, OSError) as exc:
        return None, str(exc) or type(exc).__name__


def _load_trace(store: Store, run_id: int, sample_id: int) -> PipelineTrace | None:
    """The trace as the viewer shows it: without L (read on hover) and masks still in RLE."""
    return store.run(
        lambda s: repo.load_trace(s, run_id, sample_id, with_logits=False), write=False
    )


def _decode_masks(trace: PipelineTrace | None, delay_s: float = 0.0) -> None:
    """Decode the candidate masks, after ``delay_s``: the decode holds the GIL, so it waits
    until the sample just loaded is painted."""
    time.sleep(delay_s)
    for c in trace.candidates if trace is not None else []:
        c.mask  # noqa: B018 - decodes it (Candidate.from_rle)


class SampleLoader(QtCore.QObject):
    trace_arrived = QtCore.Signal(int, object)

    def __init__(self, store: Store, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.trace_wait_s = TRACE_WAIT_S
        self._new_pools()

    def _new_pools(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="load")
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self.prefetched: dict[int, Future] = {}

    def set_store(self, store: Store) -> None:
        """Use another store; no load may touch the old one afterwards."""
        self.shutdown(wait=True)
        self.store = store
        self._new_pools()

    def shutdown(self, wait: bool = False) -> None:
        for pool in (self._pool, self._ahead):
            pool.shutdown(wait=wait, cancel_futures=True)

    def _trace_future(
        self, sample_id: int, run_id: int | None, after: Future | None = None
    ) -> Future:
        """The trace load in the pool; with ``after`` (the image decode) it starts once that is
        done, so that on two cores the decode the user waits for has a core to itself."""
        if run_id is None:
            tr: Future = Future()
            tr.set_result(None)
            return tr
        store = self.store

        def job() -> PipelineTrace | None:
            if after is not None:
                wait([after])
            trace = _load_trace(store, run_id, sample_id)
            if (
                trace is not None
            ):  # the candidate masks decode on first use: here, unless the GUI is first
                self._ahead.submit(_decode_masks, trace, READ_AHEAD_DELAY_S)
            return trace

        return self._pool.submit(job)

    def load(self, sample_id: int) -> LoadedSample:
        """The sample with its image, masks and (if it comes within ``trace_wait_s``) trace."""
        return self.finish(self.begin(sample_id))

    def begin(self, sample_id: int) -> _Pending:
        """Read the sample, its runs and its masks (one store session) and start the image decode
        and the trace load in the pool (unless read ahead); :meth:`finish` waits for them. The
        caller can draw the texts between the two while the image decodes."""
        ahead = self.prefetched.pop(sample_id, None)
        started: dict[str, Any] = {}

        def q(s):
            smp = repo.get_sample(s, sample_id)
            runs = repo.runs_for_sample(s, sample_id)
            started["run_id"] = run_id = runs[-1].id if runs else None
            if ahead is None or ahead.cancelled():
                started["image"] = image = self._pool.submit(_decode, repo.image_path(smp))
                started["trace"] = self._trace_future(sample_id, run_id, after=image)
            masks = tuple(
                repo.get_mask(s, m)
                for m in (smp.gt_mask_id, smp.ignore_mask_id, smp.edited_mask_id)
            )
            return smp, runs, masks

        smp, runs, masks = self.store.run(q, write=False)
        return _Pending(
            sample_id,
            smp,
            list(runs),
            masks,
            started["run_id"],
            None if "image" in started else ahead,
            started.get("image"),
            started.get("trace"),
        )

    def finish(self, p: _Pending) -> LoadedSample:
        sample_id, run_id, smp = p.sample_id, p.run_id, p.sample
        image, error, trace, ready, tr_future = None, None, None, True, None
        if p.ahead is not None:  # read ahead: wait for it (it is under way) and check its run
            try:
                got: _Ahead = p.ahead.result(timeout=30)
            except Exception:  # noqa: BLE001 - decoded again below
                got = _Ahead(-1, None, None, None)
            if got.run_id == run_id:
                image, error, trace = got.image, got.image_error, got.trace
            else:
                image, error = _decode(repo.image_path(smp))
                tr_future = self._trace_future(sample_id, run_id)
        else:
            try:
                image, error = p.image.result(timeout=30)
            except FutureTimeout:
                error = "decoding the image took longer than 30 s"
            tr_future = p.trace
        if tr_future is not None:
            try:
                trace = tr_future.result(timeout=self.trace_wait_s)
                tr_future = None
            except FutureTimeout:
                ready = False
                tr_future.add_done_callback(lambda _f: self._notify(sample_id, run_id))
            except Exception:  # noqa: BLE001 - the caller loads it again and reports the error
                trace, tr_future = None, None
        if image is None:
            image = np.zeros((smp.image.height, smp.image.width, 3), np.uint8)
        gt, ign, edited = p.masks
        return LoadedSample(
            smp,
            p.runs,
            image,
            error,
            gt,
            ign,
            edited,
            run_id,
            trace,
            ready,
            None if ready else tr_future,
        )

    def _notify(self, sample_id: int, run_id: int | None) -> None:
        try:
            self.trace_arrived.emit(sample_id, run_id)
        except RuntimeError:  # the loader is already gone
            pass

    def load_trace(self, run_id: int, sample_id: int) -> PipelineTrace | None:
        return _load_trace(self.store, run_id, sample_id)

    def read_ahead(self, sample_id: int | None, keep: int | None = None) -> None:
        """Decode ``sample_id``'s image and load its newest trace on the read-ahead thread (the
        store is read there too, not here); other read-aheads except ``keep``'s are dropped."""
        if sample_id is None or sample_id in self.prefetched:
            return
        for k in [k for k in self.prefetched if k not in (sample_id, keep)]:
            self.prefetched.pop(k).cancel()
        store = self.store

        def job() -> _Ahead:
            time.sleep(
                READ_AHEAD_DELAY_S
            )  # the sample just shown is painted first, without competition

            def q(s):
                smp = repo.get_sample(s, sample_id)
                runs = repo.runs_for_sample(s, sample_id)
                return repo.image_path(smp), (runs[-1].id if runs else None)

            path, run_id = store.run(q, write=False)
            image, error = _decode(path)
            trace = None if run_id is None else _load_trace(store, run_id, sample_id)
            _decode_masks(trace)
            return _Ahead(run_id, image, error, trace)

        self.prefetched[sample_id] = self._ahead.submit(job)

    def forget_read_ahead(self) -> None:
        for fut in self.prefetched.values():
            fut.cancel()
        self.prefetched.clear()
