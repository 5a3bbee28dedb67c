"""``rea2seg eval`` numbers on a hand-built store, and the evaluator-training export checked
against IoUs recomputed from the written mask PNGs."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from core.evaluator.base import GroupResult
from core.evaluator.parser import parse_scores
from core.evaluator.prompt import SYSTEM
from core.trace import Candidate, PipelineTrace
from tests.unit.conftest import box_mask

E5 = 1e-5  # LISA's per-sample epsilon
HW = (40, 60)


class TableEvaluator:
    """Scores a mask by a table keyed on its pixel count."""

    name, backend, is_random = "table", "test", False

    def __init__(self, table):
        self.table = table

    def score_groups(self, image, question, groups, cot):
        return [self.score_group(image, question, g, cot) for g in groups]

    def score_group(self, image, question, masks, cot):
        s = [self.table.get(int(m.sum())) for m in masks]
        return GroupResult(s, None, "raw", "prompt", None if None not in s else "unreadable")


def _trace(masks, initial):
    cands = [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)]
    return PipelineTrace("q", HW, "test", {}, False, {}, None, initial, None, None, None, cands)


@pytest.fixture
def scored_run(filled_sqlite):
    """Run 1 with two scored samples.

    Sample 1 (geometric; gt rows 5–15 × cols 5–25 = 200 px):
      c0 half (100 px, I 100, U 200), c1 disjoint (199 px, I 0, U 399), c2 exact (I 200, U 200);
      scores 0.9 / 0.2 / 0.6 → ranking [0, 2, 1]; initial mask = c0.
    Sample 2 (spatial; gt rows 20–30 × cols 30–50 = 200 px; ignore rows 0–2):
      c0 gt + the whole ignore band (I 200, U 200 once ignore is excluded), c1 left half
      (I 100, U 200), c2 shifted down (rows 25–35: I 100, U 300); scores None / 0.7 / 0.8 →
      ranking [2, 1, 0]; no initial mask.
    """
    from core.evaluator.stage2 import run_stage2
    from core.store import repo

    st = filled_sqlite
    gt1 = box_mask(HW, 5, 15, 5, 25)
    half, off = box_mask(HW, 5, 15, 5, 15), box_mask(HW, 30, 40, 40, 60)
    off[30, 40] = False
    t1 = _trace([half, off, gt1.copy()], initial=half)
    run_stage2(
        t1,
        np.zeros((*HW, 3), np.uint8),
        TableEvaluator({100: 0.9, 199: 0.2, 200: 0.6}),
        group_size=2,
    )
    assert t1.evaluator.ranking == [0, 2, 1]

    gt2 = box_mask(HW, 20, 30, 30, 50)
    c0 = gt2 | box_mask(HW, 0, 2, 0, 60)  # 320 px
    c1 = box_mask(HW, 20, 30, 30, 40)  # 100 px
    c2 = box_mask(HW, 25, 35, 30, 50)  # 200 px
    t2 = _trace([c0, c1, c2], initial=None)
    run_stage2(t2, np.zeros((*HW, 3), np.uint8), TableEvaluator({100: 0.7, 200: 0.8}), group_size=5)
    assert t2.evaluator.ranking == [2, 1, 0] and t2.evaluator.final_scores[0] is None
    with st.session() as s:
        assert (
            repo.get_sample(s, 1).category == "geometric"
            and repo.get_sample(s, 2).category == "spatial"
        )
        run_id = repo.create_run(
            s, name="t", preset="test", config={}, model_ids={}, is_random=False
        )
        repo.save_trace(s, run_id, 1, t1)
        repo.save_trace(s, run_id, 2, t2)
    return st, run_id


def test_eval_numbers_by_hand(scored_run):
    from core.evaluator.evaluate import evaluate_run

    st, run_id = scored_run
    res = evaluate_run(st, run_id)
    assert res["n"] == 2 and res["with_evaluator"] == 2 and res["is_random"] is False
    ap = pytest.approx

    def check(method, per_sample, ci, cats):
        r = res[method]
        assert r["overall"]["giou"] == ap(np.mean(per_sample), abs=1e-12), method
        assert r["overall"]["ciou"] == ap(ci, abs=1e-12), method
        for cat, g in cats.items():
            assert (
                r["per_category"][cat]["giou"] == ap(g, abs=1e-12)
                and r["per_category"][cat]["n"] == 1
            )

    check(
        "top1",
        [100 / (200 + E5), 100 / (300 + E5)],
        200 / (500 + 1e-10),
        {"geometric": 100 / (200 + E5), "spatial": 100 / (300 + E5)},
    )
    check(
        "best_of_top3",
        [200 / (200 + E5), 200 / (200 + E5)],
        400 / (400 + 1e-10),
        {"geometric": 200 / (200 + E5), "spatial": 200 / (200 + E5)},
    )
    check(
        "initial",
        [100 / (200 + E5), 0.0],
        100 / (400 + 1e-10),
        {"geometric": 100 / (200 + E5), "spatial": 0.0},
    )
    check("oracle", [200 / (200 + E5), 200 / (200 + E5)], 400 / (400 + 1e-10), {})

    c = res["correlation"]
    assert c["n"] == 5 and c["unscored"] == 1
    # (score, true IoU): (0.9, .5) (0.2, 0) (0.6, 1) | (0.7, .5) (0.8, 1/3)
    x = [0.9, 0.2, 0.6, 0.7, 0.8]
    y = [100 / (200 + E5), 0.0, 200 / (200 + E5), 100 / (200 + E5), 100 / (300 + E5)]
    mx, my = sum(x) / 5, sum(y) / 5
    r = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / math.sqrt(
        sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)
    )
    assert c["pearson"] == ap(r, abs=1e-12)
    # ranks: x → 5 1 2 3 4; y → 3.5 1 5 3.5 2 (tie averaged); rho = 2 / sqrt(10 · 9.5)
    assert c["spearman"] == ap(2 / math.sqrt(95), abs=1e-12)
    assert c["mae"] == ap(sum(abs(a - b) for a, b in zip(x, y, strict=True)) / 5, abs=1e-12)


def test_eval_cli_text_and_json(scored_run, capsys):
    from core.cli import main

    st, run_id = scored_run
    assert main(["eval", "--db", st.url, "--run", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert "geometric" in out and "spatial" in out and "overall" in out and "Spearman 0.205" in out
    assert "RANDOM" not in out
    assert main(["eval", "--db", st.url, "--run", str(run_id), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {
        "top1",
        "best_of_top3",
        "initial",
        "oracle",
        "correlation",
        "n",
        "is_random",
    }
    assert main(["eval", "--db", st.url, "--run", "99"]) == 2  # a plain error, not a traceback
    assert "99" in capsys.readouterr().err


def test_eval_helpers():
    from core.evaluator.evaluate import average_ranks, pearson, spearman

    assert list(average_ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert (
        pearson(np.array([1.0, 2.0]), np.array([5.0, 5.0])) is None
        and spearman(np.array([1.0]), np.array([1.0])) is None
    )
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 1000.0])) == pytest.approx(1.0)


def _png_mask(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert (
        img is not None
        and img.dtype == np.uint8
        and img.ndim == 2
        and set(np.unique(img)) <= {0, 255}
    )
    return img == 255


def test_export_ious_recomputed_from_the_pngs(scored_run, tmp_path):
    from core.evaluator.export import export_evaluator_train
    from core.store import repo

    st, run_id = scored_run
    out = tmp_path / "out" / "train.jsonl"
    out.parent.mkdir()
    stats = export_evaluator_train(st, run_id, out, group_size=2, seed=7)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert (
        stats["groups"] == len(lines) == 4 and stats["samples"] == 2
    )  # 3 candidates → 2 groups each
    assert (
        stats["mask_images"] == 6 and len(list((tmp_path / "out" / "train_images").iterdir())) == 6
    )
    with st.session(write=False) as s:
        truth = {
            sid: (
                repo.current_mask(s, sid),
                repo.ignore_mask(s, sid),
                repo.image_path(repo.get_sample(s, sid)),
            )
            for sid in (1, 2)
        }
    for rec in lines:
        gt, ign, img_path = truth[rec["sample_id"]]
        keep = ~ign if ign is not None else np.ones_like(gt)
        images = rec["image"]
        n = len(images) - 1
        assert n == 2 and rec["width_list"] == [60] * 3 and rec["height_list"] == [40] * 3
        assert (out.parent / images[0]).resolve() == img_path.resolve()
        system, human, gpt = rec["conversations"]
        assert system == {"from": "system", "value": SYSTEM}  # the turn inference sends
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].startswith("Image-1: <image>\nImage-2: <image>\nImage-3: <image>\n")
        assert human["value"].count("<image>") == n + 1
        answer = parse_scores(gpt["value"], n)
        assert answer.error is None
        for k, path in enumerate(images[1:]):
            m = _png_mask(out.parent / path) & keep
            g = gt & keep
            union = np.logical_or(m, g).sum()
            iou = 1.0 if union == 0 else np.logical_and(m, g).sum() / union
            assert rec["ious"][k] == pytest.approx(iou, abs=1e-12)
            assert answer.scores[k] == pytest.approx(iou, abs=0.005 + 1e-12)
    padded = [r for r in lines if r["padded"]]
    assert len(padded) == 2 and all(r["padded"] == 1 for r in padded)
    by_sample = {}
    for r in lines:  # each candidate is in exactly one group of its sample as its own slot
        own = r["candidate_ids"][: len(r["candidate_ids"]) - r["padded"]]
        by_sample.setdefault(r["sample_id"], []).extend(own)
    assert {k: sorted(v) for k, v in by_sample.items()} == {1: [0, 1, 2], 2: [0, 1, 2]}
    meta = json.loads((out.parent / "train_meta.json").read_text())
    entry = next(iter(meta.values()))
    assert (
        entry["annotation"] == str(out)
        and entry["root"] == str(out.parent)
        and entry["length"] == 4
    )
    again = tmp_path / "again.jsonl"
    export_evaluator_train(st, run_id, again, group_size=2, seed=7)
    strip = [
        {k: v for k, v in json.loads(x).items() if k != "image"}
        for x in again.read_text().splitlines()
    ]
    assert strip == [{k: v for k, v in r.items() if k != "image"} for r in lines]  # reproducible


def test_export_filters_and_errors(scored_run, tmp_path, capsys):
    from core.cli import main
    from core.evaluator.export import export_evaluator_train

    st, run_id = scored_run
    stats = export_evaluator_train(st, run_id, tmp_path / "v.jsonl", status="verified")
    assert (
        stats["groups"] == 0 and (tmp_path / "v.jsonl").read_text() == ""
    )  # samples 1, 2 are pending
    with pytest.raises(ValueError, match="jsonl"):
        export_evaluator_train(st, run_id, tmp_path / "x.json")
    export_evaluator_train(st, run_id, tmp_path / "missing" / "x.jsonl")  # the folder is created
    assert (tmp_path / "missing" / "x.jsonl").is_file() and not list(tmp_path.rglob("*.tmp"))
    out = tmp_path / "cli.jsonl"
    assert (
        main(["export", "evaluator-train", "--db", st.url, "--run", str(run_id), "--out", str(out)])
        == 0
    )
    assert "wrote 2 groups from 2 samples" in capsys.readouterr().out  # s = 5: one group per sample
    assert (
        main(["export", "evaluator-train", "--db", st.url, "--run", "42", "--out", str(out)]) == 2
    )


@pytest.mark.slow
def test_cli_run_with_the_tiny_evaluator_then_eval_and_export(tmp_path, capsys):
    from core.cli import main
    from core.demo import DEMO_SGDR

    db = str(tmp_path / "d.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0
    assert (
        main(
            [
                "run",
                "--db",
                db,
                "--preset",
                "tiny-random",
                "--evaluator",
                "tiny-random",
                "--no-cot",
                "--limit",
                "2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["trace", "--db", db, "--sample", "1", "--json"]) == 0
    tr = json.loads(capsys.readouterr().out)
    ev = tr["evaluator"]
    assert ev["backend"] == "local-internvl" and ev["is_random"] and ev["cot"] is False
    assert all(g["parse_error"] for g in ev["groups"])  # random words: recorded failures, no crash
    assert len(ev["ranking"]) == len(tr["candidates"])
    assert main(["eval", "--db", db, "--run", "1"]) == 0
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    assert main(["eval", "--db", db, "--run", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 2 and res["is_random"] is True and res["correlation"]["n"] == 0
    assert res["fell_back"] == 2  # no readable score anywhere: the answer is M
    assert (
        main(
            [
                "export",
                "evaluator-train",
                "--db",
                db,
                "--run",
                "1",
                "--out",
                str(tmp_path / "t.jsonl"),
            ]
        )
        == 0
    )
    assert (tmp_path / "t.jsonl").read_text().count("\n") >= 2
