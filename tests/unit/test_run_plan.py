"""One way to run: ``plan_run`` (samples to do, skip done, resume; a refused run leaves no row),
``process_sample`` shared by the local engine and the Ray workers, evaluators cached by
``ModelCache``, and one preset registry for segmenters and evaluators."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.unit.test_pipeline_cli import GridPromptModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_sam():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)


class FakeEvaluator:
    """Scores every mask 0.5; ``prompt_format`` as a LoRA's export declares it (or ``None``)."""

    backend = "fake"
    is_random = False

    def __init__(self, name: str, prompt_format: str | None = None) -> None:
        self.name = name
        self.prompt_format = prompt_format

    def score_groups(self, image_rgb, question, groups, cot):
        from core.evaluator.base import GroupResult

        return [GroupResult([0.5] * len(g), None, "ok", "prompt", None) for g in groups]


def load_fake(preset: str, device: str | None = None, config=None):
    """A segmenter loader by import path (as the Ray workers take it): the hand-made prompt model
    and a tiny random SAM, for any preset name."""
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam
    from core.pipeline.cache import Segmenter

    return Segmenter(
        GridPromptModel(), SamV1Backend(build_tiny_sam(), name="sam-tiny"), preset, True
    )


@pytest.fixture
def fake(monkeypatch, tiny_sam):
    """A ModelCache whose segmenter preset ``fake`` is the grid prompt model + tiny SAM and whose
    evaluators are FakeEvaluators (``trained-cot``: declares the chain-of-thought format); counts
    the loads."""
    from core.evaluator.prompt import prompt_format
    from core.models.base import ModelLoadError
    from core.pipeline import plan
    from core.pipeline.cache import ModelCache, Segmenter

    loads: list[str] = []

    def segmenter(preset, config):
        loads.append(preset)
        if not preset.startswith("fake"):
            raise ModelLoadError(f"{preset}: mllm_path is not set")
        return Segmenter(GridPromptModel(), tiny_sam, preset, True)

    def evaluator(name, config):
        loads.append(name)
        if name == "missing":
            raise ModelLoadError("the missing evaluator needs a checkpoint")
        return FakeEvaluator(name, prompt_format(True) if name == "trained-cot" else None)

    monkeypatch.setattr(plan, "canonical_preset", lambda p: p)
    return SimpleNamespace(
        cache=ModelCache(load_segmenter=segmenter, load_evaluator=evaluator), loads=loads
    )


def _run_rows(store) -> list[tuple]:
    from core.store import repo

    with store.session(write=False) as s:
        return [(r.id, r.name, r.config, r.model_ids) for r in repo.list_runs(s)]


# -- plan_run ---------------------------------------------------------------------------------


def test_a_new_plan_records_the_run_and_lists_every_sample(filled_sqlite, fake):
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.settings import RANDOM_WEIGHT_OVERRIDES, Stage2Settings

    engine = LocalEngine(fake.cache)
    request = RunRequest("fake", stage2=Stage2Settings("ev", cot=False), overrides={"k1": 20})
    plan = plan_run(filled_sqlite, request, engine)
    assert plan.todo == (1, 2, 3, 4) and plan.done == 0 and not plan.resumed and plan.is_random
    assert plan.settings.k1 == 20 and plan.settings.k2 == RANDOM_WEIGHT_OVERRIDES["k2"]
    [(run_id, name, config, model_ids)] = _run_rows(filled_sqlite)
    assert run_id == plan.run_id and name.startswith("fake + ev ")
    assert config == {
        "stage1": plan.settings.to_dict(),
        "stage2": {"evaluator": "ev", "cot": False, "group_size": 5, "pad_last": True},
        "engines": [{"engine": "local", "workers": 1}],
    }
    assert model_ids == {"mllm": "grid-fake", "sam": "sam-tiny", "evaluator": "ev"}


