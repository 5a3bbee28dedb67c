"""``core.pipeline.ask`` and ``rea2seg ask`` with the tiny random presets (random weights: the
answers are noise; these tests check the plumbing, never the quality)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.cancel import Cancelled
from tests.unit.conftest import make_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    from core.pipeline.cache import ModelCache

    m = ModelCache(device="cpu")
    return m.segmenter("tiny-random-lisa"), m.evaluator("tiny-random")


@pytest.fixture
def image(tmp_path):
    return make_image(tmp_path / "img.png", hw=(48, 64))


def test_ask_reports_stages_in_order_and_scores_group_by_group(models, image):
    from core.pipeline.ask import ASK_STEPS, ask, summary

    segmenter, evaluator = models
    seen: list[tuple[str, float, bool]] = []
    trace = ask(
        image,
        "  the thing on the left  ",
        segmenter,
        evaluator=evaluator,
        progress=lambda st, f, tr: seen.append((st, f, tr is not None)),
    )
    stages = [s for s, _, _ in seen]
    assert stages[:7] == list(ASK_STEPS[:7])
    assert stages[-1] == "done"
    n_groups = len(trace.evaluator.groups)
    assert stages.count("evaluator") == n_groups + 2  # start, each group, end
    fractions = [f for _, f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the stage-1 trace reaches the caller before stage 2 starts (progressive display)
    assert [has for s, _, has in seen if s == "evaluator"][0]
    assert not any(has for s, _, has in seen if s in ASK_STEPS[:7])
    info = summary(trace)
    assert info["question"] == "the thing on the left"
    assert info["is_random"] is True
    assert "iou" not in json.dumps(info).lower().replace("sam_score", "")
    ranked = [c["id"] for c in info["candidates"]]
    assert ranked == trace.evaluator.ranking
    assert {c["origin"] for c in info["candidates"]} <= {"multimask", "semantic", "amg"}


def test_ask_without_evaluator_answers_the_first_candidate(models, image):
    from core.pipeline.ask import answer_id, ask

    trace = ask(image, "q", models[0])
    assert trace.evaluator is None
    assert answer_id(trace) == trace.candidates[0].id


def test_ask_cancels_between_groups_and_refuses_an_empty_question(models, image):
    from core.pipeline.ask import ask

    segmenter, evaluator = models
    with pytest.raises(ValueError, match="empty"):
        ask(image, "   ", segmenter)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 9  # after stage 1's 7 polls and the first groups

    with pytest.raises(Cancelled):
        ask(image, "q", segmenter, evaluator=evaluator, should_cancel=cancel)


def _ask(capsys, *argv):
    from core.cli import main

    code = main(["ask", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_ask_json_mask_and_store(tmp_path, capsys):
    img_path = tmp_path / "img.png"
    image = make_image(img_path, hw=(48, 64))
    mask_path = tmp_path / "answer.png"
    db = tmp_path / "s.db"
    code, out, err = _ask(
        capsys,
        str(img_path),
        "the red thing",
        "--preset",
        "tiny-random-lisa",
        "--evaluator",
        "tiny-random",
        "--json",
        "--mask-out",
        str(mask_path),
        "--db",
        str(db),
    )
    assert code == 0, err
    info = json.loads(out)
    assert "RANDOM WEIGHTS" in info["note"]
    assert info["evaluator"] and info["candidates"]
    written = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    assert written.shape == image.shape[:2] and set(np.unique(written)) <= {0, 255}

    from core.store import open_store, repo

    store = open_store(str(db))
    with store.session(write=False) as s:
        sample = repo.get_sample(s, info["sample_id"])
        assert sample.dataset.name == "ask" and sample.question == "the red thing"
        trace = repo.load_trace(s, info["run_id"], sample.id)
        assert [c.id for c in trace.candidates] == sorted(c["id"] for c in info["candidates"])
        assert trace.evaluator.ranking == [c["id"] for c in info["candidates"]]
        assert repo.get_run(s, info["run_id"]).is_random
    store.close()


def test_cli_ask_prints_answer_and_table(tmp_path, capsys):
    img_path = tmp_path / "img.png"
    make_image(img_path)
    code, out, _ = _ask(capsys, str(img_path), "q", "--preset", "tiny-random-lisa")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("RANDOM WEIGHTS")
    assert lines[1] == "answer: candidate 0"
    assert lines[2].split()[:3] == ["rank", "id", "origin"]


@pytest.mark.parametrize("content", [None, b"not an image"])
def test_cli_ask_unreadable_image_is_one_line_status_2(tmp_path, capsys, content):
    p = tmp_path / "x.png"
    if content is not None:
        p.write_bytes(content)
    code, out, err = _ask(capsys, str(p), "q", "--preset", "tiny-random-lisa")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(p) in err


def test_cli_ask_loads_one_model_after_the_other_when_both_do_not_fit(
    tmp_path, capsys, monkeypatch
):
    import core.pipeline.memory as memory

    monkeypatch.setattr(memory, "free_memory", lambda device: 1024)  # 1 KiB free
    img_path = tmp_path / "img.png"
    make_image(img_path, hw=(48, 64))
    code, out, err = _ask(
        capsys,
        str(img_path),
        "q",
        "--preset",
        "tiny-random-lisa",
        "--evaluator",
        "tiny-random",
        "--json",
    )
    assert code == 0
    assert "do not both fit" in err and "loading them one after the other" in err
    assert json.loads(out)["evaluator"] is not None
