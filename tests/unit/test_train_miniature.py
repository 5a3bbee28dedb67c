"""``rea2seg train miniature``: the config hash follows every setting (and the shipped files,
once shipped, match the current config); a run scaled down to seconds per stage writes a model
folder that loads as the ``mini-geometric`` preset and runs stage 1 on a held-out scene, and an
evaluator folder that loads by path and as the ``mini-geometric`` evaluator preset and scores a
group; a re-run skips the finished stages, and one with another evaluator setting re-runs only
the evaluator, moving its old folder aside; the presets without their files name the command
that makes them."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

TINY_SAM = {
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


def test_config_hash_follows_every_setting():
    from core.training.miniature import MiniatureConfig

    base = MiniatureConfig()
    assert base.config_hash() == MiniatureConfig().config_hash()
    assert len(base.config_hash()) == 64
    changed = [
        dataclasses.replace(base, seed=base.seed + 1),
        dataclasses.replace(base, sam_minutes=12.0),
        dataclasses.replace(base, minutes_scale=0.5),
        dataclasses.replace(base, lisa=dataclasses.replace(base.lisa, lr=1e-4)),
        dataclasses.replace(base, sam=dataclasses.replace(base.sam, batch_size=4)),
        dataclasses.replace(base, evaluator=dataclasses.replace(base.evaluator, lora_rank=8)),
        dataclasses.replace(base, evaluator_width=32),
    ]
    hashes = {c.config_hash() for c in changed}
    assert len(hashes) == len(changed) and base.config_hash() not in hashes
    assert base.total_minutes <= 60


def test_stage_hashes_cover_every_setting_and_follow_the_stage_order():
    from core.training.miniature import STAGE_FIELDS, STAGES, MiniatureConfig

    base = MiniatureConfig()
    listed = [f for st in STAGES for f in STAGE_FIELDS[st]]
    assert sorted(listed) == sorted(f.name for f in dataclasses.fields(base))
    changes = {
        "split": dataclasses.replace(base, seed=base.seed + 1),
        "sam": dataclasses.replace(base, sam_minutes=12.0),
        "grounding": dataclasses.replace(base, scratch_width=96),
        "lisa": dataclasses.replace(base, lisa=dataclasses.replace(base.lisa, lr=1e-4)),
        "groups": dataclasses.replace(base, group_samples=10),
        "evaluator": dataclasses.replace(base, evaluator_width=32),
    }
    for changed_stage, cfg in changes.items():
        k = STAGES.index(changed_stage)
        for i, st in enumerate(STAGES):
            assert (cfg.stage_hash(st) == base.stage_hash(st)) == (i < k), (changed_stage, st)


def test_config_refuses_evaluation_seeds_and_budgets_over_an_hour():
    from core.training.miniature import MiniatureConfig

    with pytest.raises(ValueError, match="evaluation seed"):
        MiniatureConfig(seed=0)
    with pytest.raises(ValueError, match="over 60"):
        MiniatureConfig(sam_minutes=30.0)


def test_shipped_models_come_from_the_current_config():
    from core.paths import resource_path
    from core.training.miniature import INFO_FILE, MiniatureConfig

    info_file = resource_path("models", "mini-geometric", INFO_FILE)
    if not info_file.is_file():
        pytest.skip("no mini-geometric models are shipped yet (rea2seg train miniature makes them)")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    assert info["config_hash"] == MiniatureConfig().config_hash(), (
        "resources/models/mini-geometric was trained with another configuration: rerun "
        "rea2seg train miniature and ship its models/ folder"
    )


def test_preset_without_files_names_the_command(monkeypatch, tmp_path):
    from core.models import config
    from core.models.base import ModelLoadError
    from core.models.config import preset_problems, preset_spec, resolve_paths

    # as in a checkout or an install without the shipped models
    monkeypatch.setattr(config, "resource_path", lambda *parts: tmp_path.joinpath(*parts))
    with pytest.raises(ModelLoadError, match="rea2seg train miniature"):
        resolve_paths("mini-geometric", config={})
    assert preset_problems("mini-geometric", config={})
    spec = preset_spec("mini-geometric")
    assert not spec.is_random and "synthetic geometric split" in spec.label


def test_evaluator_preset_without_files_names_the_command(tmp_path):
    from core.evaluator.presets import load_evaluator
    from core.models.base import ModelLoadError
    from core.models.config import evaluator_problems, evaluator_spec
    from core.paths import resource_path

    assert not evaluator_spec("mini-geometric").is_random
    missing = tmp_path / "nothing"
    cfg = {"evaluator": {"mini-geometric": {"lora_path": str(missing)}}}
    with pytest.raises(ModelLoadError, match="rea2seg train miniature") as exc:
        load_evaluator("mini-geometric", config=cfg)
    assert str(missing) in str(exc.value) and "lora_path" in str(exc.value)
    if resource_path("models", "mini-geometric", "evaluator", "adapter_config.json").is_file():
        return  # shipped: the bundled folder loads (the shipped-files test checks its config)
    with pytest.raises(ModelLoadError, match="rea2seg train miniature"):
        load_evaluator("mini-geometric", config={})
    assert "rea2seg train miniature" in evaluator_problems("mini-geometric", {})[0]


def test_preset_averages_every_layer_of_its_small_llava():
    from core.pipeline.settings import preset_default_settings

    # the paper's layers 14–30 are LLaVA-7B's; the miniature's LLaVA has 4
    assert preset_default_settings("mini-geometric").layers is None
    assert preset_default_settings("lisa-7b").layers == tuple(range(14, 31))


def _tiny_config():
    from core.training.miniature import MiniatureConfig

    c = MiniatureConfig(minutes_scale=0.001)  # a split of 12 questions, budgets of seconds
    return dataclasses.replace(
        c,
        split_size_wh=(128, 96),
        sam=dataclasses.replace(
            c.sam,
            img_size=64,
            arch=TINY_SAM,
            batch_size=2,
            prompts_per_image=2,
            save_steps=1,
            logging_steps=1,
        ),
        scratch_width=32,
        scratch_layers=2,
        scratch_image_size=28,
        grounding=dataclasses.replace(c.grounding, batch_size=2, save_steps=1, logging_steps=1),
        lisa=dataclasses.replace(c.lisa, batch_size=2, save_steps=1, logging_steps=1),
        evaluator=dataclasses.replace(c.evaluator, batch_size=2, lora_rank=4, lora_alpha=4),
        evaluator_width=32,
        evaluator_image_size=56,
    )


@pytest.mark.slow
def test_scaled_run_loads_as_the_preset_runs_stage_1_and_resumes(tmp_path):
    from core.evaluator.adapter_dir import read_adapter_info
    from core.evaluator.presets import load_evaluator
    from core.evaluator.trainset import load_question_sets
    from core.geometric.generate import generate
    from core.pipeline.ask import ask
    from core.pipeline.cache import load_segmenter
    from core.pipeline.settings import preset_default_settings
    from core.pipeline.stage1 import run_stage1
    from core.training.generator_data import SceneBank
    from core.training.miniature import (
        CARD_FILE,
        INFO_FILE,
        MAX_MODEL_BYTES,
        train_miniature,
    )

    cfg = _tiny_config()
    out = tmp_path / "mini"
    lines: list[str] = []
    models = train_miniature(out, cfg, progress=lines.append)
    info = json.loads((models / INFO_FILE).read_text(encoding="utf-8"))
    assert info["config_hash"] == cfg.config_hash()
    assert info["config"]["split_questions"] == 6000 and info["stages"]["split"]["questions"] == 12
    for name in ("sam", "grounding", "lisa"):
        assert info["stages"][name]["steps"] >= 1 and info["stages"][name]["losses"]["logged"] >= 1
    assert info["stages"]["groups"]["samples"] >= 1
    assert info["stages"]["groups"]["groups"] == len(
        (out / "groups" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    )
    ev_stage = info["stages"]["evaluator"]
    assert "skipped" not in ev_stage and ev_stage["steps"] >= 1
    assert ev_stage["losses"]["logged"] >= 1 and ev_stage["minutes"] > 0
    assert read_adapter_info(models / "evaluator")["base"] == "base"
    assert any(k.startswith("evaluator/") for k in info["model_files"])
    assert 0 < info["model_bytes"] <= MAX_MODEL_BYTES
    card = (models / CARD_FILE).read_text(encoding="utf-8")
    assert cfg.config_hash() in card and "seed 1000000" in card
    assert "| evaluator | " in card and "skipped" not in card

    # the evaluator folder, moved, loads by path (its base relative to it) and as the preset
    moved = tmp_path / "shipped" / "evaluator"
    shutil.copytree(models / "evaluator", moved)
    qs = load_question_sets(out / "groups" / "train.jsonl")[0]
    masks = [qs.load_mask(i) for i in range(min(len(qs), 5))]
    for ev in (
        load_evaluator(str(moved)),
        load_evaluator(
            "mini-geometric",
            config={"evaluator": {"mini-geometric": {"lora_path": str(moved)}}},
        ),
    ):
        assert not ev.is_random
        res = ev.score_group(qs.load_image(), qs.question, masks, cot=False)
        assert len(res.scores) == len(masks)

    # the preset, pointed at the output, runs stage 1 on a scene of an evaluation seed
    held = tmp_path / "held"
    generate(held, 3, seed=7, size_wh=(128, 96))
    seg = load_segmenter(
        "mini-geometric",
        config={"presets": {"mini-geometric": {"mllm_path": str(models / "segmenter")}}},
    )
    assert not seg.is_random
    _, img, _ = SceneBank(held).get(0)
    settings = preset_default_settings("mini-geometric")
    trace = run_stage1(seg.prompt_model, seg.sam, img, "Segment the cube.", settings)
    assert trace.initial_logits.shape == img.shape[:2]
    assert trace.model_ids["mllm"] == "mini-geometric"
    # `ask` takes the preset's own stage-1 defaults too (the paper's layers 14–30 do not exist)
    assert ask(img, "Segment the cube.", seg).initial_logits.shape == img.shape[:2]

    # a re-run skips every finished stage and trains nothing
    lines.clear()
    train_miniature(out, cfg, progress=lines.append)
    assert sum("finished earlier, skipped" in x for x in lines) == 6
    assert not any("running" in x for x in lines)
    assert (models / "evaluator" / "adapter_config.json").is_file()
    # another evaluator setting: the stages before it are reused, the evaluator's folder is
    # moved aside (nothing deleted) and the evaluator trains again
    old_hash = cfg.stage_hash("evaluator")
    other = dataclasses.replace(cfg, evaluator=dataclasses.replace(cfg.evaluator, lr=2e-3))
    lines.clear()
    train_miniature(out, other, progress=lines.append)
    assert sum("finished earlier, skipped" in x for x in lines) == 5
    assert any(x.startswith("evaluator: running") for x in lines)
    assert (out / f"evaluator.other-{old_hash[:12]}" / "DONE.json").is_file()
    info = json.loads((models / INFO_FILE).read_text(encoding="utf-8"))
    assert info["config_hash"] == other.config_hash()


def test_cli_refuses_evaluation_seeds_and_bad_scales(tmp_path, capsys):
    from core.cli import main

    out = str(tmp_path / "m")
    assert main(["train", "miniature", "--out", out, "--seed", "5"]) == 2
    assert "evaluation seed" in capsys.readouterr().err
    assert main(["train", "miniature", "--out", out, "--minutes-scale", "2"]) == 2
    assert "minutes_scale" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
