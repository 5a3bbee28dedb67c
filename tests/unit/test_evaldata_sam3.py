"""SAM 3 (transformers ``Sam3Model``) as App. D uses it: a tiny random-init instance of the real
classes saved to disk and loaded through the same loader as a real checkpoint; the gqa builder
through the command line keeps only items where it returns exactly one mask."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_sam3(tmp_path_factory):
    from core.models.sam3_text import build_tiny_sam3

    return build_tiny_sam3(tmp_path_factory.mktemp("sam3"))


def test_load_and_segment_at_image_size(tiny_sam3, tmp_path):
    from core.models.sam3_text import load_sam3

    seg = load_sam3(tiny_sam3, threshold=0.0)
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    masks, scores = seg.segment(img, "cup")
    assert masks and all(m.shape == (50, 70) and m.dtype == bool for m in masks)
    assert scores == sorted(scores, reverse=True) and seg.name == f"sam3:{tiny_sam3.name}"
    assert load_sam3(tiny_sam3, threshold=1.01).segment(img, "cup") == ([], [])
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_sam3(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="could not be loaded as a SAM 3 checkpoint"):
        load_sam3(tmp_path / "bad")


def test_gqa_command_keeps_exactly_one_sam3_mask(tiny_sam3, tmp_path, capsys):
    from core.cli import main
    from core.models.sam3_text import load_sam3
    from tests.unit.llm_server import ChatServer, Reply

    (tmp_path / "images").mkdir()
    img = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "1.jpg"), img[:, :, ::-1])
    q = {"a": {"imageId": "1", "question": "What is on the table?", "answer": "cup"}}
    (tmp_path / "q.json").write_text(json.dumps(q))
    db = str(tmp_path / "s.sqlite")
    assert main(["import", "gqa", str(tmp_path / "q.json"), "--images", str(tmp_path / "images"),
                 "--db", db]) == 0  # fmt: skip
    # a threshold between the best two detections: SAM 3 returns exactly one mask
    from core.images import load_image_rgb

    _, scores = load_sam3(tiny_sam3, threshold=0.0).segment(
        load_image_rgb(tmp_path / "images" / "1.jpg"), "cup"
    )
    assert len(scores) >= 2 and scores[0] > scores[1]
    between = (scores[0] + scores[1]) / 2

    def script(req) -> Reply:
        if "Dataset Filter" in req.system.splitlines()[0]:
            return Reply("Reason: clear.\nScore: 1")
        return Reply("Reason: ok\nCorrectness: Pass\nAmbiguity: Unique\nFinalDecision: Keep\n"
                     "Answer: A table. The object on it is the cup.")  # fmt: skip

    srv = ChatServer(script)
    try:
        base = ["reasoning", "gqa", "--db", db, "--endpoint", srv.url, "--model", "m",
                "--sam3", str(tiny_sam3), "--quiet", "--max-retries", "0"]  # fmt: skip
        assert main([*base, "--sam3-threshold", f"{between}", "--dataset", "q"]) == 0
        assert "accepted 1" in capsys.readouterr().out  # exactly one mask: kept
        assert main([*base, "--sam3-threshold", "0"]) == 2  # done already: asks for --resume
        assert "--resume" in capsys.readouterr().err
        (tmp_path / "q2.json").write_text(json.dumps(q))
        assert main(["import", "gqa", str(tmp_path / "q2.json"), "--images",
                     str(tmp_path / "images"), "--db", db]) == 0  # fmt: skip
        assert main([*base, "--sam3-threshold", "0", "--dataset", "q2"]) == 0
        assert "rejected 1" in capsys.readouterr().out  # several masks: not kept
        assert main(["reasoning", "list", "--db", db]) == 0
        assert "sam3" in capsys.readouterr().out
        assert main(["reasoning", "gqa", "--db", db, "--endpoint", srv.url, "--model", "m",
                     "--sam3", str(tmp_path / "missing"), "--quiet"]) == 2  # fmt: skip
        assert "SAM 3 checkpoint directory" in capsys.readouterr().err
    finally:
        srv.close()
    from sqlalchemy import select

    from core.store import open_store, repo
    from core.store.models import Sample

    st = open_store(db)
    smp = st.run(lambda s: list(s.scalars(select(Sample))), write=False)
    assert len(smp) == 1 and smp[0].reasoning == "A table. The object on it is the cup."
    m = st.run(lambda s: repo.gt_mask(s, smp[0].id), write=False)
    assert m.shape == (48, 64) and m.any()
    st.close()
