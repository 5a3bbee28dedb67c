"""Generator training samples from the geometric training split (no model involved)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from core.training.generator_data import (
    GROUNDING_KINDS,
    SceneBank,
    cell_of,
    make_sample,
    parse_mix,
    split_vocabulary,
    text_sample,
)
from core.training.generator_settings import GeneratorSettings


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from core.training.splits import prepare_training_split

    d = tmp_path_factory.mktemp("split")
    prepare_training_split(d, 12, size_wh=(128, 96))
    return SceneBank(d)


def test_mix_parsing_and_the_paper_default():
    mix = GeneratorSettings().mix_probabilities()
    assert list(mix) == ["semantic", "referring", "reasoning", "vqa"]
    assert mix["referring"] == pytest.approx(36 / 48) and mix["vqa"] == pytest.approx(1 / 48)
    assert list(GeneratorSettings(stage="grounding").mix_probabilities()) == list(GROUNDING_KINDS)
    for bad in ("1:2:3", "1:-1:1:1", "0:0:0:0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    with pytest.raises(ValueError):
        GeneratorSettings(mix="1:2")


def test_samples_follow_the_mix_and_are_a_function_of_the_index(bank):
    mix = parse_mix("1:1:1:1")
    kinds = Counter()
    for i in range(80):
        s = make_sample(bank, i, mix, 5, "[SEG].")
        kinds[s.kind] += 1
        if s.kind == "vqa":
            assert s.mask is None and "[SEG]" not in s.answer
        else:
            assert s.answer == "[SEG]." and s.mask.any() and s.mask.shape == s.image.shape[:2]
            assert s.question.endswith("Please output segmentation mask.")
    assert set(kinds) == {"semantic", "referring", "reasoning", "vqa"}
    a, b = make_sample(bank, 7, mix, 5, "[SEG]."), make_sample(bank, 7, mix, 5, "[SEG].")
    assert a.question == b.question and np.array_equal(a.mask, b.mask)
    only = parse_mix("0:1:0:0")
    assert {make_sample(bank, i, only, 5, "[SEG].").kind for i in range(10)} == {"referring"}


def test_reasoning_samples_are_the_checked_questions(bank):
    mix = parse_mix("0:0:1:0")
    s = make_sample(bank, 3, mix, 0, "[SEG].")
    questions = [q["question"] for i in range(len(bank)) for q in bank.questions(i)]
    assert any(s.question.startswith(q) for q in questions)


def test_text_answers_come_from_the_scene_graph(bank):
    scene, _, masks = bank.get(0)
    rng = np.random.default_rng(0)
    q, a = text_sample("caption", scene, masks, rng)
    assert a.count(",") == sum(m.any() for m in masks.values()) - 1
    q, a = text_sample("count", scene, masks, rng)
    shape = q.split()[2][:-1]
    from core.training.generator_data import NUMBERS

    assert a == NUMBERS[sum(o.shape == shape and masks[o.id].any() for o in scene.objects)]
    q, a = text_sample("where_is", scene, masks, rng)
    assert len(a.split()) == 2


def test_cell_of_a_mask():
    m = np.zeros((30, 30), bool)
    m[0:5, 25:30] = True
    assert cell_of(m) == ("top", "right")
    m[:] = False
    m[14:16, 14:16] = True
    assert cell_of(m) == ("middle", "center")


def test_vocabulary_covers_every_word_a_sample_uses(bank):
    import re

    words = set(split_vocabulary(bank))
    settings = {"semantic": 1, "referring": 1, "reasoning": 1, "vqa": 1}
    mix = parse_mix([settings[k] for k in settings])
    grounding = parse_mix("1:1:1:1:1", GROUNDING_KINDS)
    missing = set()
    for i in range(60):
        for m in (mix, grounding):
            s = make_sample(bank, i, m, 1, "[SEG].")
            text = (s.question + " " + s.answer).replace("[SEG]", " ")
            missing |= set(re.findall(r"\w+|[^\w\s]+", text)) - words
    assert not missing, missing