def test_plan_skips_samples_already_done_and_resumes_with_the_stored_settings(filled_sqlite, fake):
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.store import repo

    engine = LocalEngine(fake.cache)
    first = plan_run(
        filled_sqlite, RunRequest("fake", overrides={"k1": 6, "k2": 3}, limit=2), engine
    )
    assert first.todo == (1, 2)
    report = engine.run(filled_sqlite, first)
    assert (report.saved, report.ok, report.cancelled) == (2, True, False)

    again = plan_run(filled_sqlite, RunRequest("fake", resume=True), engine)
    assert (again.run_id, again.todo, again.done, again.resumed) == (first.run_id, (3, 4), 2, True)
    assert again.settings == first.settings  # the stored settings, not today's defaults
    with filled_sqlite.session(write=False) as s:
        engines = repo.get_run(s, first.run_id).config["engines"]
    assert len(engines) == 2  # started, then resumed, on this engine

    # named samples: ids and references as typed, duplicates once; a new run does them all
    with filled_sqlite.session(write=False) as s:
        ext = repo.get_sample(s, 3).external_id
    other = plan_run(filled_sqlite, RunRequest("fake", samples=[2, f"#{3}", ext, 2]), engine)
    assert other.run_id != first.run_id and other.todo == (2, 3)
    # resuming continues the latest run of the preset; a preset that never ran starts a new one
    latest = plan_run(filled_sqlite, RunRequest("fake", resume=True, samples=[1, 2]), engine)
    assert latest.resumed and latest.run_id == other.run_id and latest.todo == (1, 2)
    fresh = plan_run(filled_sqlite, RunRequest("fake-2", resume=True), engine)
    assert not fresh.resumed and fresh.run_id > other.run_id and fresh.todo == (1, 2, 3, 4)
    assert fake.loads.count("fake") == 1  # the engine's cache loaded the segmenter once


@pytest.mark.parametrize(
    "request_kw, error",
    [
        ({"preset": "lisa-7b"}, "mllm_path is not set"),  # missing checkpoint
        ({"stage2": "missing"}, "needs a checkpoint"),  # an evaluator that cannot load
        ({"stage2": "trained-cot", "cot": False}, "trained on prompt format"),  # wrong format
        ({"overrides": {"k1": 3, "k2": 9}}, "k2 <= k1"),  # settings values
        ({"samples": ["no-such-sample"]}, "not found"),
    ],
)
def test_a_refused_run_leaves_the_run_table_unchanged(filled_sqlite, fake, request_kw, error):
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.settings import Stage2Settings

    before = _run_rows(filled_sqlite)
    kw = dict(request_kw)
    preset = kw.pop("preset", "fake")
    if "stage2" in kw:
        kw["stage2"] = Stage2Settings(kw.pop("stage2"), cot=kw.pop("cot", True))
    with pytest.raises(Exception, match=error):
        plan_run(filled_sqlite, RunRequest(preset, **kw), LocalEngine(fake.cache))
    assert _run_rows(filled_sqlite) == before


def test_a_refused_resume_leaves_the_run_unchanged(filled_sqlite, fake):
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.settings import Stage2Settings

    engine = LocalEngine(fake.cache)
    plan_run(filled_sqlite, RunRequest("fake", limit=1), engine)
    before = _run_rows(filled_sqlite)
    with pytest.raises(ValueError, match="differ"):
        plan_run(filled_sqlite, RunRequest("fake", resume=True, overrides={"k1": 40}), engine)
    with pytest.raises(Exception, match="needs a checkpoint"):
        plan_run(
            filled_sqlite,
            RunRequest("fake", resume=True, stage2=Stage2Settings("missing")),
            engine,
        )
    assert _run_rows(filled_sqlite) == before  # no engine appended either


def test_the_command_refuses_a_missing_checkpoint_before_creating_a_run(
    filled_sqlite, tmp_path, monkeypatch, capsys
):
    from core.cli import main
    from core.store import open_store

    url = filled_sqlite.url
    filled_sqlite.close()
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
    assert main(["run", "--db", url, "--preset", "lisa-7b", "--evaluator", "openai"]) == 2
    assert "lisa-7b: mllm_path is not set" in capsys.readouterr().err
    st = open_store(url)
    assert _run_rows(st) == []
    st.close()


# -- process_sample ---------------------------------------------------------------------------


