"""The sample loader: the trace loads after the image decode, comes with the image when quick,
leaves L unread and decodes candidate masks later, off the GUI thread."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from core.formats.sgdr import SgdrSample, write_sgdr
from core.importers.sgdr import import_sgdr
from core.masks import encode_rle
from core.store import open_store, repo
from core.trace import _PENDING, Candidate, PipelineTrace


@pytest.fixture
def traced(tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        m = np.zeros((48, 64), bool)
        m[5:20, 10:30] = True
        samples.append(
            SgdrSample(f"s{i}", f"im{i}.png", f"q{i}", "spatial", "t", "pending", encode_rle(m))
        )
    write_sgdr(tmp_path / "t.json", samples)
    st = open_store(tmp_path / "t.sqlite")
    assert import_sgdr(st, tmp_path / "t.json").ok
    with st.session() as s:
        run_id = repo.create_run(s, name="r", preset="t", config={}, model_ids={}, is_random=True)
    L = rng.normal(size=(48, 64)).astype(np.float32)
    for sid in (1, 2, 3):
        cands = [Candidate(c, "amg", c, np.roll(m, c, axis=1), 0.5) for c in range(4)]
        with st.session() as s:
            repo.save_trace(
                s,
                run_id,
                sid,
                PipelineTrace("q", (48, 64), "t", {}, True, {}, L, L > 0, None, None, None, cands),
            )
    yield st, run_id
    st.close()


def test_the_trace_comes_with_the_image_without_l_and_with_masks_pending(
    qtbot, traced, monkeypatch
):
    from rea2seg_gui.controllers import loading

    st, run_id = traced
    loader = loading.SampleLoader(st)
    assert loader.trace_wait_s == loading.TRACE_WAIT_S > 0
    decoded = threading.Event()
    real = loading._decode_masks
    monkeypatch.setattr(loading, "_decode_masks", lambda *a: (real(*a), decoded.set()))
    got = loader.load(2)
    assert got.trace_ready and got.run_id == run_id and got.trace is not None
    assert got.trace.initial_logits is None  # L stays in the store
    assert all(c.__dict__["_mask"] is _PENDING for c in got.trace.candidates)  # nothing decoded yet
    assert decoded.wait(5)  # the masks decode off this thread, a little later
    assert all(c.__dict__["_mask"] is not _PENDING for c in got.trace.candidates)
    assert np.array_equal(got.trace.candidates[1].mask[5:20, 11:31], np.ones((15, 20), bool))
    loader.shutdown(wait=True)


def test_the_trace_load_starts_after_the_image_decode(qtbot, traced, monkeypatch):
    from rea2seg_gui.controllers import loading

    st, _ = traced
    events: list[tuple[str, float]] = []
    decode, load_trace = loading._decode, repo.load_trace

    def slow_decode(path):
        time.sleep(0.2)
        out = decode(path)
        events.append(("decoded", time.perf_counter()))
        return out

    def timed_load(*a, **k):
        events.append(("trace", time.perf_counter()))
        return load_trace(*a, **k)

    monkeypatch.setattr(loading, "_decode", slow_decode)
    monkeypatch.setattr(repo, "load_trace", timed_load)
    loader = loading.SampleLoader(st)
    got = loader.load(3)
    assert got.trace is not None and got.image.shape == (48, 64, 3)
    assert [e[0] for e in events] == ["decoded", "trace"] and events[1][1] >= events[0][1]
    loader.shutdown(wait=True)
