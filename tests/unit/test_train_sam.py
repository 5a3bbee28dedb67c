"""``rea2seg train sam`` on a tiny configuration: a fixed batch is learned, and the saved file
loads through the project's SAM loading path as a trained (not random) SAM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

TINY = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "window_size": 2,
    "global_attn_indexes": [1],
    "prompt_dim": 32,
    "decoder_depth": 1,
    "decoder_mlp_dim": 64,
    "decoder_heads": 2,
    "iou_head_hidden_dim": 16,
}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from core.training.splits import prepare_training_split

    d = tmp_path_factory.mktemp("split")
    prepare_training_split(d, 6, size_wh=(128, 96))
    return d


def _settings(**kw):
    from core.training.sam import SamTrainSettings

    base = dict(
        img_size=64,
        arch=TINY,
        batch_size=2,
        prompts_per_image=3,
        max_steps=2,
        warmup_steps=0,
        logging_steps=1,
        save_steps=1,
    )
    return SamTrainSettings(**{**base, **kw})


def test_prompts_are_inside_their_masks_and_boxes_bound_them(split):
    from core.training.generator_data import SceneBank
    from core.training.sam import SamPromptDataset

    item = SamPromptDataset(SceneBank(split), _settings(), 4)[0]
    assert item["images"].shape == (3, 64, 64) and item["input_hw"].tolist() == [48, 64]
    for m, p, b in zip(item["gt"], item["points"], item["boxes"], strict=True):
        x, y = (p - 0.5).long().tolist()
        assert m[y, x]
        ys, xs = m.nonzero(as_tuple=True)
        assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert not m[48:].any()  # the padding is background


def test_a_fixed_batch_is_learned(split):
    from core.models.tiny_sam import build_small_sam
    from core.training.generator_data import SceneBank
    from core.training.sam import SamPromptDataset, SamTrainer, _collate

    s = _settings(box_fraction=0.5)
    data = SamPromptDataset(SceneBank(split), s, 4)
    batch = _collate([data[0], data[1]])
    model = SamTrainer(build_small_sam(64, TINY, seed=0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = model(**batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert {"single_focal", "multi_dice", "single_iou_mse"} <= set(out)
    assert losses[-1] < 0.7 * losses[0], losses


def test_trained_file_loads_as_a_trained_sam(split, tmp_path):
    from core.models.sam_backend import load_sam_backend
    from core.training.common import read_loss_curve
    from core.training.generator_data import SceneBank
    from core.training.sam import train_sam

    path = train_sam(split, tmp_path / "sam", _settings(), held_out=split, progress_bar=False)
    assert [r["step"] for r in read_loss_curve(tmp_path / "sam") if "loss" in r] == [1, 2]
    backend = load_sam_backend("sam", path)
    assert not backend.is_random and "trained" in backend.name
    _, img, masks = SceneBank(split).get(0)
    backend.set_image(img)
    logits, iou = backend.predict_points(np.array([[40.0, 50.0]]), np.array([1]), None, True)
    assert logits.shape == (3, 96, 128) and iou.shape == (3,)
    card = (tmp_path / "sam" / "MODEL_CARD.md").read_text()
    assert "trained from random weights" in card and "mIoU" in card
    info = json.loads((tmp_path / "sam" / "training.json").read_text())
    assert info["steps"] == 2 and 0.0 <= info["held_out"]["miou"] <= 1.0
    # resume continues the same run
    train_sam(split, tmp_path / "sam", _settings(max_steps=3), resume=True, progress_bar=False)
    assert [r["step"] for r in read_loss_curve(tmp_path / "sam") if "loss" in r] == [1, 2, 3]


def test_cli_trains_and_refuses_bad_settings(split, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "cli"
    argv = [
        "train",
        "sam",
        "--split",
        str(split),
        "--out",
        str(out),
        "--img-size",
        "64",
        "--arch",
        json.dumps(TINY),
        "--batch-size",
        "1",
        "--max-steps",
        "1",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert (out / "sam.pth").is_file() and "wrote" in capsys.readouterr().out
    bad = [("60" if a == "64" else a) for a in argv]
    assert main(bad) == 2  # not a multiple of 16
    assert (
        main(["train", "sam", "--out", str(tmp_path / "x"), "--scenes", "3", "--split-seed", "42"])
        == 2
    )  # an evaluation seed


def test_one_scene_is_learned_in_the_predictors_frame(tmp_path):
    # prompts, targets and the loss live in SAM's padded input frame; SamPredictor scores in the
    # image's own pixels: a SAM fitted to one scene must score that scene well through it
    from core.models.tiny_sam import build_small_sam
    from core.training.generator_data import SceneBank
    from core.training.sam import SamPromptDataset, SamTrainer, _collate, evaluate_points
    from core.training.splits import prepare_training_split

    prepare_training_split(tmp_path / "one", 1, size_wh=(128, 96))
    bank = SceneBank(tmp_path / "one")
    torch.manual_seed(0)
    data = SamPromptDataset(bank, _settings(batch_size=1, prompts_per_image=6), 10_000)
    model = SamTrainer(build_small_sam(64, TINY, seed=0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for i in range(150):
        out = model(**_collate([data[i]]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    got = evaluate_points(model.sam, bank, 1)
    assert got["objects"] >= 2 and got["miou"] > 0.5 and got["miou_box"] > 0.5, got
