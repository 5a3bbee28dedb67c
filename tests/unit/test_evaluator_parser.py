"""The evaluator output parser: a table of real-looking and hostile outputs, and properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.evaluator.parser import parse_scores, parse_value
from core.evaluator.prompt import canonical_answer

N = None
# (text, n, expected scores, expected substring of the error or None for a clean parse)
TABLE = [
    # canonical and near-canonical
    ("Mask 1: 0.72\nMask 2: 0.10\nMask 3: 0.55", 3, [0.72, 0.10, 0.55], None),
    ("mask 1: .5\nMASK 2: 1", 2, [0.5, 1.0], None),
    ("Mask 1: 0\nMask 2: 1.0", 2, [0.0, 1.0], None),
    ("Mask 2: 0.4\nMask 1: 0.6", 2, [0.6, 0.4], None),  # order of lines does not matter
    ("- **Mask #1** - IoU: 0.7\n- **Mask 2**: 45%", 2, [0.7, 0.45], None),
    ("1. Mask 1 (IoU) = 0.31\n2. Mask 2 (IoU) = 0.62", 2, [0.31, 0.62], None),
    ("Mask 1: 0.8 because it covers the whole dog.\nMask 2: 0.1 (background)", 2, [0.8, 0.1], None),
    ("Candidate 1: 0.25, Candidate 2: 0.75", 2, [0.25, 0.75], None),
    ("Mask 1: 1e-1", 1, [0.1], None),
    # chain of thought, then the answer
    (
        "The question asks for the left cube. Mask 2 covers it; mask 1 covers 3 cubes.\nAnswer:\nMask 1: 0.1\nMask 2: 0.9",
        2,
        [0.1, 0.9],
        None,
    ),
    ("Mask 1: 0.3 at first glance.\nFinal answer:\nMask 1: 0.6\nMask 2: 0.2", 2, [0.6, 0.2], None),
    (
        "<think>mask 1 is the dog, 0.9 maybe</think>\nMask 1: 0.8\nMask 2: 0.05",
        2,
        [0.8, 0.05],
        None,
    ),
    ("Reasoning about it.\nAnswer:\nI am unsure.\n", 1, [N], "no scores found"),
    # percentages
    ("mask_1 = 72%\nmask_2 = 5%", 2, [0.72, 0.05], None),
    ("Mask 1: 80\nMask 2: 20", 2, [0.8, 0.2], None),
    ("Mask 1: 80 percent\nMask 2: 7 %", 2, [0.8, 0.07], None),
    # JSON
    ('{"mask_1": 0.7, "mask_2": 0.2}', 2, [0.7, 0.2], None),
    ('```json\n{"1": 0.25, "2": "40%"}\n```', 2, [0.25, 0.4], None),
    ("Scores: [0.1, 0.5, 0.9]", 3, [0.1, 0.5, 0.9], None),
    ('[{"mask": 2, "iou": 0.4}, {"mask": 1, "iou": 0.6}]', 2, [0.6, 0.4], None),
    (
        '{"reasoning": "mask 2 is the dog", "scores": {"Mask 1": 0.05, "Mask 2": 0.95}}',
        2,
        [0.05, 0.95],
        None,
    ),
    ('{"scores": [0.3, true]}', 2, [N, N], "no scores found"),
    # other phrasings
    ("IoU of mask 2 is 0.5. Mask 1: 0.25", 2, [0.25, 0.5], None),
    (
        "Mask 3 looks right, about 0.8. Mask 1 is wrong, 0.1. Mask 2 is partly right, 0.4.",
        3,
        [0.1, 0.4, 0.8],
        None,
    ),
    ("Scores: 0.1, 0.5, 0.9", 3, [0.1, 0.5, 0.9], None),
    ("0.9 0.2", 2, [0.9, 0.2], None),
    # repeated entries: the last wins, which is not an error
    ("Mask 1: 0.3\nMask 1: 0.6\nMask 2: 0.1", 2, [0.6, 0.1], None),
    # missing, extra, out of range
    ("Mask 1: 0.3", 3, [0.3, N, N], "no score for masks [2, 3]"),
    ("Mask 1: 0.3\nMask 2: 0.4\nMask 7: 0.9", 2, [0.3, 0.4], "outside 1..2"),
    ("Mask 1: 250\nMask 2: 0.4", 2, [N, 0.4], "unusable values"),
    ("Mask 1: -0.2", 1, [N], "unusable"),
    ("Mask 1: nan\nMask 2: inf", 2, [N, N], "no scores found"),
    ("[0.1, 0.5, 0.9]", 2, [0.1, 0.5], "outside 1..2"),
    # not scores at all
    ("Mask 2 covers 3 people and mask 1 is empty.", 2, [N, N], "no scores found"),
    ("Mask 1, 2 and 3 are all wrong.", 3, [N, N, N], "no scores found"),
    ("mask 1 and mask 2", 2, [N, N], "no scores found"),
    ("I cannot see any masks.", 2, [N, N], "no scores found"),
    ("", 1, [N], "no scores found"),
    ("gray gray gray cube left", 5, [N] * 5, "no scores found"),
    ("{{{{[[[[", 2, [N, N], "no scores found"),
    ("\x00\ufffd Mask \u2028 1 : ∞", 1, [N], "no scores found"),
]


@pytest.mark.parametrize("text, n, scores, err", TABLE)
def test_parser_table(text, n, scores, err):
    r = parse_scores(text, n)
    assert [s is None for s in r.scores] == [s is None for s in scores], r
    assert [s for s in r.scores if s is not None] == pytest.approx(
        [s for s in scores if s is not None], abs=1e-12
    )
    if err is None:
        assert r.error is None, r
    else:
        assert r.error is not None and err in r.error, r


def test_parser_keeps_the_reasoning():
    r = parse_scores("Step 1: the tall red one.\nAnswer:\nMask 1: 0.5", 1)
    assert r.cot == "Step 1: the tall red one." and r.scores == [0.5]
    r = parse_scores("The dog is on the left.\nMask 1: 0.3\nMask 2: 0.4", 2)
    assert r.cot == "The dog is on the left." and r.scores == [0.3, 0.4]
    r = parse_scores("Mask 1: 0.3\nMask 1: 0.5", 1)
    assert r.cot is None and r.error is None and any("more than once" in x for x in r.notes)
    assert parse_scores('{"reasoning": "mask 2", "scores": [0.1]}', 1).cot == "mask 2"


def test_parser_odd_arguments():
    assert parse_scores("Mask 1: 0.5", 0).scores == [] and parse_scores("Mask 1: 0.5", 0).error
    assert parse_scores(None, 1).scores == [None]  # type: ignore[arg-type]
    assert len(parse_scores(b"\xff Mask 1", 1).scores) == 1  # type: ignore[arg-type]
    assert parse_scores("Mask 1: 0.5", "x").error.startswith("number of masks")  # type: ignore[arg-type]


def test_parse_value_rules():
    assert parse_value("0.5") == 0.5 and parse_value("50") == 0.5 and parse_value("50", "%") == 0.5
    assert (
        parse_value("1") == 1.0 and parse_value("100") == 1.0 and parse_value("0.5", "%") == 0.005
    )
    assert parse_value("101") is None and parse_value("-1") is None and parse_value("nan") is None
    assert parse_value("x") is None and parse_value("1e999") is None


# Answers built to make a careless parser slow (bench/deadlines.py times each one).
HOSTILE_TEXTS = [
    "[]" * 30000,
    '{"a": [' * 20000,
    "1 " * 100000,
    "mask 1 " * 30000,
    "Mask 1: " + "-" * 50000,
    "mask" + " " * 100000 + "1",
    "Mask 1: 0.5 " * 40000,
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_parser_survives_hostile_text(text):
    # how long each text takes against its budget: bench/deadlines.py
    r = parse_scores(text, 5)
    assert len(r.scores) == 5 and r.error


# -- properties -------------------------------------------------------------------------------

TOKENS = [
    "Mask",
    "mask_",
    "Candidate ",
    " ",
    "\n",
    ":",
    "=",
    "%",
    "0.",
    "1",
    "2",
    "5",
    "72",
    "100",
    "-",
    "{",
    "}",
    "[",
    "]",
    '"',
    ",",
    "Answer:",
    "<think>",
    "</think>",
    "IoU of ",
    " is ",
    "nan",
    "e9",
    ".",
    "**",
]
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=60).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(texts, st.integers(-2, 8))
def test_parser_never_raises_and_never_invents_a_score(text, n):
    r = parse_scores(text, n)
    assert len(r.scores) == max(n, 0)
    assert all(s is None or (isinstance(s, float) and 0.0 <= s <= 1.0) for s in r.scores)
    if n > 0 and any(s is None for s in r.scores):
        assert r.error  # a missing score is always explained
    if n > 0 and not any(ch.isdigit() for ch in text):
        assert all(s is None for s in r.scores)  # no digits, no scores: nothing made up


scores_st = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(scores_st, st.text(max_size=80))
def test_canonical_answer_round_trips_exactly(scores, reasoning):
    r = parse_scores(canonical_answer(scores, reasoning), len(scores))
    assert r.error is None, r
    assert r.scores == [float(f"{s:.2f}") for s in scores]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_canonical_lines_in_any_order_parse_exactly(hundredths, rnd):
    lines = [f"Mask {i + 1}: {v / 100:.2f}" for i, v in enumerate(hundredths)]
    rnd.shuffle(lines)
    r = parse_scores("\n".join(lines), len(hundredths))
    assert r.error is None and r.scores == [float(f"{v / 100:.2f}") for v in hundredths]


@settings(max_examples=100, deadline=None)
@given(scores_st)
def test_json_object_round_trips_exactly(scores):
    text = json.dumps({f"mask_{i + 1}": s for i, s in enumerate(scores)})
    r = parse_scores(text, len(scores))
    assert r.error is None and r.scores == scores
