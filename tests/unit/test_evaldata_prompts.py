"""The App. D prompts (Figures S7–S10) are the paper's text, quoted exactly (a lone typesetting
line of the paper, named in the file's header, left out)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.benchmark.prompts import load_prompt
from core.evaldata.build import PROMPT_NAMES, builder_prompts

PAPER = Path(os.environ.get("REA2SEG_PAPER", "/work/shared/paper/rea2seg-paper.md"))
TYPESETTING = ('"""', "\\resizebox{\\textwidth}{!}{%")


@pytest.mark.parametrize(
    "name, figure",
    [
        ("gqa_filter", "S7"),
        ("gqa_annotator", "S8"),
        ("spatial_reasoning_generator", "S9"),
        ("category_annotator", "S10"),
    ],
)
def test_app_d_prompts_are_quoted_exactly(name, figure):
    p = load_prompt(name)
    assert (
        p.figure == figure and "quoted exactly" in p.source and p.tag.endswith(f"(Figure {figure})")
    )
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not at {PAPER} (set REA2SEG_PAPER)")
    paper = PAPER.read_text(encoding="utf-8")
    start = paper.index(p.text.splitlines()[0])
    end = paper.index(f"\n\nFigure {figure}:", start)
    quoted = paper[start:end].split("\n\n")
    dropped = [q for q in quoted if q.strip() in TYPESETTING]
    assert "\n\n".join(q for q in quoted if q.strip() not in TYPESETTING) == p.text
    for line in dropped:  # what was left out is said in the header
        assert line.strip() in p.source


def test_every_builder_has_its_prompts_and_user_turns_say_where_they_come_from():
    for builder in PROMPT_NAMES:
        prompts = builder_prompts(builder)
        assert {"annotator", "annotator_user"} <= set(prompts)
        for role, p in prompts.items():
            if role.endswith("_user") or builder == "answer":
                assert "not from the paper" in p.source
    user = load_prompt("gqa_filter_user").format(question="Q?", answer="a", full_answer="A a.")
    assert user == '"question": "Q?", "answer": "a", "full_answer": "A a."'
