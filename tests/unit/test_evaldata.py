"""Evaluator training data (App. D) end to end against a loopback OpenAI-compatible server:
GQA import, the four builders, resume, provenance, review of the reasoning, and parsers."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from core.evaldata.answers import (
    AnswerError,
    parse_annotator,
    parse_category_annotator,
    parse_filter,
    parse_spatial_reasoning,
)
from core.evaldata.build import AnnotationError, annotate
from core.llm_client import ChatClient
from core.store import open_store, repo, review
from core.store.models import ReasoningAnnotation, Sample, VqaItem
from tests.unit.conftest import box_mask
from tests.unit.llm_server import ChatServer, Reply

HW = (60, 80)
KEY = "sk-test-secret-0815"
GRAY = 128


def _role(req) -> str:
    first = req.system.splitlines()[0]
    return {
        "You are a Reasoning Segmentation Dataset Filter.": "S7",
        "You are an annotator for a grounding dataset.": "S8",
        "You are a Spatial Reasoning Referring Expression Dataset Generator.": "S9",
    }.get(first, "S10" if "Grounding Dataset Annotator" in first else "?")


def _red(img: np.ndarray) -> np.ndarray:
    return (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)


# -- GQA ----------------------------------------------------------------------------------------


@pytest.fixture
def gqa(tmp_path) -> dict[str, Path]:
    (tmp_path / "images").mkdir()
    for name in ("100", "200"):
        cv2.imwrite(str(tmp_path / "images" / f"{name}.jpg"), np.full((*HW, 3), GRAY, np.uint8))
    q = {
        "q1": {"imageId": "100", "question": "What is on the table?", "answer": "cup",
               "fullAnswer": "The cup is on the table.", "annotations": {"answer": {"0": "7"}}},
        "q2": {"imageId": "100", "question": "What is the man wearing?", "answer": "pants",
               "fullAnswer": "The man is wearing pants."},
        "q3": {"imageId": "100", "question": "Which animal is left?", "answer": "dog",
               "fullAnswer": "The dog is left."},
        "q4": {"imageId": "200", "question": "What is right of the cup?", "answer": "ball",
               "fullAnswer": "The ball is right of the cup."},
        "q5": {"imageId": "200", "question": "What is behind the fence?", "answer": "car",
               "fullAnswer": "A car is behind the fence."},
        "bad": {"imageId": "100", "question": "No answer?"},
        "noimg": {"imageId": "999", "question": "Where?", "answer": "x"},
    }  # fmt: skip
    graphs = {"100": {"width": HW[1], "height": HW[0],
                      "objects": {"7": {"name": "cup", "x": 10, "y": 20, "w": 15, "h": 10}}}}  # fmt: skip
    (tmp_path / "q.json").write_text(json.dumps(q))
    (tmp_path / "sg.json").write_text(json.dumps(graphs))
    return {
        "questions": tmp_path / "q.json",
        "graphs": tmp_path / "sg.json",
        "images": tmp_path / "images",
    }


class FakeSam3:
    """Known masks per answer word: 'cup' and 'ball' and 'car' one each, 'dog' two."""

    name = "sam3:fake"
    threshold = 0.5

    def __init__(self) -> None:
        self.calls: list[str] = []

    def segment(self, image, text):
        self.calls.append(text)
        hw = image.shape[:2]
        one = {"cup": (20, 30, 10, 25), "ball": (5, 25, 40, 70), "car": (30, 50, 5, 60)}
        if text == "dog":
            return [box_mask(hw, 0, 10, 0, 10), box_mask(hw, 40, 50, 40, 50)], [0.9, 0.8]
        if text in one:
            return [box_mask(hw, *one[text])], [0.93]
        return [], []


def _gqa_script(s8_for: dict[str, str]):
    def answer(req) -> Reply:
        role = _role(req)
        if role == "S7":
            if "pants" in req.text:
                return Reply(
                    "Reason: The question asks for all of the man's clothing; pants is incomplete."
                    "\nScore: 0",
                    usage={"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
                )
            return Reply(
                "{Reason:‘‘A clear object.’’,Score:1,}",
                usage={"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
            )
        for word, text in s8_for.items():
            if f"Short text answer: {word}" in req.text:
                return Reply(text, usage={"prompt_tokens": 900, "completion_tokens": 80})
        return Reply("?")

    return answer


KEEP = (
    "Reason: The box marks the only cup.\nCorrectness: Pass\nAmbiguity: Unique\n"
    "FinalDecision: Keep\nAnswer: A table with a cup on it. The object on the table is the cup."
)
DISCARD = (
    "Reason: Another car is visible.\n**Correctness:** Pass\n**Ambiguity:** Ambiguous\n"
    "**FinalDecision:** Discard\n**Answer:** N/A"
)


def test_gqa_import_reads_the_layout_and_skips_bad_entries(gqa, tmp_path, capsys):
    from core.cli import main

    db = str(tmp_path / "s.sqlite")
    args = ["import", "gqa", str(gqa["questions"]), "--images", str(gqa["images"]),
            "--scene-graphs", str(gqa["graphs"]), "--db", db]  # fmt: skip
    assert main(args) == 1  # two entries skipped
    out = capsys.readouterr().out
    assert "VQA items added 5" in out and "question bad: no answer" in out and "noimg" in out
    assert main(args) == 1 and "already present 5" in capsys.readouterr().out  # idempotent
    st = open_store(db)
    items = st.run(lambda s: list(s.scalars(select(VqaItem).order_by(VqaItem.id))), write=False)
    st.close()
    assert [i.external_id for i in items] == ["q1", "q2", "q3", "q4", "q5"]
    assert items[0].boxes == [{"object_id": "7", "name": "cup", "box_xyxy": [10, 20, 25, 30]}]
    assert items[0].full_answer == "The cup is on the table." and items[1].boxes == []
    # a malformed file: one clear line, nothing changes
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["import", "gqa", str(tmp_path / "broken.json"), "--images", "x", "--db", db]) == 2
    assert "not readable JSON" in capsys.readouterr().err


def test_gqa_builder_filter_sam3_annotator_resume_and_review(gqa, tmp_path):
    from core.importers.gqa import import_gqa

    st = open_store(tmp_path / "s.sqlite")
    import_gqa(st, gqa["questions"], gqa["images"], scene_graphs=gqa["graphs"])
    s8 = {"cup": KEEP, "ball": f"I think so. {KEY}", "car": DISCARD}
    srv = ChatServer(_gqa_script(s8))
    sam = FakeSam3()
    try:
        client = ChatClient(srv.url, "gpt-5-mini", KEY, max_retries=0, concurrency=2)
        filt = ChatClient(srv.url, "gpt-4.1", KEY, max_retries=0)
        rep = annotate(st, "gqa", client, filter_client=filt, sam3=sam, user="ann")
        assert rep.verdicts == {"accepted": 1, "rejected": 3, "error": 1}
        assert rep.samples == 1 and rep.tokens["prompt_tokens"] >= 5 * 50 + 3 * 900
        assert sorted(sam.calls) == ["ball", "car", "cup", "dog"]  # q2 stopped at the filter
        s7 = [r for r in srv.requests if _role(r) == "S7"]
        assert len(s7) == 5 and all(not r.images() for r in s7)  # text only
        assert any('"question": "What is on the table?", "answer": "cup"' in r.text for r in s7)
        s8_cup = next(r for r in srv.requests if _role(r) == "S8" and "cup" in r.text)
        (img,) = s8_cup.images()
        red = _red(img)
        assert red[20, 10:25].all() and red[29, 10:25].all() and not red[25, 15]  # the SAM box
        recs = {
            r.item_key: r
            for r in st.run(lambda s: list(s.scalars(select(ReasoningAnnotation))), write=False)
        }
        by_q = {k: v for k, v in recs.items()}
        v = list(by_q.values())
        stages = sorted((r.verdict, r.stage) for r in v)
        assert stages == [
            ("accepted", "annotator"),
            ("error", "annotator"),
            ("rejected", "annotator"),
            ("rejected", "filter"),
            ("rejected", "sam3"),
        ]
        sam_rej = next(r for r in v if r.stage == "sam3")
        assert "2 masks" in sam_rej.reasons and sam_rej.details["sam3"]["masks"] == 2
        err = next(r for r in v if r.verdict == "error")
        assert KEY not in (err.error or "") and KEY not in json.dumps(err.calls)  # masked
        filt_rej = next(r for r in v if r.stage == "filter")
        assert "incomplete" in filt_rej.reasons and filt_rej.sample_id is None
        ok = next(r for r in v if r.verdict == "accepted")
        assert ok.prompt_versions["filter"] == "gqa_filter@v1 (Figure S7)"
        assert ok.prompt_versions["annotator"] == "gqa_annotator@v1 (Figure S8)"
        assert [c["model"] for c in ok.calls] == ["gpt-4.1", "gpt-5-mini"]
        assert ok.usage["annotator"]["prompt_tokens"] == 900 and ok.seconds > 0

        def samples(s):
            return {x.external_id: x for x in s.scalars(select(Sample))}

        smp = st.run(samples, write=False)
        assert set(smp) == {"gqa/q1", "gqa/q5"}  # kept, and discarded-with-a-mask for review
        kept, gone = smp["gqa/q1"], smp["gqa/q5"]
        assert kept.status == "pending" and kept.reasoning_status == "pending"
        assert kept.reasoning == "A table with a cup on it. The object on the table is the cup."
        assert kept.reasoning_source == "reasoning:gqa:gpt-5-mini"
        mask = st.run(lambda s: repo.gt_mask(s, kept.id), write=False)
        assert np.array_equal(mask, box_mask(HW, 20, 30, 10, 25))
        assert gone.status == "rejected" and gone.reasoning is None
        # a repeated command never pays twice; --resume retries only the error
        with pytest.raises(AnnotationError, match="--resume"):
            annotate(st, "gqa", client, filter_client=filt, sam3=sam)
        n = len(srv.requests)
        s8["ball"] = KEEP.replace("cup", "ball")
        rep = annotate(st, "gqa", client, filter_client=filt, sam3=sam, resume=True)
        assert rep.verdicts == {"accepted": 1} and len(srv.requests) == n + 2
        assert srv.max_in_flight <= 2  # --concurrency holds
    finally:
        srv.close()
    # review: accept / edit / reject the reasoning, with history and the verdict filter
    from core.evaldata.provenance import annotations_of, filter_by_reasoning, latest_annotation

    ids = st.run(lambda s: [x.id for x in repo.list_samples(s)], write=False)
    assert filter_by_reasoning(st, ids, "accepted") == [i for i in ids if i != gone.id]
    assert filter_by_reasoning(st, ids, "rejected") == [gone.id]
    assert latest_annotation(st, kept.id).reasoning == kept.reasoning
    assert len(annotations_of(st, kept.id)) == 1
    assert review.decide_reasoning(st, kept.id, "accept", user="rev") == "verified"
    assert filter_by_reasoning(st, ids, "reviewed") == [kept.id]
    review.edit_reasoning(st, kept.id, "Better reasoning.", user="rev", note="clearer")
    hist = [(h.field, h.after, h.user) for h in review.history(st, kept.id)]
    assert hist == [
        ("reasoning_status", "verified", "rev"),
        ("reasoning", "Better reasoning.", "rev"),
    ]
    assert review.undo(st, kept.id, user="rev")
    assert st.run(lambda s: repo.get_sample(s, kept.id).reasoning, write=False) == kept.reasoning
    with pytest.raises(review.ReviewError, match="no reasoning"):
        review.decide_reasoning(st, gone.id, "accept", user="rev")
    with pytest.raises(review.ReviewError, match="cannot be empty"):
        review.edit_reasoning(st, kept.id, "  ", user="rev")
    # re-annotation: S8 again on the sample's current mask, recorded as the reviewer's change
    from core.cli import main
    from core.evaldata.reannotate import reannotate

    srv = ChatServer(_gqa_script({"cup": DISCARD}))
    try:
        review.replace_mask(st, kept.id, box_mask(HW, 0, 10, 0, 10), user="rev")
        args = ["reasoning", "reannotate", "--db", st.url, "--sample", str(kept.id),
                "--user", "rev", "--max-retries", "0", "--endpoint", srv.url]  # fmt: skip
        assert main(args) == 0
        (s8,) = srv.requests
        assert _role(s8) == "S8" and _red(s8.images()[0])[0, 0:10].all()  # the edited mask's box
    finally:
        srv.close()
    anns = annotations_of(st, kept.id)
    assert len(anns) == 2 and anns[-1].verdict == "rejected" and anns[-1].requested_by == "rev"
    assert anns[-1].details["recheck"].startswith("S8")
    assert st.run(lambda s: repo.get_sample(s, kept.id).status, write=False) == "rejected"
    assert review.history(st, kept.id)[-1].note == "re-annotated (rejected)"
    with pytest.raises(AnnotationError, match="no reasoning annotation"):
        reannotate(st, _plain_sample(st), user="rev")
    # samples that carry a reasoning are not asked again by the answer builder
    srv = ChatServer(lambda req: Reply('{"valid": false}'))
    try:
        annotate(st, "answer", ChatClient(srv.url, "m", max_retries=0), dataset="q")
        assert len(srv.requests) == 1 and "behind the fence" in srv.requests[0].text
    finally:
        srv.close()
    st.close()


def _plain_sample(st) -> int:
    """A sample nobody annotated (imported directly)."""
    from core.importers.common import insert_sample

    def add(s):
        ds = repo.get_or_create_dataset(s, "plain")
        img = s.scalars(select(VqaItem)).first().image
        return insert_sample(s, ds, img, external_id="p", question="q?", category="other",
                             source="", status="pending", mask=None, ignore=None).id  # fmt: skip

    return st.run(add)


def test_gqa_needs_sam3():
    with pytest.raises(AnnotationError, match="SAM 3"):
        annotate(None, "gqa", ChatClient("http://127.0.0.1:9/v1", "m"))


# -- instance datasets --------------------------------------------------------------------------


@pytest.fixture
def coco(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((*HW, 3), GRAY, np.uint8))

    def poly(x0, y0, x1, y1):
        return [[x0, y0, x1, y0, x1, y1, x0, y1]]

    anns = [(1, 1, poly(5, 5, 20, 20)), (2, 1, poly(30, 5, 45, 20)), (3, 2, poly(60, 40, 75, 55))]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": HW[0], "width": HW[1]}],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": c, "iscrowd": 0, "segmentation": seg}
            for i, c, seg in anns
        ],
        "groups": [
            {"id": 9, "image_id": 1, "ann_ids": [1], "description": "What could hold coffee?"}
        ],
    }
    p = tmp_path / "instances.json"
    p.write_text(json.dumps(data))
    return p


S9 = """Here you go.

