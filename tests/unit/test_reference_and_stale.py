"""The imported ground truth stays beside a reviewer's edit; metrics are measured against the
chosen reference and say which; a trace whose question was edited afterwards is stale."""

from __future__ import annotations

import numpy as np
import pytest

from core.cli import main
from core.store import repo, review
from core.trace import Candidate, PipelineTrace
from tests.unit.conftest import box_mask

E5 = 1e-5
HW = (40, 60)
GT1 = box_mask(HW, 5, 15, 5, 25)  # sample 1's imported ground truth (200 px)
HALF = box_mask(HW, 5, 15, 5, 15)  # a reviewer's edit of it (100 px)


def _trace(question: str, masks) -> PipelineTrace:
    cands = [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)]
    return PipelineTrace(question, HW, "test", {}, False, {}, None, None, None, None, None, cands)


@pytest.fixture
def run_store(filled_sqlite):
    """Run 1 with traces of samples 1 and 2 (each: one candidate equal to its ground truth)."""
    st = filled_sqlite
    with st.session() as s:
        run_id = repo.create_run(
            s, name="t", preset="test", config={}, model_ids={}, is_random=False
        )
        for sid in (1, 2):
            smp = repo.get_sample(s, sid)
            repo.save_trace(s, run_id, sid, _trace(smp.question, [repo.gt_mask(s, sid)]))
    return st, run_id


def test_an_edit_keeps_the_imported_ground_truth_beside_it(filled_sqlite):
    st = filled_sqlite
    review.replace_mask(st, 1, HALF, user="ann", provenance={"tool": "brush"})
    with st.session(write=False) as s:
        assert np.array_equal(repo.gt_mask(s, 1), GT1)
        gt = repo.reference_mask(s, 1, "gt")
        rv = repo.reference_mask(s, 1, "reviewed")
        assert gt.used == "gt" and np.array_equal(gt.mask, GT1)
        assert rv.used == "reviewed" and np.array_equal(rv.mask, HALF)
        # nobody edited sample 2: "reviewed" falls back to its ground truth and says so
        fb = repo.reference_mask(s, 2, "reviewed")
        assert fb.used == "gt" and np.array_equal(fb.mask, repo.gt_mask(s, 2))
        with pytest.raises(ValueError, match="unknown reference"):
            repo.reference_mask(s, 1, "edited")
    review.undo(st, 1, user="ann")
    with st.session(write=False) as s:
        assert repo.reference_mask(s, 1, "reviewed").used == "gt"
        assert np.array_equal(repo.gt_mask(s, 1), GT1)


def test_eval_against_gt_and_reviewed(run_store):
    from core.evaluator.evaluate import evaluate_run, format_table

    st, run_id = run_store
    review.replace_mask(st, 1, HALF, user="ann")
    gt = evaluate_run(st, run_id)
    rv = evaluate_run(st, run_id, against="reviewed")
    assert gt["against"] == "gt" and gt["reference"] == {"gt": 2, "reviewed": 0}
    assert rv["against"] == "reviewed" and rv["reference"] == {"gt": 1, "reviewed": 1}
    # sample 1's candidate is its ground truth: IoU 1 against gt, 100 / 200 against the edit
    assert gt["top1"]["per_category"]["geometric"]["giou"] == pytest.approx(
        200 / (200 + E5), abs=1e-12
    )
    assert rv["top1"]["per_category"]["geometric"]["giou"] == pytest.approx(
        100 / (200 + E5), abs=1e-12
    )
    assert rv["top1"]["per_category"]["spatial"] == gt["top1"]["per_category"]["spatial"]
    assert (
        format_table(gt).splitlines()[0]
        == "measured against: the imported ground truth (2 samples)"
    )
    assert (
        "1 samples nobody edited fell back to their imported ground truth"
        in format_table(rv).splitlines()[0]
    )
    with pytest.raises(ValueError, match="unknown reference"):
        evaluate_run(st, run_id, against="current")


def test_cli_eval_against(run_store, capsys):
    st, run_id = run_store
    review.replace_mask(st, 1, HALF, user="ann")
    db = st.url
    assert main(["eval", "--db", db, "--run", str(run_id)]) == 0
    assert capsys.readouterr().out.startswith("measured against: the imported ground truth")
    assert main(["eval", "--db", db, "--run", str(run_id), "--against", "reviewed", "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert res["against"] == "reviewed" and res["reference"] == {"gt": 1, "reviewed": 1}
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--db", db, "--run", str(run_id), "--against", "edited"])
    assert exc.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "imported ground truth" in capsys.readouterr().out


def test_trace_is_stale_after_the_question_is_edited(run_store, capsys):
    st, run_id = run_store
    with st.session(write=False) as s:
        assert not repo.trace_is_stale(s, run_id, 1)
        assert repo.trace_question(s, run_id, 1) == repo.get_sample(s, 1).question
        assert not repo.trace_is_stale(s, run_id, 3)  # no trace: nothing to be stale
        assert repo.trace_question(s, run_id, 3) is None
    db = st.url
    assert main(["trace", "--db", db, "--sample", "#1", "--run", str(run_id)]) == 0
    assert "stale" not in capsys.readouterr().err
    review.edit_question(st, 1, "Which cube is left of the ball?", user="ann")
    with st.session(write=False) as s:
        assert repo.trace_is_stale(s, run_id, 1) and not repo.trace_is_stale(s, run_id, 2)
    assert main(["trace", "--db", db, "--sample", "#1", "--run", str(run_id)]) == 0
    captured = capsys.readouterr()
    assert "stale: question edited after this run" in captured.err
    assert "Which cube?" in captured.err and "Which cube is left of the ball?" in captured.err
    review.undo(st, 1, user="ann")  # the question the run saw again: no longer stale
    with st.session(write=False) as s:
        assert not repo.trace_is_stale(s, run_id, 1)
