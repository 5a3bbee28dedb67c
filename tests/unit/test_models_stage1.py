"""The full stage 1 and the run commands on the tiny random LISA-style model and tiny SAM
(the adapter itself: test_models_lisa.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from core.models.tiny_mllm import build_tiny_lisa

    return build_tiny_lisa(tmp_path_factory.mktemp("tiny") / "lisa")


@pytest.fixture(scope="module")
def lisa(tiny_dir):
    from core.models.lisa import load_lisa

    return load_lisa(tiny_dir, is_random=True, max_new_tokens=3)


@pytest.fixture(scope="module")
def sam():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)


def test_missing_checkpoint_messages_name_file_and_setting(tmp_path):
    from core.models.lisa import load_lisa
    from core.models.sam_backend import load_sam_backend
    from core.pipeline.cache import load_segmenter

    with pytest.raises(
        ModelLoadError, match=r"'/nope/lisa' does not exist \(setting presets.lisa-7b.mllm_path"
    ):
        load_segmenter("lisa-7b", config={"presets": {"lisa-7b": {"mllm_path": "/nope/lisa"}}})
    with pytest.raises(ModelLoadError, match="sam_vit_h.pth' does not exist"):
        load_sam_backend("sam", tmp_path / "sam_vit_h.pth")
    (tmp_path / "d").mkdir()
    with pytest.raises(ModelLoadError, match="d' has no config.json"):
        load_lisa(tmp_path / "d")
    with pytest.raises(ModelLoadError, match="unknown preset"):
        load_segmenter("gpt-9", {})


def test_seed_amg_equals_library_generate_without_second_embedding(sam, image):
    from segment_anything import SamAutomaticMaskGenerator

    seeds = np.array([[10, 10], [40, 30], [70, 50], [20, 45]], np.float32)
    settings = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 0.7}
    sam.set_image(image)
    calls = sam.embed_calls
    ours = sam.amg_from_seeds(seeds, settings)
    assert sam.embed_calls == calls  # no second encoder pass
    ref = SamAutomaticMaskGenerator(
        sam.sam,
        points_per_side=None,
        point_grids=[seeds / np.array([80, 60])],
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=0.7,
    ).generate(image)
    assert len(ours) == len(ref) > 0
    for a, r in zip(ours, ref, strict=True):
        assert np.array_equal(a.mask, r["segmentation"]) and a.predicted_iou == pytest.approx(
            r["predicted_iou"]
        )
        assert np.allclose(seeds[a.seed_index], r["point_coords"][0])


def test_full_stage1_trace_on_tiny_models(lisa, sam, image):
    from core.pipeline.settings import Stage1Settings
    from core.pipeline.stage1 import Cancelled, run_stage1
    from core.trace import PipelineTrace

    s = Stage1Settings.for_backbone(
        "sam",
        layers=None,
        k1=10,
        k2=6,
        seeds_total=12,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        tau=0.0,
    )
    steps = []
    sam._image = None
    before = sam.embed_calls
    tr = run_stage1(
        lisa,
        sam,
        image,
        "which ball is on the left ?",
        s,
        preset="tiny",
        progress=lambda n, f: steps.append(n),
    )
    assert sam.embed_calls == before + 1  # one image embedding for every step
    assert steps[0] == "mllm" and steps[-1] == "done"
    assert (
        tr.is_random
        and tr.initial_logits.shape == (60, 80)
        and tr.attention.token_map.shape == (4, 4)
    )
    assert (
        len(tr.seeds.topk1) == 10 and len(tr.seeds.topk2) == 6 and len(tr.seeds.seeds_xy) == 6
    )  # one per token
    assert tr.graph.core_members and tr.graph.k >= 0
    origins = [c.origin for c in tr.candidates]
    assert 1 <= len(origins) <= 15 and origins == sorted(
        origins, key=["multimask", "semantic", "amg"].index
    )
    assert sum(o == "amg" for o in origins) <= 9
    back = PipelineTrace.from_json(tr.to_json())
    assert back.to_json() == tr.to_json()
    with pytest.raises(Cancelled):
        run_stage1(lisa, sam, image, "q", s, should_cancel=lambda: True)


def _demo_subset(folder, n: int):
    """The first ``n`` samples of the demo project as an SGDR file of their own (images copied)."""
    import json
    import shutil

    from core.demo import DEMO_SGDR

    data = json.loads(DEMO_SGDR.read_text())
    data["samples"] = data["samples"][:n]
    (folder / "images").mkdir(parents=True)
    for image in {s["image"] for s in data["samples"]}:
        shutil.copy2(DEMO_SGDR.parent / image, folder / image)
    (folder / "sgdr.json").write_text(json.dumps(data))
    return folder / "sgdr.json"


def test_cli_run_resume_and_trace_over_demo(tmp_path, capsys):
    import json

    from core.cli import main

    # a few demo samples: the whole demo is 40 samples (minutes) and shows nothing more
    sgdr = _demo_subset(tmp_path / "demo4", 4)
    db = str(tmp_path / "demo.sqlite")
    assert main(["import", "sgdr", str(sgdr), "--db", db]) == 0
    assert main(["run", "--db", db, "--preset", "tiny-random", "--limit", "2"]) == 0
    assert (
        main(["run", "--db", db, "--preset", "tiny-random", "--resume"]) == 0
    )  # finishes the rest
    capsys.readouterr()
    assert main(["trace", "--db", db, "--sample", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sample_id"] == 3 and d["is_random"] and d["candidates"]
    from core.store import open_store, repo

    with open_store(db).session() as s:
        assert len(repo.list_runs(s)) == 1 and repo.finished_sample_ids(s, 1) == {1, 2, 3, 4}


def test_run_skips_an_unreadable_image_and_reports_it(tmp_path, capsys):
    from core.cli import main
    from core.store import open_store, repo
    from tests.unit.conftest import make_image

    make_image(tmp_path / "a.png", (40, 60))
    make_image(tmp_path / "b.png", (40, 60), 1)
    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.masks import encode_rle

    m = encode_rle(np.zeros((40, 60), bool))
    write_sgdr(
        tmp_path / "p.json",
        [
            SgdrSample("a", "a.png", "q a", "other", "t", "pending", m),
            SgdrSample("b", "b.png", "q b", "other", "t", "pending", m),
        ],
    )
    db = str(tmp_path / "x.sqlite")
    assert main(["import", "sgdr", str(tmp_path / "p.json"), "--db", db]) == 0
    (tmp_path / "a.png").write_bytes(b"broken after import")
    assert main(["run", "--db", db, "--preset", "tiny-random"]) == 1
    err = capsys.readouterr().err
    assert "skipped sample 1" in err and "not a readable image" in err
    with open_store(db).session() as s:
        assert repo.finished_sample_ids(s, 1) == {2}


def test_out_of_memory_stops_with_a_clear_message(tmp_path, monkeypatch, capsys):
    import core.pipeline.stage1 as stage1
    from core.cli import main
    from core.demo import DEMO_SGDR

    db = str(tmp_path / "d.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(stage1, "run_stage1", oom)
    assert main(["run", "--db", db, "--preset", "tiny-random", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert "out of device memory on sample 1" in err and "--resume" in err


def test_run_killed_mid_way_resumes_to_completion(tmp_path):
    import sqlite3
    import subprocess
    import sys
    import time

    from core.cli import main
    from core.demo import DEMO_SGDR

    db = str(tmp_path / "k.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli",
            "run",
            "--db",
            db,
            "--preset",
            "tiny-random",
            "--limit",
            "12",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and n < 3:
        time.sleep(0.3)
        try:
            con = sqlite3.connect(db, timeout=5)
            n = con.execute("SELECT count(*) FROM run_samples").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            pass
    p.kill()
    p.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    partial = con.execute("SELECT count(*) FROM run_samples").fetchone()[0]
    con.close()
    assert 3 <= partial < 12
    assert (
        main(
            ["run", "--db", db, "--preset", "tiny-random", "--resume", "--limit", str(12 - partial)]
        )
        == 0
    )
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(DISTINCT sample_id) FROM run_samples").fetchone()[0] == 12
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()