**Target ID:** [2]
**Question:** Which cup is right of the other cup?
**Relation:** left/right
**Answer:** Two cups stand on a grey surface. The target is the one on the right.

Target ID: 1
Question: Which cup is left of the other cup?
Relation: left/right
Answer: Two cups stand on a grey surface.
The target is the one on the left.

Target ID: 7
Question: A stray one?
Answer: ignored
"""


def test_spatial_and_category_builders(coco, tmp_path):
    from core.importers.coco import import_coco

    st = open_store(tmp_path / "s.sqlite")
    assert import_coco(st, coco, coco.parent / "img").ok

    def script(req) -> Reply:
        if _role(req) == "S9":
            return Reply(S9)
        return Reply(
            '```json\n{"valid": true, "answer": "There are two cups; both can hold coffee."}\n```'
        )

    srv = ChatServer(script)
    try:
        client = ChatClient(srv.url, "gpt-5-mini", None, max_retries=0)
        rep = annotate(st, "spatial", client)
        assert rep.verdicts == {"accepted": 2} and rep.samples == 2
        (s9,) = [r for r in srv.requests if _role(r) == "S9"]
        assert "Object category: cup" in s9.text and "1, 2" in s9.text
        (img,) = s9.images()
        red = _red(img)
        assert red[5, 5:20].any() and red[5, 30:45].any() and not red[40:55, 60].any()
        rep = annotate(st, "category", client)
        assert rep.verdicts == {"accepted": 1}
        s10 = [r for r in srv.requests if _role(r) == "S10"]
        assert len(s10) == 1 and "Grounding question: What could hold coffee?" in s10[0].text
        assert "Short text answer: cup" in s10[0].text
    finally:
        srv.close()

    def read(s):
        out = {}
        for x in s.scalars(select(Sample)):
            out[x.external_id] = (x.question, x.reasoning, x.category, repo.gt_mask(s, x.id))
        return out

    got = st.run(read, write=False)
    sp1, sp2 = "spatial_reasoning/image1/cup/ann1", "spatial_reasoning/image1/cup/ann2"
    assert set(got) == {sp1, sp2, "category/group9"}
    q, reasoning, cat, m = got[sp2]
    assert q == "Which cup is right of the other cup?" and cat == "spatial"
    assert reasoning.startswith("Two cups stand") and m[10, 35] and not m[10, 10]
    assert got[sp1][1].endswith("The target is the one on the left.")
    q, reasoning, _, m = got["category/group9"]
    assert (
        q == "What could hold coffee?" and reasoning == "There are two cups; both can hold coffee."
    )
    # every cup of the image, though the group lists one (App. D: all instances of the category)
    assert m[10, 10] and m[10, 35] and not m[45, 65] and int(m.sum()) == 2 * 15 * 15
    (img,) = s10[0].images()
    assert _red(img)[5, 5:20].any() and _red(img)[5, 30:45].any()  # a red box on each
    recs = st.run(lambda s: list(s.scalars(select(ReasoningAnnotation))), write=False)
    spatial = [r for r in recs if r.builder == "spatial"]
    assert all(r.details.get("unknown_labels") == [7] for r in spatial)
    st.close()


# -- samples that have an answer ----------------------------------------------------------------


def test_answer_builder_writes_reasoning_for_known_masks(filled_sqlite):
    st = filled_sqlite

    def script(req) -> Reply:
        if "Which cube?" in req.text:
            return Reply('{"valid": false}')
        if "Left one?" in req.text:
            return Reply("no json here")
        return Reply('{"valid": "true", "answer": "The scene shows shapes. It is the one."}')

    srv = ChatServer(script)
    try:
        client = ChatClient(srv.url, "m", None, max_retries=0)
        rep = annotate(st, "answer", client, user="ann")
        # 4 samples: one empty mask (skipped), one invalid, one garbage, one written
        assert rep.verdicts == {"accepted": 1, "rejected": 1, "error": 1, "skipped": 1}
        (s10,) = [r for r in srv.requests if "Hidden animal?" in r.text]
        assert s10.system.startswith("You are a Grounding Dataset Annotator.")
        assert _red(s10.images()[0])[0, 0:10].all()  # the mask's box, drawn in red
    finally:
        srv.close()

    def read(s):
        return {
            x.question: (x.reasoning, x.reasoning_status, x.status)
            for x in s.scalars(select(Sample))
        }

    got = st.run(read, write=False)
    assert got["Hidden animal?"] == (
        "The scene shows shapes. It is the one.",
        "pending",
        "verified",
    )
    assert got["Which cube?"][0] is None and got["Left one?"][0] is None
    hidden = st.run(
        lambda s: s.scalar(select(Sample.id).where(Sample.question == "Hidden animal?")),
        write=False,
    )
    hist = review.history(st, hidden)
    assert [h.field for h in hist] == ["reasoning", "reasoning_status"] and hist[0].user == "ann"


# -- parsers ------------------------------------------------------------------------------------


def test_parsers_known_answers_and_garbage():
    f = parse_filter("Reason: fine.\nScore: 1")
    assert f.usable and f.reason == "fine."
    assert not parse_filter('{Reason:"no.",Score:0,}').usable
    with pytest.raises(AnswerError, match="Score"):
        parse_filter("I like it")
    a = parse_annotator(KEEP)
    assert a.keep and a.reasoning.startswith("A table")
    assert not parse_annotator(DISCARD).keep
    contradictory = KEEP.replace("Ambiguity: Unique", "Ambiguity: Ambiguous")
    assert not parse_annotator(contradictory).keep  # the prompt's own rule decides
    with pytest.raises(AnswerError, match="FinalDecision"):
        parse_annotator("Reason: x\nAnswer: y")
    with pytest.raises(AnswerError, match="no answer"):
        parse_annotator(
            KEEP.replace(
                "Answer: A table with a cup on it. The object on the table is the cup.",
                "Answer: N/A",
            )
        )
    assert parse_category_annotator('{"valid": false}').keep is False
    with pytest.raises(AnswerError):
        parse_category_annotator('{"valid": "maybe"}')
    with pytest.raises(AnswerError):
        parse_category_annotator("")
    qs = parse_spatial_reasoning(S9)
    assert [q.target_id for q in qs] == [2, 1, 7] and qs[0].relation == "left/right"
    with pytest.raises(AnswerError, match="Target ID"):
        parse_spatial_reasoning("Question: where?")
