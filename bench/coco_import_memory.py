"""Peak memory of ``rea2seg import coco`` against the size of the annotations file.

Writes a synthetic COCO instances file of about ``--mb`` megabytes (polygons of ``--points``
points with two decimals, as EntitySeg/COCO files have), imports it into a fresh SQLite store
in a child process and prints the file size, the peak RSS over the process's baseline (Linux
``VmHWM`` after ``clear_refs``), their ratio (target ≤ 2) and the time taken. Run it with
``nice``: it is long and it is a measurement.

    nice .venv/bin/python bench/coco_import_memory.py [--mb 197] [--points 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HW = (64, 64)
N_FILES = 50  # distinct image files; image entries reuse them

_CHILD = """
import json, sys, time
from pathlib import Path
from core.store import open_store
from core.importers.coco import import_coco
import cv2, ijson, pycocotools.mask, sqlalchemy  # loaded before the baseline

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

st = open_store(sys.argv[1])
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts at the current RSS
before = kb("VmRSS")
t = time.perf_counter()
rep = import_coco(st, sys.argv[2], sys.argv[3])
print(json.dumps({"peak_delta_mb": (kb("VmHWM") - before) / 1024, "added": rep.added,
                  "errors": len(rep.errors), "seconds": time.perf_counter() - t}))
"""


def write_coco_file(folder: Path, target_mb: float, points: int = 1000) -> tuple[Path, int]:
    """``folder/big.json`` of about ``target_mb`` MiB and ``folder/img``; (path, annotations)."""
    import cv2

    img_dir = folder / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        cv2.imwrite(str(img_dir / f"{i:03d}.png"), rng.integers(0, 255, (*HW, 3), np.uint8))
    path = folder / "big.json"
    target = int(target_mb * 2**20)
    n_ann = 0
    with open(path, "w") as f:
        f.write('{"info": {"description": "synthetic"}, "annotations": [')
        while f.tell() < target:
            # a star-shaped outline around the centre: never empty, never self-cancelling
            angle = np.sort(rng.uniform(0, 2 * np.pi, points))
            radius = rng.uniform(8, 30, points)
            xs = np.clip(32 + radius * np.cos(angle), 0, 64)
            ys = np.clip(32 + radius * np.sin(angle), 0, 64)
            poly = np.round(np.stack([xs, ys], 1).ravel(), 2).tolist()
            entry = {
                "id": n_ann + 1,
                "image_id": n_ann // 4 + 1,
                "category_id": 1 + n_ann % 3,
                "iscrowd": 0,
                "area": 1000.0,
                "bbox": [2.0, 2.0, 60.0, 60.0],
                "segmentation": [poly],
            }
            f.write(("," if n_ann else "") + json.dumps(entry))
            n_ann += 1
        n_img = (n_ann - 1) // 4 + 1
        images = [
            {"id": i + 1, "file_name": f"{i % N_FILES:03d}.png", "height": HW[0], "width": HW[1]}
            for i in range(n_img)
        ]
        cats = [{"id": c, "name": name} for c, name in ((1, "cup"), (2, "dog"), (3, "car"))]
        f.write(f'], "images": {json.dumps(images)}, "categories": {json.dumps(cats)}}}')
    return path, n_ann


def measure(folder: Path, path: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder / "s.sqlite"), str(path), str(folder / "img")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if r.returncode != 0:
        raise SystemExit(f"import failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=197.0, help="file size to write (MiB)")
    ap.add_argument("--points", type=int, default=1000, help="points per polygon")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        path, n = write_coco_file(folder, args.mb, args.points)
        size_mb = path.stat().st_size / 2**20
        print(f"wrote {size_mb:.1f} MiB, {n} annotations in {time.perf_counter() - t:.0f} s")
        out = measure(folder, path)
        ratio = out["peak_delta_mb"] / size_mb
        print(
            f"import coco: file {size_mb:.1f} MiB, peak RSS +{out['peak_delta_mb']:.1f} MiB "
            f"= {ratio:.2f}x the file (target <= 2), {out['added']} targets, "
            f"{out['errors']} skipped, {out['seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
