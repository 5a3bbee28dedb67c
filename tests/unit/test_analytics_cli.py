"""``rea2seg eval --json`` carries the analytics, ``rea2seg compare`` compares two stored runs
without writing, ``rea2seg report`` writes one self-contained HTML file."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import sqlalchemy as sa

from core.cli import main
from core.trace import Candidate, EvaluatorTrace, PipelineTrace
from tests.unit.conftest import box_mask

HW = (40, 60)


def _trace(cands, scores, hw=HW) -> PipelineTrace:
    from core.evaluator.grouping import rerank

    cs = [Candidate(i, o, i, m, 0.5) for i, (o, m) in enumerate(cands)]
    ev = EvaluatorTrace("hand", "hand", False, 5, 0, False, [], scores, rerank(scores))
    return PipelineTrace(
        "q", hw, "test", {}, False, {}, None, np.zeros(hw, bool), None, None, None, cs, ev
    )


@pytest.fixture
def two_runs(filled_sqlite, tmp_path):
    """Runs A and B over samples 1 (gt rows 5–15 × cols 5–25) and 2 (gt rows 20–30 × 30–50);
    A picks the exact mask on sample 1 and a wrong one on sample 2; B picks wrong on 1 only
    (sample 2 missing from B)."""
    from core.store import repo

    gt1, gt2 = box_mask(HW, 5, 15, 5, 25), box_mask(HW, 20, 30, 30, 50)
    off = box_mask(HW, 30, 40, 0, 10)
    a1 = _trace([("semantic", gt1), ("amg", off)], {0: 0.9, 1: 0.1})
    a2 = _trace([("multimask", off), ("amg", gt2)], {0: 0.9, 1: 0.1})
    b1 = _trace([("semantic", gt1), ("amg", off)], {0: 0.1, 1: 0.9})
    st = filled_sqlite
    with st.session() as s:
        ra = repo.create_run(s, name="A", preset="test", config={}, model_ids={}, is_random=False)
        rb = repo.create_run(s, name="B", preset="test", config={}, model_ids={}, is_random=False)
        repo.save_trace(s, ra, 1, a1)
        repo.save_trace(s, ra, 2, a2)
        repo.save_trace(s, rb, 1, b1)
    db = str(tmp_path / "store.sqlite")
    return st, db, ra, rb


def _row_counts(st) -> dict[str, int]:
    with st.engine.connect() as c:
        names = sa.inspect(c).get_table_names()
        return {n: c.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar() for n in names}


def test_eval_json_carries_the_analytics(two_runs, capsys):
    st, db, ra, _ = two_runs
    assert main(["eval", "--db", db, "--run", str(ra), "--json", "--bootstrap", "50"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["top1"]["overall"]["n"] == 2  # the existing keys stay
    assert res["classification"]["overall"] == {
        "generator_missed": 0,
        "evaluator_misranked": 1,
        "fine": 1,
    }
    assert res["classification"]["samples"]["evaluator_misranked"] == [2]
    assert res["origins"]["overall"] == {"multimask": 0, "semantic": 1, "amg": 1, "none": 0}
    assert res["ablations"]["amg"]["oracle"]["overall"]["giou"] == pytest.approx(0.5, abs=1e-5)
    assert len(res["coverage"]) == 15 and res["coverage"][1] == pytest.approx(1.0, abs=1e-5)
    ci = res["intervals"]["top1"]["overall"]
    assert ci["n"] == 2 and ci["giou_ci"][0] <= ci["giou"] <= ci["giou_ci"][1]
    assert res["bootstrap"]["n_boot"] == 50
    assert main(["eval", "--db", db, "--run", str(ra), "--failure-iou", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "evaluator mis-ranked 1" in text and "without amg" in text


def test_compare_two_runs_writes_nothing(two_runs, capsys):
    st, db, ra, rb = two_runs
    before = _row_counts(st)
    assert main(["compare", str(ra), str(rb), "--db", db, "--json", "--bootstrap", "100"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert _row_counts(st) == before
    assert res["shared"] == 1 and res["only_a"] == 1 and res["only_b"] == 0
    assert res["overall"]["giou_diff"] == pytest.approx(1.0, abs=1e-5)
    assert res["changed"][0]["sample_id"] == 1
    assert main(["compare", str(ra), str(rb), "--db", db]) == 0
    assert "samples that changed most" in capsys.readouterr().out
    assert _row_counts(st) == before


def test_compare_an_unknown_run_is_one_line(two_runs, capsys):
    _st, db, ra, _ = two_runs
    assert main(["compare", str(ra), "99", "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rea2seg:") and "99" in err and "\n" not in err


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "poster", "action") and v is not None:
                self.refs.append((tag, k, v))


def test_report_is_self_contained_html(two_runs, tmp_path, capsys):
    st, db, ra, rb = two_runs
    out = tmp_path / "report.html"
    before = _row_counts(st)
    assert (
        main(
            [
                "report",
                str(ra),
                "--compare",
                str(rb),
                "--out",
                str(out),
                "--db",
                db,
                "--bootstrap",
                "50",
            ]
        )
        == 0
    )
    assert _row_counts(st) == before
    text = out.read_text(encoding="utf-8")
    p = _Refs()
    p.feed(text)
    p.close()
    assert {"html", "style", "svg", "table", "img"} <= set(p.tags)
    assert "script" not in p.tags and "link" not in p.tags
    assert p.refs and all(v.startswith("data:image/png;base64,") for _t, _k, v in p.refs), p.refs
    assert "url(" not in text and "@import" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert f"Run {ra} vs run {rb}" in text and "worst samples" in text


def test_doubt_scores_from_the_store(two_runs):
    from core.analytics.doubt import doubt_order, doubt_scores
    from core.store import review

    st, _db, ra, rb = two_runs
    before = _row_counts(st)
    assert doubt_scores(st, "gt", ra) == pytest.approx({1: 0.0, 2: 1.0}, abs=1e-5)
    assert doubt_scores(st, "runs", ra, rb) == pytest.approx({1: 1.0})
    with pytest.raises(ValueError, match="second"):
        doubt_scores(st, "runs", ra)
    assert _row_counts(st) == before
    review.decide(st, 3, "accept", user="ann")
    review.decide(st, 3, "reject", user="bob")
    review.decide(st, 4, "accept", user="ann")
    got = doubt_scores(st, "annotators")
    assert got == pytest.approx({3: 0.5, 4: 0.0}) and doubt_order(got) == [3, 4]