def _spy(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(kwargs.get("sample_id"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_the_local_engine_and_the_ray_worker_call_the_same_process_sample(
    filled_sqlite, fake, monkeypatch
):
    """The Ray actor classes are plain classes (Ray wraps them when a pool starts): run here,
    in this process, they go through the very function the local engine calls, and a trace made
    by either is the same."""
    from core.evaluator import presets
    from core.images import read_image_bytes
    from core.pipeline import engine as engine_module
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.ray_engine import EvaluatorWorker, JobSpec, SegmentWorker
    from core.pipeline.settings import Stage2Settings
    from core.store import repo

    calls = _spy(monkeypatch, engine_module, "process_sample")
    scored = _spy(monkeypatch, engine_module, "score_sample")
    stage2 = Stage2Settings("ev", cot=False, group_size=4)
    local = LocalEngine(fake.cache)
    plan = plan_run(filled_sqlite, RunRequest("fake", stage2=stage2, samples=[2]), local)
    local.run(filled_sqlite, plan)
    assert calls == [2] and scored == [2]

    worker = SegmentWorker(JobSpec("fake", None, stage2), f"{__name__}:load_fake", False)
    worker.configure(plan.settings.to_dict())
    with filled_sqlite.session(write=False) as s:
        sample = repo.get_sample(s, 2)
        path, question = repo.image_path(sample), sample.question
        saved = repo.load_trace(s, plan.run_id, 2)
    kind, trace = worker.segment(2, str(path), question, read_image_bytes(path))
    assert kind == "trace" and calls == [2, 2] and trace.evaluator is None  # stage 1 only here
    # the evaluator pool's worker scores through score_sample
    monkeypatch.setattr(presets, "load_evaluator", lambda name, **kw: FakeEvaluator(name))
    ev_worker = EvaluatorWorker(JobSpec("fake", None, stage2))
    kind, trace = ev_worker.score(2, str(path), trace, read_image_bytes(path))
    assert kind == "trace" and scored == [2, 2]
    assert [c.mask.tobytes() for c in trace.candidates] == [
        c.mask.tobytes() for c in saved.candidates
    ]
    assert trace.evaluator.final_scores == saved.evaluator.final_scores
    assert trace.evaluator.shuffle_seed == saved.evaluator.shuffle_seed == 2


def test_process_sample_alone_needs_no_store(tiny_sam):
    from core.pipeline.cache import Segmenter
    from core.pipeline.engine import process_sample
    from core.pipeline.settings import Stage2Settings, run_defaults

    seg = Segmenter(GridPromptModel(), tiny_sam, "fake", True)
    image = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    settings = run_defaults("sam", True)
    trace = process_sample(
        seg, image, "which?", settings, evaluator=FakeEvaluator("ev"), stage2=Stage2Settings("ev")
    )
    assert trace.candidates and trace.evaluator.model_id == "ev" and trace.preset == "fake"
    assert trace.image_hw == (48, 64)


# -- ModelCache: evaluators -------------------------------------------------------------------


def test_the_cache_loads_an_evaluator_once_and_retries_a_failed_load():
    from core.pipeline.cache import ModelCache

    attempts = []

    def flaky(name, config):
        attempts.append(name)
        if len(attempts) == 1:
            raise ValueError("endpoint not set")
        return FakeEvaluator(name)

    cache = ModelCache(load_evaluator=flaky)
    with pytest.raises(ValueError, match="endpoint"):
        cache.evaluator("openai")
    ev = cache.evaluator("openai")
    assert cache.evaluator("openai") is ev and attempts == ["openai", "openai"]
    assert cache.evaluator("tiny-random") is not ev
    cache.clear()
    assert cache.evaluator("openai") is not ev


# -- the preset registry ----------------------------------------------------------------------


def test_one_registry_lists_segmenters_and_evaluators_for_the_command_and_the_form(capsys):
    from core.cli import main
    from core.evaluator.presets import LOADERS
    from core.models import config

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in config.PRESETS + config.EVALUATOR_PRESETS:
        assert name in text, name
    assert "tiny-random-lisa (alias tiny-random, random weights)" in text
    assert {e.backend for e in config.EVALUATOR_SPECS} <= set(LOADERS)
    fields = config.settings_fields()
    assert {n for t, n, _, _ in fields if t == "evaluator"} == {
        "internvl3-8b",
        "openai",
        "mini-geometric",
    }
    assert ("evaluator", "openai", "base_url", "OpenAI-compatible base URL") in fields
    assert config.evaluator_problems("internvl3-8b", {}) == [
        "internvl3-8b: model_path is not set (setting evaluator.internvl3-8b.model_path)"
    ]
    assert config.evaluator_problems("tiny-random", {}) == []
    assert "unknown evaluator preset" in config.evaluator_problems("gpt-9", {})[0]


def test_an_engine_runs_only_a_plan_it_prepared(filled_sqlite, fake):
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run

    plan = plan_run(filled_sqlite, RunRequest("fake", limit=1), LocalEngine(fake.cache))
    with pytest.raises(RuntimeError, match="plan made with this engine"):
        LocalEngine(fake.cache).run(filled_sqlite, plan)
