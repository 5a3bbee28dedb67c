"""Prompts as data, answer parsers, agreement statistics and the 0002 migration."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.benchmark.agreement import cohen_kappa
from core.benchmark.answers import (
    AnswerError,
    json_object,
    parse_multi_step_generator,
    parse_spatial_generator,
    parse_verifier,
)
from core.benchmark.prompts import (
    PROMPTS_DIR,
    PromptError,
    load_prompt,
    parse_prompt_file,
)
from core.importers.coco import decode_segmentation

PAPER = Path(os.environ.get("REA2SEG_PAPER", "/work/shared/paper/rea2seg-paper.md"))


@pytest.mark.parametrize(
    "name,figure",
    [
        ("geometric_verifier", "S2"),
        ("spatial_generator", "S3"),
        ("spatial_verifier", "S4"),
        ("multi_step_generator", "S5"),
    ],
)
def test_paper_prompts_are_quoted_exactly(name, figure):
    p = load_prompt(name)
    assert (
        p.figure == figure
        and "not from the paper" not in p.source
        and p.tag == f"{name}@v1 (Figure {figure})"
    )
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER} (set REA2SEG_PAPER)")
    paper = PAPER.read_text(encoding="utf-8")
    start = paper.index(p.text.splitlines()[0])
    end = paper.index(f"\n\nFigure {figure}:", start)
    assert paper[start:end] == p.text


def test_fixed_questions_are_the_papers():
    assert (
        load_prompt("camouflage_question").text
        == "Could you segment the animal or person in the image?"
    )
    assert (
        load_prompt("thin_object_question").text
        == "Which object does not belong in the image and was added later?"
    )
    if PAPER.exists():
        paper = PAPER.read_text(encoding="utf-8")
        for n in ("camouflage_question", "thin_object_question"):
            assert f"“{load_prompt(n).text}”" in paper


def test_every_prompt_file_parses_and_says_where_it_comes_from(tmp_path):
    prompts = [parse_prompt_file(p) for p in sorted(PROMPTS_DIR.glob("*.v*.txt"))]
    assert len(prompts) == len(list(PROMPTS_DIR.glob("*.txt"))) >= 11
    for p in prompts:
        assert p.text.strip() and ("not from the paper" in p.source or "quoted exactly" in p.source)
    (tmp_path / "x.v1.txt").write_text("# prompt: x\n# version: v1\nno separator\n")
    with pytest.raises(PromptError):
        parse_prompt_file(tmp_path / "x.v1.txt")
    (tmp_path / "x.v2.txt").write_text("# prompt: x\n# version: v2\n---\nsecond\n")
    assert load_prompt("x", directory=tmp_path).text == "second"
    with pytest.raises(PromptError):
        load_prompt("nope", directory=tmp_path)


def test_generator_answers():
    assert (
        parse_spatial_generator(
            '```json\n{"phrase": "the cup left of the plate", "relation": "left of"}\n```'
        ).expression
        == "the cup left of the plate"
    )
    assert parse_spatial_generator('{"phrase": "‘‘NA’’", "relation": "NA"}').expression is None
    with pytest.raises(AnswerError):
        parse_spatial_generator('{"relation": "x"}')
    text = (
        "{\nDescription: two dolls on a bench\nDiscriminative condition: fewer letters\n"
        "Final multi-step referring expression: the doll with fewer letters on its chest\n}"
    )
    a = parse_multi_step_generator(text)
    assert (
        a.expression == "the doll with fewer letters on its chest"
        and a.fields["condition"] == "fewer letters"
    )
    skip = "{\nDescription:‘‘NA’’\nDiscriminative condition:‘‘NA’’\nFinal multi-step referring expression:‘‘NA’’\n}"
    assert parse_multi_step_generator(skip).expression is None
    assert (
        parse_multi_step_generator('{"Final multi-step referring expression": "x y"}').expression
        == "x y"
    )
    with pytest.raises(AnswerError):
        parse_multi_step_generator("I cannot help with that.")


def test_verifier_answers():
    ok = parse_verifier(
        '{"thinking_process": "fine", "incorrect": 0, "ambiguous": "0", "trivial": 0, "question": "Which?"}'
    )
    assert ok.accepted and ok.question == "Which?" and ok.reasons == "fine"
    bad = parse_verifier('{"incorrect": 1, "ambiguous": "NA", "trivial": "NA", "question": "NA"}')
    assert not bad.accepted and bad.reasons == "incorrect=1"
    geo = parse_verifier(
        '{"ambiguous": 0, "shortcut": 1, "question": "NA"}', flags=("ambiguous", "shortcut")
    )
    assert not geo.accepted and geo.reasons == "shortcut=1"
    for text in (
        '{"incorrect": 0}',
        '{"incorrect": "maybe", "ambiguous": 0, "trivial": 0}',
        "no json",
    ):
        with pytest.raises(AnswerError):
            parse_verifier(text)


_flag = st.sampled_from([0, 1, "0", "1", "NA"])


@settings(max_examples=60, deadline=None)
@given(
    inc=_flag,
    amb=_flag,
    tri=_flag,
    q=st.one_of(st.just("NA"), st.text(min_size=1, max_size=30)),
    prose=st.text(alphabet="abc .:", max_size=20),
)
def test_verifier_accepts_exactly_when_all_flags_are_zero(inc, amb, tri, q, prose):
    text = (
        prose
        + " "
        + json.dumps({"incorrect": inc, "ambiguous": amb, "trivial": tri, "question": q})
        + " "
        + prose
    )
    a = parse_verifier(text)
    clean = q.strip().strip(",").strip().strip("\"'‘’“”`").strip()
    want = all(str(v) == "0" for v in (inc, amb, tri)) and clean.upper() not in ("NA", "N/A", "")
    assert a.accepted == want
    assert json_object(text)["incorrect"] == inc


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), data=st.data())
def test_uncompressed_rle_matches_column_major_runs(h, w, data):
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    mask = np.array(bits, bool).reshape(w, h).T  # column-major, as COCO counts run
    flat = mask.T.reshape(-1)
    counts = [
        len(m.group()) for m in re.finditer(r"0+|1+", "".join("1" if b else "0" for b in flat))
    ]
    if flat[0]:
        counts = [0, *counts]
    assert np.array_equal(decode_segmentation({"size": [h, w], "counts": counts}, (h, w)), mask)


def test_cohen_kappa_known_answers():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 → po 0.7, pe 0.5, kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["y", "n"], ["y", "n"]) == pytest.approx(1.0)
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None
    assert cohen_kappa([], []) is None


def test_migration_0002_matches_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store import open_store
    from core.store.models import Base

    st_ = open_store(tmp_path / "m.sqlite")
    with st_.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
