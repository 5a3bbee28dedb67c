"""``rea2seg run`` / ``rea2seg trace`` over a small store, with a hand-made prompt model and tiny SAM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.models.base import PromptModelOutput

pytestmark = pytest.mark.slow


class GridPromptModel:
    """Attention peaked on the token under the image centre; a 4x5 token grid over any image."""

    name = "grid-fake"
    is_random = True
    default_layers = [0]

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def encode(self, image_rgb, question, layers=None) -> PromptModelOutput:
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("model exploded")
        h, w = image_rgb.shape[:2]
        gh, gw = 4, 5
        ys, xs = np.mgrid[0:gh, 0:gw]
        cw, ch = w / gw, h / gh
        boxes = np.stack(
            [xs.ravel() * cw, ys.ravel() * ch, (xs.ravel() + 1) * cw, (ys.ravel() + 1) * ch], 1
        )
        att = np.full((1, 2, gh * gw), 0.01, np.float32)
        att[:, :, 12] = 0.8
        emb = np.random.default_rng(len(question)).standard_normal((1, 256)).astype(np.float32)
        return PromptModelOutput(
            emb, att, [0], (gh, gw), boxes.astype(np.float32), "[SEG]", "[SEG]"
        )


@pytest.fixture(scope="module")
def tiny_sam():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)


@pytest.fixture
def fake_preset(monkeypatch, tiny_sam):
    from core.models import config
    from core.models.base import ModelLoadError
    from core.pipeline import cache, plan

    made = []

    def load(preset, device=None, config=None):
        if preset != "fake":
            raise ModelLoadError(f"unknown preset {preset!r}")
        seg = cache.Segmenter(GridPromptModel(), tiny_sam, "fake", True)
        made.append(seg)
        return seg

    monkeypatch.setattr(cache, "load_segmenter", load)
    monkeypatch.setattr(plan, "canonical_preset", lambda p: p)
    monkeypatch.setattr(config, "PRESETS", (*config.PRESETS, "fake"))  # accepted by --preset
    return made


@pytest.fixture
def db(filled_sqlite):
    url = filled_sqlite.url
    filled_sqlite.close()
    return url


def _runs(db):
    from core.store import open_store, repo

    st = open_store(db)
    with st.session() as s:
        out = [
            (r.id, r.name, r.preset, repo.finished_sample_ids(s, r.id), r.config, r.is_random)
            for r in repo.list_runs(s)
        ]
    st.close()
    return out


def test_run_limit_resume_and_trace(db, fake_preset, capsys):
    from core.cli import main
    from core.pipeline.settings import Stage1Settings

    assert main(["run", "--db", db, "--preset", "fake", "--limit", "2", "--run-name", "first"]) == 0
    err = capsys.readouterr().err
    assert (
        "2/2" in err and "RANDOM WEIGHTS" in err
    )  # progress bar on stderr, random output labelled
    [(rid, name, preset, done, config, is_random)] = _runs(db)
    assert (name, preset, len(done), is_random) == ("first", "fake", 2, True)
    stored = Stage1Settings.from_dict(config["stage1"])
    assert stored.pred_iou_thresh == 0.0 and stored.layers is None  # random weights: filters opened

    # resume: the same run, only the samples not done yet, with the stored settings
    assert main(["run", "--db", db, "--preset", "fake", "--resume"]) == 0
    assert fake_preset[-1].prompt_model.calls == 2
    [(rid2, _, _, done, _, _)] = _runs(db)
    assert rid2 == rid and len(done) == 4
    capsys.readouterr()
    assert (
        main(
            ["run", "--db", db, "--preset", "fake", "--resume", "--settings", '{"k1": 5, "k2": 2}']
        )
        == 2
    )
    assert "differ" in capsys.readouterr().err

    assert main(["trace", "--db", db, "--sample", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sample_id"] == 3 and d["is_random"] and d["candidates"] and d["preset"] == "fake"
    assert d["attention"]["grid_hw"] == [4, 5] and d["seeds"]["topk1"][0]["index"] == 12
    assert main(["trace", "--db", db, "--sample", "3"]) == 0
    assert "RANDOM WEIGHTS" in capsys.readouterr().out


def test_run_selected_samples_in_a_new_run_and_bad_settings(db, fake_preset, capsys):
    from core.cli import main

    assert (
        main(
            [
                "run",
                "--db",
                db,
                "--preset",
                "fake",
                "--sample",
                "2",
                "4",
                "--settings",
                '{"k1": 6, "k2": 3}',
            ]
        )
        == 0
    )
    [(_, _, _, done, config, _)] = _runs(db)
    assert done == {2, 4} and config["stage1"]["k1"] == 6
    capsys.readouterr()
    assert main(["run", "--db", db, "--preset", "fake", "--settings", "{k1: 5}"]) == 2
    assert "--settings is not valid JSON" in capsys.readouterr().err
    assert main(["run", "--db", db, "--preset", "fake", "--settings", '{"kappa": 5}']) == 2
    assert "unknown stage-1 settings: ['kappa']" in capsys.readouterr().err
    assert main(["trace", "--db", db, "--sample", "1"]) == 1
    assert "no saved trace" in capsys.readouterr().err


def test_each_trace_is_saved_in_its_own_transaction(db, fake_preset, monkeypatch):
    from core.cli import main
    from core.pipeline import cache

    real = cache.load_segmenter

    def failing(preset, device=None, config=None):
        seg = real(preset, device)
        seg.prompt_model.fail_on = 3
        return seg

    monkeypatch.setattr(cache, "load_segmenter", failing)
    with pytest.raises(RuntimeError, match="exploded"):
        main(["run", "--db", db, "--preset", "fake"])
    [(_, _, _, done, _, _)] = _runs(db)
    assert done == {1, 2}  # the two samples before the failure stay saved
    monkeypatch.setattr(cache, "load_segmenter", real)
    assert main(["run", "--db", db, "--preset", "fake", "--resume"]) == 0
    [(_, _, _, done, _, _)] = _runs(db)
    assert done == {1, 2, 3, 4}


def test_presets_load_through_the_model_config(monkeypatch, tmp_path):
    from core.models.base import ModelLoadError
    from core.models.config import canonical_preset
    from core.pipeline.cache import load_segmenter

    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "none.toml"))
    assert canonical_preset("tiny-random") == "tiny-random-lisa"
    with pytest.raises(ModelLoadError, match="lisa-7b: mllm_path is not set"):
        load_segmenter("lisa-7b")
