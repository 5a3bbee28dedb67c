"""Loading a sample (image, masks, trace) and reading the next one ahead, off the GUI thread.

Images decode and traces load in a thread pool; the next sample in the list is read ahead on its
own thread so that a jump never queues behind it. Futures hold plain data, no Qt objects. A trace
that is slower than ``trace_wait_s`` arrives later through ``trace_arrived(sample_id, run_id)``.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6 import QtCore

from core.images import ImageError, load_image_rgb
from core.store import Store, repo
from core.trace import PipelineTrace


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


class SampleLoader(QtCore.QObject):
    trace_arrived = QtCore.Signal(int, object)

    def __init__(self, store: Store, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.trace_wait_s = 0.015
        self._new_pools()

    def _new_pools(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="load")
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self.prefetched: dict[tuple[int, int | None], tuple[Future, Future]] = {}

    def set_store(self, store: Store) -> None:
        """Use another store; no load may touch the old one afterwards."""
        self.shutdown(wait=True)
        self.store = store
        self._new_pools()

    def shutdown(self, wait: bool = False) -> None:
        for pool in (self._pool, self._ahead):
            pool.shutdown(wait=wait, cancel_futures=True)

    def _submit(self, sample_id: int, run_id: int | None, sample: Any, pool: ThreadPoolExecutor) -> tuple[Future, Future]:
        store, path = self.store, repo.image_path(sample)
        img = pool.submit(load_image_rgb, path)
        if run_id is None:
            tr: Future = Future()
            tr.set_result(None)
        else:
            tr = pool.submit(store.run, lambda s: repo.load_trace(s, run_id, sample_id, with_logits=False), write=False)
        return img, tr

    def load(self, sample_id: int) -> LoadedSample:
        """The sample with its image, masks and (if it comes within ``trace_wait_s``) trace."""
        def q(s):
            return (repo.get_sample(s, sample_id), repo.runs_for_sample(s, sample_id), repo.gt_mask(s, sample_id),
                    repo.ignore_mask(s, sample_id), repo.edited_mask(s, sample_id))

        # the sample row first: its image path starts decoding while the masks decode here
        smp, runs = self.store.run(lambda s: (repo.get_sample(s, sample_id), repo.runs_for_sample(s, sample_id)),
                                   write=False)
        run_id = runs[-1].id if runs else None
        futures = self.prefetched.pop((sample_id, run_id), None) or self._submit(sample_id, run_id, smp, self._pool)
        gt, ign, edited = self.store.run(lambda s: (repo.gt_mask(s, sample_id), repo.ignore_mask(s, sample_id),
                                                    repo.edited_mask(s, sample_id)), write=False)
        error = None
        try:
            image = futures[0].result(timeout=30)
        except (ImageError, OSError, FutureTimeout) as exc:
            image = np.zeros((smp.image.height, smp.image.width, 3), np.uint8)
            error = str(exc) or type(exc).__name__
        trace, ready = None, True
        try:
            trace = futures[1].result(timeout=self.trace_wait_s)
        except FutureTimeout:
            ready = False
        except Exception:  # noqa: BLE001 - the caller loads it again and reports the error
            trace = None
        if not ready:
            futures[1].add_done_callback(lambda _f: self._notify(sample_id, run_id))
        return LoadedSample(smp, list(runs), image, error, gt, ign, edited, run_id, trace, ready,
                            None if ready else futures[1])

    def _notify(self, sample_id: int, run_id: int | None) -> None:
        try:
            self.trace_arrived.emit(sample_id, run_id)
        except RuntimeError:  # the loader is already gone
            pass

    def load_trace(self, run_id: int, sample_id: int) -> PipelineTrace | None:
        return self.store.run(lambda s: repo.load_trace(s, run_id, sample_id, with_logits=False), write=False)

    def read_ahead(self, sample_id: int | None, keep: int | None = None) -> None:
        """Start decoding ``sample_id``'s image and trace; drop other read-aheads except ``keep``'s."""
        if sample_id is None:
            return
        smp, runs = self.store.run(lambda s: (repo.get_sample(s, sample_id), repo.runs_for_sample(s, sample_id)),
                                   write=False)
        key = (sample_id, runs[-1].id if runs else None)
        if key in self.prefetched:
            return
        for k in [k for k in self.prefetched if k[0] not in (sample_id, keep)]:
            for fut in self.prefetched.pop(k):
                fut.cancel()
        self.prefetched[key] = self._submit(sample_id, key[1], smp, self._ahead)

    def forget_read_ahead(self) -> None:
        self.prefetched.clear()
