"""The evaluator trainer (core.training.evaluator) on a tiny random-init InternVL of the real
classes: the inference prompt, answer-only loss, per-epoch regrouping, mixed CoT, resume after
kill -9, a two-process DDP (gloo) step, and the adapter round trip through ``rea2seg run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.evaluator.adapter import PromptFormatError
from core.evaluator.prompt import prompt_format
from core.evaluator.trainset import load_question_sets
from tests.unit.evaltrain_helpers import tiny_scoring_model, write_toy_jsonl

ROOT = Path(__file__).resolve().parents[2]


# -- data (no model) -----------------------------------------------------------------------------
def test_questions_are_rebuilt_from_the_groups(tmp_path):
    data = write_toy_jsonl(tmp_path, n_questions=3, n_candidates=7, reasoning=[True, False, True])
    qs = load_question_sets(data)
    assert len(qs) == 3
    for q in qs:  # 7 candidates in two lines of 5 (3 padded): each candidate once
        assert len(q) == 7 and sorted(q.candidate_ids) == list(range(7))
        assert q.question.startswith("which red box") and all(0 <= v <= 1 for v in q.ious)
    assert [q.reasoning is not None for q in qs] == [True, False, True]
    m = qs[0].load_mask(0)
    assert m.dtype == bool and m.shape == (24, 32) and qs[0].load_image().shape == (24, 32, 3)


def test_candidates_are_regrouped_every_epoch(tmp_path):
    from core.training.evaluator import RegroupedGroups

    qs = load_question_sets(write_toy_jsonl(tmp_path, n_questions=2, n_candidates=12))
    ds = RegroupedGroups(qs, group_size=5, seed=0)
    e0 = [it.candidates for it in ds.items]
    assert len(ds) == 2 * 3  # ceil(12 / 5) groups per question, the last one padded
    ds.set_epoch(1)
    e1 = [it.candidates for it in ds.items]
    assert len(e1) == len(e0) and e1 != e0
    for items in (e0, e1):  # every epoch scores every candidate of every question
        for q in range(2):
            seen = [c for g in items[3 * q : 3 * q + 3] for c in g]
            assert set(seen) == set(range(12)) and all(len(g) == 5 for g in items)
    ds.set_epoch(0)
    assert [it.candidates for it in ds.items] == e0  # deterministic per epoch


def test_cot_share_and_questions_without_reasoning(tmp_path):
    from core.training.evaluator import RegroupedGroups

    qs = load_question_sets(
        write_toy_jsonl(
            tmp_path, n_questions=40, n_candidates=5, reasoning=[q % 2 == 0 for q in range(40)]
        )
    )
    none = RegroupedGroups(qs, cot_ratio=0.0)
    assert none.stats.cot == 0 and none.stats.cot_without_reasoning == 0
    all_ = RegroupedGroups(qs, cot_ratio=1.0)
    assert all_.stats.cot == 20 and all_.stats.cot_without_reasoning == 20
    half = RegroupedGroups(qs, cot_ratio=0.5)
    assert 0 < half.stats.cot < 20 and half.stats.cot + half.stats.no_cot == 40
    item = all_[0]
    assert item["cot"] and item["answer"].startswith(
        "the red box is the target 0 .\nAnswer:\nMask 1:"
    )
    assert not all_[1]["cot"] and all_[1]["answer"].startswith("Mask 1: ")


# -- with the tiny model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("evtrain")
    return tiny_scoring_model(root / "base"), write_toy_jsonl(root / "data", reasoning=True)


@pytest.mark.slow
@pytest.mark.parametrize("max_patches", [1, 12])
def test_training_input_is_the_inference_prompt_and_the_loss_is_on_the_answer(tiny, max_patches):
    import torch

    from core.evaluator.inputs import encode_inputs
    from core.evaluator.local_internvl import load_internvl
    from core.training.evaluator import GroupCollator, RegroupedGroups, end_of_turn_id

    base, data = tiny
    ev = load_internvl(base, max_patches=max_patches)
    ds = RegroupedGroups(load_question_sets(data), cot_ratio=0.5, seed=1)
    col = GroupCollator(ev.processor, max_patches)
    tok = ev.processor.tokenizer
    for i in (0, 1, 2):
        item = ds[i]
        enc = col.encode(item)
        # what the local backend sends for this group at inference
        ref = encode_inputs(
            ev.processor, [ev.inputs(item["image"], item["question"], item["masks"], item["cot"])]
        )
        n = ref["input_ids"].shape[1]
        assert torch.equal(enc["input_ids"][:n], ref["input_ids"][0])  # the same prompt tokens
        assert torch.equal(enc["pixel_values"], ref["pixel_values"])  # the same tiles
        assert (enc["labels"][:n] == -100).all()  # no loss on the prompt
        answer = enc["labels"][n:]
        assert (answer != -100).all() and int(answer[-1]) == end_of_turn_id(tok)
        assert tok.decode(answer[:-1]).split() == item["answer"].split()
        assert "<unk>" not in tok.convert_ids_to_tokens(answer[:-1].tolist()) or item["cot"]
    batch = col([ds[0], ds[1]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == -100).all()


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


TRAIN = ["--lora-rank", "4", "--max-patches", "1", "--lr", "1e-3"]


@pytest.mark.slow
def test_resume_after_kill_continues_from_the_last_checkpoint(tiny, tmp_path):
    from core.training.common import read_loss_curve, resume_checkpoint

    base, data = tiny
    out = tmp_path / "out"
    args = [
        "train",
        "evaluator",
        "--data",
        str(data),
        "--base",
        str(base),
        "--out",
        str(out),
        "--max-steps",
        "1000",  # far more than it gets to do before the kill, on any machine
        "--save-steps",
        "2",
        *TRAIN,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.time()
    while time.time() - t0 < 240 and proc.poll() is None:
        if (out / "checkpoint-4" / "trainer_state.json").is_file():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last = resume_checkpoint(out)
    assert last is not None and not (out / "adapter_config.json").exists()
    done = int(json.loads(Path(last, "trainer_state.json").read_text())["global_step"])
    assert 4 <= done < 1000 and done % 2 == 0
    end = done + 6  # a few steps more than the killed run saved
    r = _cli(
        *args[: -len(TRAIN) - 4], "--max-steps", str(end), "--save-steps", "2", *TRAIN, "--resume"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed from {last}" in r.stdout
    state = json.loads((out / f"checkpoint-{end}" / "trainer_state.json").read_text())
    assert state["global_step"] == end
    steps = [row["step"] for row in read_loss_curve(out) if "loss" in row]
    assert steps == sorted(set(steps)) and steps[-1] == end
    assert set(range(1, end + 1)) <= set(steps)
    assert (out / "adapter_config.json").is_file() and (out / "rea2seg_adapter.json").is_file()


@pytest.mark.slow
def test_two_process_ddp_step_on_cpu(tiny, tmp_path):
    base, data = tiny
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "core.cli",
            "train",
            "evaluator",
            "--data",
            str(data),
            "--base",
            str(base),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--save-steps",
            "2",
            *TRAIN,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((out / "rea2seg_train.json").read_text())
    assert info["world_size"] == 2
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    rows = [json.loads(line) for line in (out / "loss_curve.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2]  # one curve, not one per rank


@pytest.mark.slow
def test_stage_two_continues_stage_one_and_the_adapter_runs(tiny, tmp_path):
    import torch

    from core.evaluator.adapter_dir import read_adapter_info
    from core.evaluator.presets import load_evaluator
    from core.training.evaluator import EvaluatorTrainSettings, train_evaluator

    base, data = tiny
    s1 = train_evaluator(
        [data],
        base,
        tmp_path / "s1",
        EvaluatorTrainSettings(
            stage=1, lora_rank=4, max_steps=2, save_steps=10, max_patches=1, lr=1e-3
        ),
    )
    info1 = read_adapter_info(s1.out)
    assert info1["prompt_format"] == prompt_format(False, 1) and info1["stage"] == 1
    s2 = train_evaluator(
        [data],
        s1.out,
        tmp_path / "s2",
        EvaluatorTrainSettings(
            stage=2, lora_rank=4, max_steps=2, save_steps=10, max_patches=1, lr=1e-3
        ),
    )
    info2 = read_adapter_info(s2.out)
    assert info2["parent_adapter"] == s1.out and info2["base"] == str(base)
    # mixed CoT: both formats trained, declared (and checked) as the CoT one
    assert info2["prompt_format"] == prompt_format(True, 1) and len(info2["prompt_formats"]) == 2
    ev1, ev2 = load_evaluator(s1.out), load_evaluator(s2.out)
    assert ev1.name.endswith("+lora:s1") and ev1.prompt_format == prompt_format(False, 1)
    assert ev2.max_patches == 1 and not ev2.is_random
    # a config preset naming the adapter as its lora_path takes the adapter's settings it lacks
    cfg = {"evaluator": {"internvl3-8b": {"model_path": str(base), "lora_path": s1.out}}}
    ev3 = load_evaluator("internvl3-8b", cfg)
    assert ev3.prompt_format == prompt_format(False, 1) and ev3.max_patches == 1
    # … but another tile budget than the one it was trained on is refused
    cfg["evaluator"]["internvl3-8b"]["max_patches"] = 2
    with pytest.raises(PromptFormatError, match="max_patches"):
        load_evaluator("internvl3-8b", cfg)
    assert ev3.max_new_tokens == info1["max_new_tokens"] == 58
    ids = torch.tensor([[1, 5, 6, 7, 2]])
    with torch.inference_mode():
        a, b = ev1.model(input_ids=ids).logits, ev2.model(input_ids=ids).logits
    assert not torch.allclose(a, b)  # stage 2 moved the adapter
    img = np.zeros((24, 32, 3), np.uint8)
    m = np.zeros((24, 32), bool)
    m[2:9, 3:14] = True
    (res,) = ev2.score_groups(img, "which red box 0 ?", [[m, ~m]], cot=False)
    assert len(res.scores) == 2 and res.raw_text is not None


@pytest.mark.slow
def test_adapter_round_trip_through_run_and_eval(tiny, tmp_path, capsys):
    from core.cli import main
    from core.demo import DEMO_SGDR

    base, _ = tiny
    db = str(tmp_path / "d.sqlite")
    assert main(["import", "sgdr", str(DEMO_SGDR), "--db", db]) == 0
    assert main(["run", "--db", db, "--preset", "tiny-random", "--limit", "2"]) == 0
    train = tmp_path / "t.jsonl"
    assert (
        main(
            ["export", "evaluator-train", "--db", db, "--run", "1", "--out", str(train), "--no-cot"]
        )
        == 0
    )
    out = tmp_path / "adapter"
    assert (
        main(
            [
                "train",
                "evaluator",
                "--data",
                str(train),
                "--base",
                str(base),
                "--out",
                str(out),
                "--stage",
                "1",
                "--max-steps",
                "2",
                *TRAIN,
            ]
        )
        == 0
    )
    assert "rea2seg run --evaluator" in capsys.readouterr().out
    assert (
        main(
            [
                "run",
                "--db",
                db,
                "--preset",
                "tiny-random",
                "--evaluator",
                str(out),
                "--no-cot",
                "--limit",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["trace", "--db", db, "--sample", "1", "--run", "2", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)["evaluator"]
    assert ev["model_id"].endswith("+lora:adapter") and ev["prompt_format"] == prompt_format(
        False, 1
    )
    saved = tmp_path / "quality.json"
    assert (
        main(
            [
                "eval",
                "--db",
                db,
                "--run",
                "2",
                "--evaluator",
                str(out),
                "--reshuffles",
                "2",
                "--save",
                str(saved),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "position bias over 2 regroupings" in text and "initial mask M" in text
    res = json.loads(saved.read_text())
    assert res["n_questions"] == 1 and res["position_bias"]["repeats"] == 2


def test_a_relative_base_is_resolved_against_its_adapter_dir(tmp_path):
    from core.evaluator.adapter_dir import resolve_base
    from core.models.base import ModelLoadError

    adapter = tmp_path / "moved" / "evaluator"
    (adapter / "base").mkdir(parents=True)
    (adapter / "base" / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_base("base", adapter_dir=adapter) == (adapter / "base").resolve()
    with pytest.raises(ModelLoadError, match="not a checkpoint directory"):
        resolve_base("elsewhere", adapter_dir=adapter)
