"""A known-answer store for the export filters: two datasets, each with accepted (``verified``)
and rejected samples, ``beta`` also with a pending one.

    alpha: a_ok verified, a_no rejected
    beta:  b_ok verified, b_no rejected, b_new pending
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.formats.sgdr import SgdrSample, write_sgdr
from core.masks import encode_rle

SAMPLES = {
    "alpha": (("a_ok", "verified"), ("a_no", "rejected")),
    "beta": (("b_ok", "verified"), ("b_no", "rejected"), ("b_new", "pending")),
}


def fill_two_datasets(store, folder: Path) -> None:
    """Import the two datasets into ``store`` (their files and images written under ``folder``)."""
    from core.importers import import_dataset

    (folder / "img").mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "img" / "x.png"), img)
    for name, rows in SAMPLES.items():
        samples = []
        for i, (sid, status) in enumerate(rows):
            m = np.zeros((20, 30), bool)
            m[i : i + 5, 2 : 9 + i] = True
            samples.append(
                SgdrSample(
                    sid, "img/x.png", f"Which thing {sid}?", "other", "t", status, encode_rle(m)
                )
            )
        write_sgdr(folder / f"{name}.json", samples)
        rep = import_dataset(store, "sgdr", folder / f"{name}.json", dataset=name)
        assert rep.ok and rep.added == len(rows)
