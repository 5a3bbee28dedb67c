"""One prompt at training and at inference: the shared conversation and tiling, the adapter's
format declaration, the backends' refusal before any sample (and before a run row), and the
export filling the reasoning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.evaluator.adapter import (
    ADAPTER_FILE,
    PromptFormatError,
    check_prompt_format,
    declared_format,
    read_adapter_declaration,
    write_adapter_declaration,
)
from core.evaluator.inputs import build_evaluator_input, image_kwargs
from core.evaluator.prompt import (
    SYSTEM,
    human_value,
    internvl_conversations,
    parse_prompt_format,
    prompt_format,
    tiles_per_image,
    user_text,
)
from core.trace import Candidate, PipelineTrace
from tests.unit.conftest import box_mask


def test_the_format_id_names_version_cot_and_tile_budget():
    assert prompt_format(True) == "rea2seg-v2-cot-tiles12"
    assert parse_prompt_format(prompt_format(False, 6)) == (2, False, 6)
    assert parse_prompt_format("rea2seg-v1-cot") == (1, True, None)  # the old export's ids
    with pytest.raises(ValueError, match="not a prompt format id"):
        parse_prompt_format("internvl-cot")
    # InternVL's multi-image recipe: max_dynamic_patch // images, at least one
    assert [tiles_per_image(n, 12) for n in (1, 2, 6, 13)] == [12, 6, 2, 1]
    assert image_kwargs(6) == {"crop_to_patches": True, "min_patches": 1, "max_patches": 2}
    assert image_kwargs(13) == {"crop_to_patches": False}


def test_one_builder_gives_inference_and_training_the_same_conversation():
    img = np.zeros((20, 30, 3), np.uint8)
    masks = [box_mask((20, 30), 0, 5, 0, 5), box_mask((20, 30), 5, 9, 0, 30)]
    inf = build_evaluator_input(img, "the  left one?", masks, cot=True)
    train = build_evaluator_input(
        img, "the  left one?", masks, cot=True, scores=[0.834, 0.05], reasoning="It is left."
    )
    assert inf.messages == train.messages[:2] and inf.target is None
    assert inf.messages[0] == {"role": "system", "content": [{"type": "text", "text": SYSTEM}]}
    assert train.messages[2]["role"] == "assistant"
    assert train.target == "It is left.\nAnswer:\nMask 1: 0.83\nMask 2: 0.05"
    assert len(inf.images) == 3 and inf.images[1].dtype == np.uint8 and inf.images[1].max() == 255
    assert inf.image_kwargs == image_kwargs(3) and inf.prompt_format == prompt_format(True)
    # the export's conversation is the same turns, with <image> placeholders
    conv = internvl_conversations("the  left one?", 2, True, train.target)
    assert [c["from"] for c in conv] == ["system", "human", "gpt"]
    assert conv[0]["value"] == SYSTEM and conv[2]["value"] == train.target
    assert conv[1]["value"] == human_value("the  left one?", 2, True)
    assert conv[1]["value"].endswith(user_text("the left one?", 2, True))
    no_cot = build_evaluator_input(img, "q", masks, cot=False, scores=[1, 0], reasoning="ignored")
    assert no_cot.target == "Mask 1: 1.00\nMask 2: 0.00"
    with pytest.raises(ValueError, match="2 scores for a group of 1"):
        build_evaluator_input(img, "q", masks[:1], scores=[1, 0])


def test_the_adapter_declaration_round_trips_and_bad_ones_are_refused(tmp_path):
    d = tmp_path / "lora"
    path = write_adapter_declaration(d, prompt_format(True), trained_on="x.jsonl")
    body = json.loads(path.read_text())
    assert path.name == ADAPTER_FILE and body["system"] == SYSTEM and body["max_patches"] == 12
    assert read_adapter_declaration(d) == prompt_format(True)
    assert read_adapter_declaration(tmp_path) is None  # no file: a base model, nothing declared
    assert declared_format(prompt_format(True), d, setting="s") == prompt_format(True)
    with pytest.raises(PromptFormatError, match="remove or correct the setting"):
        declared_format(prompt_format(False), d, setting="s")
    (d / ADAPTER_FILE).write_text("{not json")
    with pytest.raises(PromptFormatError, match="not a readable adapter declaration"):
        read_adapter_declaration(d)
    (d / ADAPTER_FILE).write_text('{"prompt_format": "whatever"}')
    with pytest.raises(PromptFormatError, match="not a prompt format id"):
        read_adapter_declaration(d)
    check_prompt_format(None, 12, True, who="base")  # nothing declared: nothing to refuse
    with pytest.raises(PromptFormatError, match="version 1"):
        check_prompt_format("rea2seg-v1-cot", 12, True, who="old")


def test_the_openai_backend_refuses_a_mismatch_when_built(tmp_path):
    from core.evaluator.presets import load_evaluator

    write_adapter_declaration(tmp_path, prompt_format(False))
    spec = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    ev = load_evaluator({**spec, "adapter_path": str(tmp_path)}, cot=False)
    assert ev.prompt_format == ev.format_for(False) == prompt_format(False)
    with pytest.raises(PromptFormatError, match="run it without chain of thought"):
        load_evaluator({**spec, "adapter_path": str(tmp_path)}, cot=True)
    with pytest.raises(PromptFormatError, match="set max_patches = 12"):
        load_evaluator({**spec, "adapter_path": str(tmp_path), "max_patches": 24})
    with pytest.raises(PromptFormatError, match="not a prompt format id"):
        load_evaluator({**spec, "prompt_format": "v2"})
    assert load_evaluator(spec, cot=True).prompt_format is None  # a base model runs either way


def test_the_openai_backend_sends_the_exported_system_and_user_turns():
    from core.evaluator.openai_compat import OpenAICompatEvaluator
    from tests.unit.llm_server import ChatServer, Reply

    srv = ChatServer(lambda req: Reply("Answer:\nMask 1: 0.5"))
    try:
        ev = OpenAICompatEvaluator(srv.url, "m", max_retries=0)
        img = np.zeros((8, 8, 3), np.uint8)
        r = ev.score_group(img, "which?", [np.ones((8, 8), bool)], cot=True)
        req = srv.requests[0]
    finally:
        srv.close()
    assert r.scores == [0.5]
    conv = internvl_conversations("which?", 1, True, "")
    assert req.system == conv[0]["value"]
    sent = "".join(p["text"] for p in req.body["messages"][1]["content"] if p["type"] == "text")
    assert sent.replace(" ", "") == conv[1]["value"].replace("<image>\n", "").replace(" ", "")


def _seg(preset, device=None, config=None):
    """A stand-in segmenter: all a run plan reads of one before the evaluator loads."""
    from types import SimpleNamespace

    sam = SimpleNamespace(kind="sam", name="sam-fake")
    return SimpleNamespace(
        preset=preset, is_random=True, sam=sam, prompt_model=SimpleNamespace(name="mllm-fake")
    )


def test_a_refused_evaluator_leaves_no_run_row(filled_sqlite, tmp_path, monkeypatch, capsys):
    from core.cli import main
    from core.models import config
    from core.pipeline import cache, plan
    from core.store import open_store, repo

    write_adapter_declaration(tmp_path / "lora", prompt_format(False))
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[evaluator.openai]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        f'adapter_path = "{tmp_path / "lora"}"\n'
    )
    monkeypatch.setenv("REA2SEG_CONFIG", str(cfg))
    monkeypatch.setattr(cache, "load_segmenter", _seg)
    monkeypatch.setattr(plan, "canonical_preset", lambda p: p)
    monkeypatch.setattr(config, "PRESETS", (*config.PRESETS, "fake"))
    url = filled_sqlite.url
    filled_sqlite.close()
    rc = main(["run", "--db", url, "--preset", "fake", "--evaluator", "openai", "--cot"])
    assert rc == 2 and "without chain of thought" in capsys.readouterr().err
    st = open_store(url)
    try:
        assert st.run(lambda s: repo.list_runs(s), write=False) == []
    finally:
        st.close()


def _run_with_trace(st):
    from core.evaluator.stage2 import run_stage2
    from core.store import repo

    with st.session() as s:
        sid = repo.list_samples(s)[0].id
        smp = repo.get_sample(s, sid)
        hw = (smp.image.height, smp.image.width)
        run_id = repo.create_run(
            s, name="r", preset="t", config={"stage2": {"cot": True}}, model_ids={}, is_random=False
        )

    class Fixed:
        name, backend, is_random = "fixed", "test", False

        def score_groups(self, image, question, groups, cot):
            from core.evaluator.base import GroupResult

            return [GroupResult([0.5] * len(g), None, "", "", None) for g in groups]

    t = PipelineTrace(
        "q", hw, "t", {}, False, {}, None, None, None, None, None,
        [Candidate(0, "amg", 0, box_mask(hw, 0, 5, 0, 5), 0.5)],
    )  # fmt: skip
    run_stage2(t, np.zeros((*hw, 3), np.uint8), Fixed(), cot=True)
    st.run(lambda s: repo.save_trace(s, run_id, sid, t))
    return run_id, sid


def test_the_export_fills_the_reviewed_reasoning(filled_sqlite, tmp_path):
    from core.evaluator.export import export_evaluator_train
    from core.store import review

    st = filled_sqlite
    run_id, sid = _run_with_trace(st)

    def line(name):
        stats = export_evaluator_train(st, run_id, tmp_path / name)
        return stats, json.loads((tmp_path / name).read_text().splitlines()[0])

    stats, rec = line("a.jsonl")
    assert rec["reasoning_missing"] and stats["with_reasoning"] == 0
    meta = json.loads((tmp_path / "a_meta.json").read_text())
    assert next(iter(meta.values()))["max_dynamic_patch"] == 12

    def set_reasoning(s):
        from core.store import repo

        smp = repo.get_sample(s, sid)
        smp.reasoning, smp.reasoning_status, smp.reasoning_source = (
            "The scene shows a box. The left one is it.",
            "pending",
            "reasoning:answer:m",
        )

    st.run(set_reasoning)
    stats, rec = line("b.jsonl")
    assert "reasoning_missing" not in rec and stats["with_reasoning"] == stats["groups"]
    assert rec["conversations"][2]["value"].startswith(
        "The scene shows a box. The left one is it.\nAnswer:\nMask 1: "
    )
    assert rec["reasoning_source"] == "reasoning:answer:m"
    review.edit_reasoning(st, sid, "Edited reasoning.", user="ann")
    assert line("c.jsonl")[1]["conversations"][2]["value"].startswith("Edited reasoning.\nAnswer:")
    assert review.decide_reasoning(st, sid, "reject", user="ann") == "rejected"
    assert line("d.jsonl")[1]["reasoning_missing"]  # a rejected reasoning is not trained on
    fields = [h.field for h in review.history(st, sid)]
    assert fields[-2:] == ["reasoning", "reasoning_status"]


def test_the_tile_budget_default_is_one_constant():
    import inspect

    from core.evaluator import export, local_internvl, openai_compat
    from core.evaluator.prompt import MAX_PATCHES

    assert MAX_PATCHES == 12  # InternVL's usual max_dynamic_patch
    for fn in (
        local_internvl.load_internvl,
        local_internvl.InternVLEvaluator.__init__,
        openai_compat.OpenAICompatEvaluator.__init__,
        export.export_evaluator_train,
        build_evaluator_input,
    ):
        assert inspect.signature(fn).parameters["max_patches"].default == MAX_PATCHES, fn
