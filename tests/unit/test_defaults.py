"""Each default has one source: the paper's AMG thresholds live in Stage1Settings, the group size
in core.evaluator.grouping, per-user folders in core.paths."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _numbers(value: float) -> list[str]:
    hits = []
    for f in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) is float and node.value == value:
                hits.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    return hits


def test_the_papers_amg_thresholds_are_written_once():
    # 0.88: SAM's pred_iou_thresh and SAM2's stability_score_thresh (App. B)
    hits = _numbers(0.88)
    assert hits and all(h.startswith("core/pipeline/settings.py") for h in hits), hits


def test_backbone_defaults_are_the_papers():
    from core.pipeline.settings import Stage1Settings

    sam, sam2 = Stage1Settings.for_backbone("sam"), Stage1Settings.for_backbone("sam2")
    assert (sam.pred_iou_thresh, sam.stability_score_thresh, sam.tau, sam.delta) == (
        0.88,
        0.9,
        0.8,
        -15.0,
    )
    assert (sam2.pred_iou_thresh, sam2.stability_score_thresh, sam2.tau, sam2.delta) == (
        0.8,
        0.88,
        0.7,
        -10.0,
    )
    assert sam == Stage1Settings() and sam2.layers == (33,)


def test_step_defaults_follow_stage1_settings():
    from core.pipeline.amg import amg_settings, apply_budget, seed_amg
    from core.pipeline.settings import Stage1Settings

    d = Stage1Settings()
    assert inspect.signature(seed_amg).parameters["top_n"].default == d.top_n
    assert inspect.signature(apply_budget).parameters["top_n"].default == d.top_n
    assert amg_settings(d.pred_iou_thresh, d.stability_score_thresh) == d.amg()


def test_group_size_defaults_are_one_constant():
    from core.cli import build_parser
    from core.evaluator import export, grouping, stage2
    from core.pipeline.settings import Stage2Settings

    s = grouping.GROUP_SIZE
    assert s == 5  # App. B: groups of five
    for fn in (
        grouping.make_groups,
        stage2.run_stage2,
        export.export_evaluator_train,
    ):
        assert inspect.signature(fn).parameters["group_size"].default == s, fn
    assert Stage2Settings(None).group_size == s
    args = build_parser().parse_args(["run", "--db", "x", "--preset", "tiny-random"])
    assert args.group_size == s


def test_the_sam_backend_refuses_unknown_amg_settings():
    from core.models.sam_backend import _seed_amg

    with pytest.raises(ValueError, match="unknown AMG settings"):
        _seed_amg(object, None, None, None, [[1, 1]], {"pred_iou": 0.5})


def test_per_user_folders_come_from_core_paths(monkeypatch, tmp_path):
    from core.evaluator import presets
    from core.models import config

    monkeypatch.setenv("REA2SEG_HOME", str(tmp_path))
    monkeypatch.setenv("REA2SEG_CONFIG", "~/x.toml")
    assert config.config_path() == Path.home() / "x.toml"
    assert config._tiny_dir("tiny-random-lisa").parent == tmp_path / "tiny-random"
    src = inspect.getsource(presets.tiny_internvl_dir)
    assert "tiny_models_dir()" in src and "data_dir" not in src
