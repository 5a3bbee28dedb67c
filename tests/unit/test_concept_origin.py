"""The concept origin (not from the paper, off by default): SAM 3's instances of a phrase and
their union join the candidates, recorded in the trace; on tiny SAM with a hand-made prompt
model, a scripted SAM 3 stand-in and a tiny random-init SAM 3."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.pipeline.concept import answer_phrase, concept_phrase, question_phrase
from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import run_stage1
from core.trace import PipelineTrace
from tests.unit.test_analytics_rerun import HW, PeakedPromptModel

TWO = [np.zeros(HW, bool), np.zeros(HW, bool)]
TWO[0][5:15, 5:15] = True
TWO[1][30:50, 40:70] = True


class Answering(PeakedPromptModel):
    """The hand-made prompt model with a chosen answer text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def encode(self, image_rgb, question, layers=None):
        return dataclasses.replace(
            super().encode(image_rgb, question, layers), generated_text=self.text
        )


class ScriptedSam3:
    """Stands in for SAM 3: records the phrases it was asked and returns two fixed instances."""

    name = "sam3:scripted"

    def __init__(self) -> None:
        self.phrases: list[str] = []

    def segment(self, image_rgb, text):
        self.phrases.append(text)
        return [m.copy() for m in TWO], [0.9, 0.6]


@pytest.fixture(scope="module")
def sam():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)


def _image() -> np.ndarray:
    return (np.random.default_rng(0).random((*HW, 3)) * 255).astype(np.uint8)


def _settings(**kw) -> Stage1Settings:
    return Stage1Settings.for_backbone(
        "sam", layers=None, pred_iou_thresh=0.0, stability_score_thresh=0.0, k1=8, k2=4, **kw
    )


def test_phrases_known_answers():
    assert answer_phrase("Sure, it is [SEG].") == ""
    assert answer_phrase("Sure, the answer is the red cup [SEG].") == "the red cup"
    assert question_phrase("Which cup is closest to the plate?") == "cup"
    assert question_phrase("Please segment the red car in this image.") == "red car"
    assert question_phrase("What is the thing used to cut bread?") == "cut bread"
    assert concept_phrase("answer", "Sure, it is [SEG].", "Which cup is left?") == (
        "cup",
        "question",
    )
    assert concept_phrase("answer", "a knife [SEG]", "What cuts bread?") == ("a knife", "answer")
    assert concept_phrase("question", "a knife", "Which dog is asleep?") == ("dog", "question")
    with pytest.raises(ValueError, match="concept_phrase"):
        Stage1Settings(concept_phrase="caption")


@pytest.mark.slow
def test_off_by_default_and_on_adds_instances_and_union_with_a_trace_record(sam):
    seg = ScriptedSam3()
    base = run_stage1(
        Answering("a knife [SEG]"), sam, _image(), "What cuts?", _settings(), concept=seg
    )
    assert seg.phrases == [] and base.concept is None
    assert {c.origin for c in base.candidates} <= {"multimask", "semantic", "amg"}

    tr = run_stage1(
        Answering("a knife [SEG]"),
        sam,
        _image(),
        "What cuts?",
        _settings(concept_origin=True),
        concept=seg,
    )
    assert seg.phrases == ["a knife"]
    concept = [c for c in tr.candidates if c.origin == "concept"]
    assert len(concept) == 3 and tr.candidates[-3:] == concept  # after the paper's origins
    assert np.array_equal(concept[0].mask, TWO[0]) and np.array_equal(concept[1].mask, TWO[1])
    assert np.array_equal(concept[2].mask, TWO[0] | TWO[1]) and concept[2].sam_score == 0.9
    assert [c.origin_rank for c in concept] == [0, 1, 2]
    # the paper's candidates are those of the run without the concept origin
    assert [c.origin for c in tr.candidates[:-3]] == [c.origin for c in base.candidates]
    assert tr.concept == {
        "phrase": "a knife",
        "source": "answer",
        "model": "sam3:scripted",
        "scores": [0.9, 0.6],
        "union": True,
    }
    assert "concept" in tr.timings and tr.settings["concept_origin"] is True
    back = PipelineTrace.from_json(tr.to_json())
    assert (
        back.concept == tr.concept and [c.origin for c in back.candidates][-3:] == ["concept"] * 3
    )


@pytest.mark.slow
def test_concept_can_be_disabled_and_needs_a_model(sam):
    seg = ScriptedSam3()
    tr = run_stage1(
        Answering(""),
        sam,
        _image(),
        "Which cup is left?",
        _settings(concept_origin=True, disabled_origins=("concept",)),
        concept=seg,
    )
    assert seg.phrases == [] and tr.concept is None
    with pytest.raises(ValueError, match="concept_model"):
        run_stage1(Answering(""), sam, _image(), "q", _settings(concept_origin=True))


