"""GUI latency (offscreen), in two parts.

``--part store`` (default ``all`` runs both): the app on a store of ``--samples`` samples
(default 100,000): opening the window, the sample-list refresh (F5 / focus / timer; nothing
changed, and after another process decided one sample), accept / reject / flag and go to the
next sample, and jumping to a sample; then ``--endurance`` (default 1,000) more decisions and
refreshes, which must not crash. Each figure is measured in two consecutive runs and the
larger of their medians is compared with the target. Targets: open ≤ 1 s, every other step
≤ 50 ms.

``--part canvas``: 1024² images with 15 candidates: switching samples, showing/toggling
candidate overlays, outline mode and the GT-vs-edited difference view. Targets: ≤ 50 ms to
switch samples or the outline mode, ≤ 16 ms per overlay toggle. "Next" follows the previous
step at once (no pause for the read-ahead to finish).
Switching shows the image and masks at once; a trace that takes longer than
``SampleLoader.trace_wait_s`` to load is drawn when it arrives (measured separately).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_latency.py [--part store|canvas|all]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def build_store(d: Path, n: int = 6):
    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.importers.sgdr import import_sgdr
    from core.masks import encode_rle
    from core.store import open_store, repo
    from core.trace import Candidate, PipelineTrace

    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(d / f"im{i}.png"), img)
        m = np.zeros((1024, 1024), bool)
        m[200:600, 300:700] = True
        samples.append(
            SgdrSample(
                f"s{i}", f"im{i}.png", f"question {i}", "spatial", "bench", "pending", encode_rle(m)
            )
        )
    write_sgdr(d / "b.json", samples)
    st = open_store(d / "b.sqlite")
    import_sgdr(st, d / "b.json")
    with st.session() as s:
        run_id = repo.create_run(
            s, name="bench", preset="bench", config={}, model_ids={}, is_random=True
        )
    for sid in range(1, n + 1):
        cands = []
        for c in range(15):
            m = np.zeros((1024, 1024), bool)
            y, x = rng.integers(0, 700, 2)
            m[y : y + 300, x : x + 300] = True
            cands.append(Candidate(c, "amg", c, m, 0.9))
        tr = PipelineTrace(
            "q",
            (1024, 1024),
            "bench",
            {},
            True,
            {},
            rng.normal(size=(1024, 1024)).astype(np.float32),
            m,
            None,
            None,
            None,
            cands,
        )
        with st.session() as s:
            repo.save_trace(s, run_id, sid, tr)
    return st


def _ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def store_part(n: int, endurance: int) -> None:
    """The app on a store of ``n`` samples (module doc)."""
    from PySide6 import QtCore, QtWidgets

    from core.store import open_store, review
    from tests.big_store import fill_store

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from rea2seg_gui.main_window import MainWindow

    # the loader's threads may still hold the store's files when the folder goes
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        d = Path(tmp)
        st = open_store(d / "big.sqlite")
        t = time.perf_counter()
        ids = fill_store(st, d / "img", n, hw=(480, 640))
        print(f"store of {n} samples built in {time.perf_counter() - t:.1f} s")
        other = open_store(st.url)  # another annotator on the same store
        rng = random.Random(0)
        runs: list[dict[str, list[float]]] = []
        for run in range(2):
            if run:
                st.close()
                st = open_store(d / "big.sqlite")
            got: dict[str, list[float]] = {
                k: [] for k in ("open", "refresh", "refresh+1", "accept", "reject", "flag", "jump")
            }
            t = time.perf_counter()
            w = MainWindow(
                st,
                user="bench",
                settings=QtCore.QSettings(
                    str(d / f"s{run}.ini"), QtCore.QSettings.Format.IniFormat
                ),
            )
            w.resize(1600, 1000)
            w.show()
            app.processEvents()
            got["open"].append(time.perf_counter() - t)
            assert w.samples_panel.row_count() == n and w.state.sample_id is not None
            w.review._ask_text = lambda *a: ("bench", True)  # the reason a reject / flag asks for
            for _ in range(30):
                t = time.perf_counter()
                w.refresher.refresh()
                app.processEvents()
                got["refresh"].append(time.perf_counter() - t)
                review.decide(other, rng.choice(ids), "flag", user="other", note="n")
                t = time.perf_counter()
                w.refresher.refresh()
                app.processEvents()
                got["refresh+1"].append(time.perf_counter() - t)
                for key in ("accept", "reject", "flag"):
                    t = time.perf_counter()
                    w.review.decide(key)
                    app.processEvents()
                    got[key].append(time.perf_counter() - t)
                t = time.perf_counter()
                w.samples_panel.select(rng.choice(ids))
                app.processEvents()
                got["jump"].append(time.perf_counter() - t)
            runs.append(got)
            if run == 0:
                t = time.perf_counter()
                for i in range(endurance):
                    if i % 2:
                        w.review.decide(("accept", "reject", "flag")[i % 3])
                    else:
                        w.refresher.refresh()
                    app.processEvents()
                print(
                    f"{endurance} decisions and refreshes: no crash "
                    f"({(time.perf_counter() - t) * 1000 / max(endurance, 1):.1f} ms each on average)"
                )
            w.close()
            app.processEvents()
        other.close()
        st.close()
    targets = {"open": 1000.0}
    labels = {
        "open": "open the window",
        "refresh": "list refresh, nothing changed",
        "refresh+1": "list refresh, one sample changed",
        "accept": "accept and next",
        "reject": "reject and next",
        "flag": "flag and next",
        "jump": "jump to a sample",
    }
    for key, label in labels.items():
        a, b = _ms(runs[0][key]), _ms(runs[1][key])
        target = targets.get(key, 50.0)
        print(
            f"{label + ':':36s} {a:7.1f} / {b:7.1f} ms (two runs; target {target:.0f} ms)   "
            f"ratio {max(a, b) / target:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("store", "canvas", "all"), default="all")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--endurance", type=int, default=1000)
    args = ap.parse_args()
    if args.part in ("store", "all"):
        store_part(args.samples, args.endurance)
    if args.part in ("canvas", "all"):
        canvas_part()


def canvas_part() -> None:
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from rea2seg_gui.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        st = build_store(Path(tmp))
        w = MainWindow(
            st,
            user="bench",
            settings=QtCore.QSettings(str(Path(tmp) / "s.ini"), QtCore.QSettings.Format.IniFormat),
        )
        w.resize(1600, 1000)
        w.show()
        app.processEvents()
        switch, cold = [], []
        for i in range(12):  # next sample at once: the read-ahead may not have finished
            t = time.perf_counter()
            w.review.step(1) if i % 6 != 5 else w.review.show_sample(1)
            app.processEvents()
            (cold if i % 6 == 5 else switch).append(time.perf_counter() - t)
        drawn = []
        for sid in (4, 2, 6, 3):  # jumps: nothing read ahead
            shown: list[int] = []
            w.review.trace_shown.connect(shown.append)
            t = time.perf_counter()
            w.review.show_sample(sid)
            app.processEvents()
            cold.append(time.perf_counter() - t)
            while not shown:  # the trace, when it came later than the image
                app.processEvents()
            app.processEvents()  # and painted
            drawn.append(time.perf_counter() - t)
            w.review.trace_shown.disconnect(shown.append)
        w.tabs.setCurrentWidget(w.candidates_panel)
        w.review.show_sample(1)
        gallery = []
        for _ in range(5):  # next sample with the candidate gallery open (15 thumbnails rebuilt)
            t = time.perf_counter()
            w.review.step(1)
            app.processEvents()
            gallery.append(time.perf_counter() - t)
        toggles = []
        for r in range(15):
            t = time.perf_counter()
            w.candidates_panel.select_row(r)
            app.processEvents()
            toggles.append(time.perf_counter() - t)
        vis = []
        for _ in range(15):
            t = time.perf_counter()
            w.layers_panel.toggle("candidate")
            app.processEvents()
            vis.append(time.perf_counter() - t)
        edited = w.state.gt.copy()
        edited[100:300, 100:900] = True
        w.canvas.set_mask("edited", edited)
        outline, diff = [], []
        for key, out in (("outline", outline), ("diff", diff)):  # 10 switches each, on and off
            for _ in range(10):
                t = time.perf_counter()
                if key == "outline":
                    w.layers_panel.style_controls.outline_check.toggle()
                else:
                    w.layers_panel.toggle("diff")
                app.processEvents()
                out.append(time.perf_counter() - t)
        w.close()
        from core.images import load_image_rgb

        decode = []
        for i in range(12):  # the decode alone, for comparison (a jump cannot be faster)
            t = time.perf_counter()
            load_image_rgb(Path(tmp) / f"im{i % 6}.png")
            decode.append(time.perf_counter() - t)
    s_ms = statistics.median(switch) * 1000
    cold_ms = statistics.median(cold) * 1000
    drawn_ms = statistics.median(drawn) * 1000
    g_ms = statistics.median(gallery) * 1000
    c_ms = statistics.median(toggles) * 1000
    v_ms = statistics.median(vis) * 1000
    o_ms = statistics.median(outline) * 1000
    d_ms = statistics.median(diff) * 1000
    print(
        f"next sample (1024², 15 candidates):   median {s_ms:.1f} ms (target 50 ms)   ratio {s_ms / 50:.2f}"
    )
    print(
        f"jump to a sample (no read-ahead):     median {cold_ms:.1f} ms (target 50 ms)   ratio {cold_ms / 50:.2f}"
    )
    print(
        f"  … until its trace is drawn too:     median {drawn_ms:.1f} ms (target 50 ms)   ratio {drawn_ms / 50:.2f}"
    )
    print(
        f"next sample, candidate gallery open:  median {g_ms:.1f} ms (target 50 ms)   ratio {g_ms / 50:.2f}"
    )
    print(
        f"show one of 15 candidate overlays:    median {c_ms:.1f} ms (target 16 ms)   ratio {c_ms / 16:.2f}"
    )
    print(
        f"toggle the candidate layer:           median {v_ms:.1f} ms (target 16 ms)   ratio {v_ms / 16:.2f}"
    )
    print(
        f"outline mode on / off (4 mask layers): median {o_ms:.1f} ms (target 50 ms)   ratio {o_ms / 50:.2f}"
    )
    print(
        f"difference view on / off:             median {d_ms:.1f} ms (target 16 ms)   ratio {d_ms / 16:.2f}"
    )
    print(
        f"(the image decode alone:              median {statistics.median(decode) * 1000:.1f} ms, no target)"
    )


if __name__ == "__main__":
    main()
