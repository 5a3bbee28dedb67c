"""Stage 2 where the paper is silent: fallback to M, the short last group, the prompt format
shared by inference and the training export, and old traces still loading (§4.3, App. B)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.evaluator.base import GroupResult
from core.trace import Candidate, EvaluatorTrace, PipelineTrace

HW = (10, 20)


class Fixed:
    """Gives each mask the score in ``table`` keyed on its pixel count (``None`` = unreadable)."""

    name, backend, is_random = "fixed", "test", False

    def __init__(self, table, prompt_format=None):
        self.table = table
        if prompt_format:
            self.prompt_format = prompt_format

    def score_groups(self, image, question, groups, cot):
        out = []
        for g in groups:
            s = [self.table.get(int(m.sum())) for m in g]
            out.append(GroupResult(s, None, "raw", "p", None if None not in s else "unreadable"))
        return out


def _trace(areas):
    cands = []
    for i, a in enumerate(areas):
        m = np.zeros(HW, bool)
        m.flat[:a] = True
        cands.append(Candidate(i, "amg", i, m, 0.5))
    initial = np.zeros(HW, bool)
    initial[5:, 10:] = True
    return PipelineTrace("q", HW, "t", {}, False, {}, None, initial, None, None, None, cands)


def test_no_readable_score_falls_back_to_the_initial_mask():
    from core.evaluator.evaluate import evaluate_traces, format_table
    from core.evaluator.stage2 import answer_mask, run_stage2

    img = np.zeros((*HW, 3), np.uint8)
    bad = _trace([3, 5, 7])
    ev = run_stage2(bad, img, Fixed({}))
    assert ev.fell_back_to_initial and np.array_equal(answer_mask(bad), bad.initial_mask)
    good = _trace([3, 5, 7])
    ev2 = run_stage2(good, img, Fixed({3: 0.1, 5: 0.9}))  # one unreadable score only: no fallback
    assert not ev2.fell_back_to_initial and np.array_equal(
        answer_mask(good), good.candidate(1).mask
    )
    gt = bad.initial_mask.copy()
    res = evaluate_traces([(bad, gt, None, "a"), (good, gt, None, "a")])
    assert res["fell_back"] == 1
    # the fallen-back sample scores M (IoU ≈ 1); the other its top-1 (5 px, disjoint from gt: 0)
    assert res["top1"]["overall"]["giou"] == pytest.approx((50 / (50 + 1e-5)) / 2)
    assert "1 of 2 samples fell back to the initial mask M" in format_table(
        {**res, "is_random": False}
    )
    back = PipelineTrace.from_json(bad.to_json())
    assert back.evaluator.fell_back_to_initial


def test_short_last_group_setting_is_recorded_and_the_docs_agree():
    from core.evaluator.stage2 import run_stage2

    img = np.zeros((*HW, 3), np.uint8)
    t = _trace(list(range(1, 8)))  # 7 candidates: groups of 5 and 2
    ev = run_stage2(t, img, Fixed({a: 0.5 for a in range(1, 8)}))
    assert (
        ev.pad_last
        and [len(g.candidate_ids) for g in ev.groups] == [5, 5]
        and ev.groups[1].padded == 3
    )
    ev = run_stage2(
        _trace(list(range(1, 8))), img, Fixed({a: 0.5 for a in range(1, 8)}), pad_last=False
    )
    assert not ev.pad_last and [len(g.candidate_ids) for g in ev.groups] == [5, 2]
    page = (Path(__file__).resolve().parents[2] / "docs" / "pipeline.md").read_text(
        encoding="utf-8"
    )
    assert "last group is padded" in page and "not padded" not in page


def test_prompt_format_is_recorded_and_a_mismatched_lora_is_refused():
    from core.evaluator.prompt import prompt_format
    from core.evaluator.stage2 import run_stage2

    img = np.zeros((*HW, 3), np.uint8)
    e = Fixed({1: 0.1, 2: 0.2})
    e.image_tiling = "single tile"
    ev = run_stage2(_trace([1, 2]), img, e, cot=True)
    assert (
        ev.prompt_format == prompt_format(True) != prompt_format(False)
        and ev.image_tiling == "single tile"
    )
    with pytest.raises(ValueError, match="prompt format"):
        run_stage2(_trace([1, 2]), img, Fixed({}, prompt_format=prompt_format(False)), cot=True)


def test_old_traces_without_the_new_fields_still_load():
    t = _trace([2, 4])
    t.evaluator = EvaluatorTrace("b", "m", False, 5, 0, True, [], {0: 0.1, 1: None}, [0, 1])
    d = json.loads(t.to_json())
    for k in ("fell_back_to_initial", "pad_last", "prompt_format", "image_tiling"):
        del d["evaluator"][k]
    back = PipelineTrace.from_dict(d)
    assert (
        back.evaluator.pad_last
        and back.evaluator.prompt_format == ""
        and not back.evaluator.fell_back_to_initial
    )


def test_export_writes_the_inference_prompt_format(filled_sqlite, tmp_path):
    from core.evaluator.export import export_evaluator_train
    from core.evaluator.prompt import SYSTEM, human_value, prompt_format
    from core.evaluator.stage2 import run_stage2
    from core.store import repo
    from tests.unit.conftest import box_mask

    st = filled_sqlite
    with st.session() as s:
        sid = repo.list_samples(s)[0].id
        hw = (repo.get_sample(s, sid).image.height, repo.get_sample(s, sid).image.width)
        run_id = repo.create_run(
            s, name="r", preset="t", config={"stage2": {"cot": True}}, model_ids={}, is_random=False
        )
    t = PipelineTrace(
        "q",
        hw,
        "t",
        {},
        False,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(0, "amg", 0, box_mask(hw, 0, 5, 0, 5), 0.5)],
    )
    run_stage2(t, np.zeros((*hw, 3), np.uint8), Fixed({25: 0.3}), cot=True)
    st.run(lambda s: repo.save_trace(s, run_id, sid, t))
    stats = export_evaluator_train(st, run_id, tmp_path / "e.jsonl")
    rec = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])
    assert (
        stats["prompt_format"]
        == rec["prompt_format"]
        == t.evaluator.prompt_format
        == prompt_format(True)
    )
    assert rec["conversations"][0] == {"from": "system", "value": SYSTEM}
    assert rec["conversations"][1]["value"].endswith(
        human_value("x", 1, cot=True).split("Question: x\n")[1]
    )
    assert (
        rec["conversations"][2]["value"].startswith("Answer:\nMask 1:") and rec["reasoning_missing"]
    )
    stats = export_evaluator_train(st, run_id, tmp_path / "n.jsonl", cot=False)
    assert json.loads((tmp_path / "n.jsonl").read_text().splitlines()[0])[
        "prompt_format"
    ] == prompt_format(False)