@pytest.mark.slow
def test_tiny_sam3_checkpoint_as_the_concept_model(sam, tmp_path):
    from core.models.sam3_text import build_tiny_sam3

    path = build_tiny_sam3(tmp_path / "sam3")
    s = _settings(
        concept_origin=True,
        concept_model=str(path),
        concept_phrase="question",
        concept_threshold=0.0,
        concept_max=3,
    )
    tr = run_stage1(Answering("[SEG]"), sam, _image(), "Which cup is left?", s)
    n = len(tr.concept["scores"])
    concept = [c for c in tr.candidates if c.origin == "concept"]
    assert tr.concept["phrase"] == "cup" and tr.concept["model"] == "sam3:sam3"
    assert n == 3 and len(concept) == 4 and tr.concept["union"]  # random weights: all kept
    assert np.array_equal(concept[3].mask, concept[0].mask | concept[1].mask | concept[2].mask)
    assert all(c.mask.shape == HW for c in concept)


@pytest.mark.slow
def test_analytics_say_whether_the_concept_origin_raises_the_oracle(sam):
    from core.analytics import failures
    from core.analytics.records import sample_record

    gt = TWO[0] | TWO[1]  # the union of SAM 3's two instances is the ground truth
    s = _settings(concept_origin=True)
    full = sample_record(
        run_stage1(Answering("cups"), sam, _image(), "q", s, concept=ScriptedSam3()),
        gt,
        None,
        "other",
    )
    assert failures.best_origin(full) == "concept" and "concept" in failures.origin_names([full])
    off = Stage1Settings.from_dict({**s.to_dict(), "disabled_origins": ["concept"]})
    rerun = sample_record(
        run_stage1(Answering("cups"), sam, _image(), "q", off, concept=ScriptedSam3()),
        gt,
        None,
        "other",
    )
    stored = failures.without_origin(full, "concept")
    assert stored["oracle"] == rerun.counts["oracle"] and stored["top1"] == rerun.counts["top1"]
    assert full.iou("oracle") == pytest.approx(1.0) and rerun.iou("oracle") < 0.9  # raised


@pytest.mark.slow
def test_cli_run_with_the_concept_origin_records_it(tmp_path, capsys):
    import json

    from core.cli import main
    from core.demo import DEMO_SGDR
    from core.models.sam3_text import build_tiny_sam3

    sam3 = build_tiny_sam3(tmp_path / "sam3")
    db = str(tmp_path / "d.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0
    settings = {
        "concept_origin": True,
        "concept_model": str(sam3),
        "concept_phrase": "question",
        "concept_threshold": 0.0,
    }
    run = ["run", "--db", db, "--preset", "tiny-random", "--limit", "1"]
    assert main([*run, "--settings", json.dumps(settings)]) == 0
    capsys.readouterr()
    assert main(["trace", "--db", db, "--sample", "1", "--json"]) == 0
    tr = json.loads(capsys.readouterr().out)
    assert tr["settings"]["concept_origin"] is True and tr["concept"]["model"] == "sam3:sam3"
    assert tr["concept"]["source"] == "question" and "concept" in tr["timings"]
    n = len(tr["concept"]["scores"])
    origins = [c["origin"] for c in tr["candidates"]]
    assert n >= 2 and origins.count("concept") == n + 1


@pytest.mark.slow
def test_retune_runs_the_concept_origin_once_and_leaves_out_disabled_origins(sam):
    """What-if equals a full stage 1 with the concept origin and with origins left out; SAM 3
    runs once per concept setting, not on every re-tune."""
    from core.pipeline.tune import prepare_stage1, retune
    from tests.unit.test_pipeline_tune import same_trace

    seg, img, q = ScriptedSam3(), _image(), "Which knife cuts?"
    s = _settings(concept_origin=True)
    cache = prepare_stage1(Answering("a knife [SEG]"), sam, img, q, s)
    cache.use_seed_bank = False  # each seed set decoded whole: equal to the last bit
    changes = [
        {},
        {"k2": 3},
        {"tau": 0.4},
        {"disabled_origins": ("amg",)},
        {"disabled_origins": ("multimask", "concept")},
        {"concept_phrase": "question"},
    ]
    tuned = [retune(cache, dataclasses.replace(s, **ch), concept=seg) for ch in changes]
    assert seg.phrases == ["a knife", "knife cuts"]  # once per phrase setting
    for ch, tr in zip(changes, tuned, strict=True):
        full = run_stage1(
            Answering("a knife [SEG]"), sam, img, q, dataclasses.replace(s, **ch), concept=seg
        )
        assert same_trace(tr, full), ch
    assert "amg" not in {c.origin for c in tuned[3].candidates}
    assert {c.origin for c in tuned[4].candidates} == {"semantic", "amg"}
    assert tuned[4].concept is None and tuned[0].concept["phrase"] == "a knife"
