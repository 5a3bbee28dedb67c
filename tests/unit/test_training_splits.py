"""The training seed range is disjoint from the evaluation seeds, and trainers refuse others."""

from __future__ import annotations

import json

import pytest

from core.training.splits import (
    DEFAULT_TRAINING_SEED,
    EVALUATION_SEEDS,
    TRAINING_SEEDS,
    check_training_seed,
    prepare_training_split,
    read_training_split,
)


def test_ranges_are_disjoint_and_the_default_evaluation_seed_is_not_for_training():
    assert not set(
        range(
            max(EVALUATION_SEEDS.start, TRAINING_SEEDS.start),
            min(EVALUATION_SEEDS.stop, TRAINING_SEEDS.stop),
        )
    )
    assert 0 in EVALUATION_SEEDS and DEFAULT_TRAINING_SEED in TRAINING_SEEDS
    for seed in (0, 1, 123, EVALUATION_SEEDS.stop - 1):
        with pytest.raises(ValueError, match="evaluation seed"):
            check_training_seed(seed)
    with pytest.raises(ValueError, match="outside"):
        check_training_seed(TRAINING_SEEDS.stop)
    assert check_training_seed(DEFAULT_TRAINING_SEED + 5) == DEFAULT_TRAINING_SEED + 5


def test_prepare_marks_the_split_and_refuses_evaluation_seeds(tmp_path):
    with pytest.raises(ValueError, match="evaluation seed"):
        prepare_training_split(tmp_path / "bad", 2, seed=0)
    assert not (tmp_path / "bad").exists()
    info = prepare_training_split(tmp_path / "train", 3, size_wh=(128, 96))
    assert info["seed"] == DEFAULT_TRAINING_SEED and info["purpose"] == "training"
    assert read_training_split(tmp_path / "train")["scenes"] >= 1
    assert list((tmp_path / "train" / "scenes").glob("*.json"))
    # an unmarked folder or one claiming an evaluation seed is refused
    with pytest.raises(ValueError, match="not a training split"):
        read_training_split(tmp_path)
    marker = tmp_path / "train" / "split.json"
    marker.write_text(json.dumps({**info, "seed": 7}))
    with pytest.raises(ValueError, match="evaluation seed"):
        read_training_split(tmp_path / "train")
