"""The miniature: every model of the ``mini-geometric`` preset trained by one command on 2 CPU
cores within an hour (``rea2seg train miniature``).

Stages, in order, each in its own folder under the output and each skipped when a re-run finds
it finished with the same settings for it and every stage before it (``<stage>/DONE.json``
holding the same stage hash, :meth:`MiniatureConfig.stage_hash`):

1. ``split``: a geometric *training* split (seeds disjoint from evaluation,
   :mod:`core.training.splits`).
2. ``sam``: a small SAM from random weights (:func:`core.training.sam.train_sam`) — the paper
   freezes a pretrained SAM; none can be had here, so the miniature makes its own.
3. ``grounding``: a fresh small LLaVA with the split's vocabulary
   (:func:`core.training.generator.scratch_base`) trained on text-only grounding questions
   (``train generator --stage grounding``), which a from-scratch model needs before ``[SEG]``.
4. ``lisa``: LISA's recipe (App. B) on top, with the SAM of stage 2 frozen.
5. ``groups``: stage 1 of that segmenter over training scenes and its candidates exported as
   ``export evaluator-train`` does (``groups/train.jsonl``).
6. ``evaluator``: a small InternVL from random weights whose vocabulary can write scores
   (:func:`core.training.tiny_evaluator.build_tiny_scoring_internvl`) trained with LoRA on
   those groups (:func:`core.training.evaluator.train_evaluator`, :func:`_evaluator_stage`).

The result is ``<out>/models/`` — ``segmenter/`` (a LISA-layout folder the ``mini-geometric``
preset loads), ``evaluator/`` (an adapter directory holding its base in ``evaluator/base``,
which ``rea2seg run --evaluator`` and the ``mini-geometric`` evaluator preset load),
``MODEL_CARD.md`` and ``miniature.json`` (config, config hash, per-stage steps,
losses, minutes, sizes) — which is what ships as ``resources/models/mini-geometric/``.

:meth:`MiniatureConfig.config_hash` is a SHA-256 over the config's fields and
:data:`RECIPE_VERSION`. Library versions are recorded in ``miniature.json`` but not hashed, so
the shipped-files test does not fail on another install; bump :data:`RECIPE_VERSION` whenever a
change to the training code changes what the same config trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.training.evaluator_settings import EvaluatorTrainSettings
from core.training.generator_settings import GeneratorSettings
from core.training.sam_settings import SamTrainSettings
from core.training.splits import DEFAULT_TRAINING_SEED, check_training_seed

RECIPE_VERSION = 3  # 2: the evaluator stage trains an evaluator; 3: per-stage recipes below
"""Hashed with the config: bump when code changes what a given config trains in every stage."""
STAGE_RECIPES = {"split": 1, "sam": 1, "grounding": 1, "lisa": 1, "groups": 1, "evaluator": 2}
"""Each stage's own recipe version (evaluator 2: grid position embeddings in the random
InternViT, every weight trained): bump one when code changes what that stage trains; it and the
stages after it then re-run, the ones before are reused."""
STAGE_FIELDS = {
    "split": ("seed", "split_questions", "split_size_wh", "split_minutes", "minutes_scale"),
    "sam": ("sam", "sam_minutes"),
    "grounding": (
        "scratch_width",
        "scratch_layers",
        "scratch_image_size",
        "grounding",
        "grounding_minutes",
    ),
    "lisa": ("lisa", "lisa_minutes"),
    "groups": ("groups_minutes", "group_samples"),
    "evaluator": (
        "evaluator",
        "evaluator_minutes",
        "evaluator_width",
        "evaluator_layers",
        "evaluator_image_size",
    ),
}
"""The config fields each stage reads; a stage's hash covers its own and every earlier stage's."""
MAX_TOTAL_MINUTES = 60.0
MAX_MODEL_BYTES = 25_000_000
MODELS_SUBDIR = "models"
SEGMENTER_SUBDIR = "segmenter"
EVALUATOR_SUBDIR = "evaluator"
EVALUATOR_BASE = "base"  # the evaluator's base checkpoint, inside its adapter directory
CARD_FILE = "MODEL_CARD.md"
INFO_FILE = "miniature.json"
DONE_FILE = "DONE.json"
STARTED_FILE = "STARTED.json"  # the stage hash of a stage begun (and maybe interrupted)
STAGES = ("split", "sam", "grounding", "lisa", "groups", "evaluator")
MIN_SCALED_QUESTIONS = 12  # a scaled-down split still holds a few scenes of every kind

Progress = Callable[[str], None]


def _sam_defaults() -> SamTrainSettings:
    # FEASIBILITY's measured size (ViT width 128, 4 blocks, input 256); max_steps so that the
    # cosine decay about ends with the budget at ~45 steps/min (docs/training-generator.md)
    return SamTrainSettings(max_steps=600, warmup_steps=30, save_steps=100, logging_steps=10)


def _grounding_defaults() -> GeneratorSettings:
    # the measured grounding run (docs/training-generator.md): batch 16, lr 1e-3, every weight
    return GeneratorSettings(
        stage="grounding",
        lr=1e-3,
        warmup_steps=30,
        batch_size=16,
        grad_accum=1,
        max_steps=900,
        save_steps=100,
        logging_steps=10,
        bf16=False,
    )


def _lisa_defaults() -> GeneratorSettings:
    # App. B's recipe (lr, loss weights, LoRA, mix); batch, warm-up and length fit the budget
    return GeneratorSettings(
        stage="lisa",
        warmup_steps=30,
        batch_size=8,
        grad_accum=1,
        max_steps=600,
        save_steps=100,
        logging_steps=10,
        bf16=False,
    )


def _evaluator_defaults() -> EvaluatorTrainSettings:
    # measured (docs/miniature.md, "Teaching the small evaluator"): a random-init InternVL learns
    # to rank candidates only when every weight trains — the language model, the projector and
    # the output layer as modules_to_save, full-rank LoRA on the vision tower's first MLP layer
    # (PEFT needs one adapted module outside modules_to_save) — not with LoRA on a random
    # language model; no chain of thought (the groups carry none), one tile per picture, a
    # constant rate after warm-up because the run ends at its time budget
    return EvaluatorTrainSettings(
        stage=1,
        lora_rank=32,
        lora_alpha=32,
        lora_targets=r".*vision_tower.*\.fc1",
        lr=1e-3,
        lr_scheduler="constant_with_warmup",
        warmup=10,
        epochs=1000,  # nominal: the budget ends the run
        batch_size=8,
        save_steps=50,
        max_patches=1,
        cot_ratio=0.0,
        modules_to_save=("language_model", "multi_modal_projector", "lm_head"),
    )


@dataclass(frozen=True)
class MiniatureConfig:
    """Every setting of the miniature (module docstring). All numbers here are **not from the
    paper** except the LISA stage's recipe (lr, loss weights, LoRA, mix: App. B via
    :class:`GeneratorSettings`); they were chosen from the measurements in FEASIBILITY and
    ``docs/training-generator.md`` on 2 shared CPU cores.

    ``*_minutes`` are each stage's wall-clock budget (the split's is an estimate: it stops when
    made); they sum to at most :data:`MAX_TOTAL_MINUTES`. ``minutes_scale`` multiplies every
    budget and the split size (≥ :data:`MIN_SCALED_QUESTIONS`), so a test runs each stage for
    seconds; a scaled run has another hash and never ships."""

    seed: int = DEFAULT_TRAINING_SEED  # the split's seed; trainers take it too
    split_questions: int = 6000  # 2,000 scenes at 3 questions each
    split_size_wh: tuple[int, int] = (256, 192)
    split_minutes: float = 3.0  # measured: 508 scenes in 39 s at load ≈ 4 (nice 10)
    sam: SamTrainSettings = field(default_factory=_sam_defaults)
    sam_minutes: float = 13.0  # FEASIBILITY: held-out mIoU 0.85 after 12.5 min
    scratch_width: int = 128
    scratch_layers: int = 4
    scratch_image_size: int = 112  # an 8 × 8 token grid
    grounding: GeneratorSettings = field(default_factory=_grounding_defaults)
    grounding_minutes: float = 15.0
    lisa: GeneratorSettings = field(default_factory=_lisa_defaults)
    lisa_minutes: float = 15.0
    groups_minutes: float = 4.0  # stage 1 over training scenes and the export
    group_samples: int = 1000  # at most this many training questions run through stage 1
    evaluator: EvaluatorTrainSettings = field(default_factory=_evaluator_defaults)
    evaluator_minutes: float = 10.0  # train evaluator
    evaluator_width: int = 64  # the small InternVL's language model (bench/train_evaluator.py)
    evaluator_layers: int = 2
    evaluator_image_size: int = 112  # tiles of 112² in 14-pixel patches: 16 tokens a picture
    minutes_scale: float = 1.0

    def __post_init__(self) -> None:
        check_training_seed(self.seed)
        if self.grounding.stage != "grounding" or self.lisa.stage != "lisa":
            raise ValueError("grounding settings need stage 'grounding', lisa settings 'lisa'")
        if self.total_minutes > MAX_TOTAL_MINUTES + 1e-9:
            raise ValueError(
                f"the stage budgets sum to {self.total_minutes:g} min, over {MAX_TOTAL_MINUTES:g}"
            )
        if not 0 < self.minutes_scale <= 1:
            raise ValueError(f"minutes_scale must be in (0, 1], got {self.minutes_scale}")
        if self.split_questions < 1:
            raise ValueError(f"split_questions must be ≥ 1, got {self.split_questions}")

    @property
    def stage_minutes(self) -> dict[str, float]:
        """Each stage's budget in minutes, ``minutes_scale`` applied."""
        raw = {
            "split": self.split_minutes,
            "sam": self.sam_minutes,
            "grounding": self.grounding_minutes,
            "lisa": self.lisa_minutes,
            "groups": self.groups_minutes,
            "evaluator": self.evaluator_minutes,
        }
        return {k: v * self.minutes_scale for k, v in raw.items()}

    @property
    def total_minutes(self) -> float:
        return sum(self.stage_minutes.values()) / self.minutes_scale

    @property
    def scaled_group_samples(self) -> int:
        if self.minutes_scale == 1:
            return int(self.group_samples)
        return max(2, round(self.group_samples * self.minutes_scale))

    @property
    def scaled_questions(self) -> int:
        if self.minutes_scale == 1:
            return int(self.split_questions)
        return max(MIN_SCALED_QUESTIONS, round(self.split_questions * self.minutes_scale))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split_size_wh"] = list(self.split_size_wh)
        d["sam"] = self.sam.to_dict()
        d["grounding"] = self.grounding.to_dict()
        d["lisa"] = self.lisa.to_dict()
        d["evaluator"] = dataclasses.asdict(self.evaluator)
        return d

    def config_hash(self) -> str:
        """SHA-256 (hex) of the config's fields, :data:`RECIPE_VERSION` and
        :data:`STAGE_RECIPES` (module docstring)."""
        payload = {
            "recipe_version": RECIPE_VERSION,
            "stage_recipes": STAGE_RECIPES,
            "config": self.to_dict(),
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def stage_hash(self, stage: str) -> str:
        """SHA-256 (hex) of what ``stage`` and the stages before it read (:data:`STAGE_FIELDS`,
        their :data:`STAGE_RECIPES`, :data:`RECIPE_VERSION`): a finished stage whose hash is
        unchanged is reused by a re-run with another config."""
        d = self.to_dict()
        upto = STAGES[: STAGES.index(stage) + 1]
        payload = {
            "recipe_version": RECIPE_VERSION,
            "stages": {n: [STAGE_RECIPES[n], {f: d[f] for f in STAGE_FIELDS[n]}] for n in upto},
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- stages ---------------------------------------------------------------------------------


def _losses(stage_dir: Path) -> dict[str, Any]:
    from core.training.common import read_loss_curve

    curve = read_loss_curve(stage_dir)
    rows = [r for r in curve if "loss" in r]
    out: dict[str, Any] = {"logged": len(rows)}
    if rows:
        out.update(first=rows[0]["loss"], last=rows[-1]["loss"])
    means = [r["train_loss"] for r in curve if "train_loss" in r]
    if means:
        out["run_mean"] = means[-1]  # the Trainer's mean over the last (resumed) run
    return out


def _steps(stage_dir: Path, record: str) -> int | None:
    p = stage_dir / record
    if p.is_file():
        return json.loads(p.read_text(encoding="utf-8")).get("steps")
    return None


def _split_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    from core.training.splits import prepare_training_split

    info = prepare_training_split(
        d, cfg.scaled_questions, seed=cfg.seed, size_wh=tuple(cfg.split_size_wh)
    )
    return {"scenes": info.get("scenes"), "questions": cfg.scaled_questions, "seed": cfg.seed}


def _resume(d: Path) -> bool:
    from core.training.common import resume_checkpoint

    return resume_checkpoint(d) is not None  # an interrupted stage continues its checkpoint


def _sam_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    from core.training.sam import train_sam

    s = dataclasses.replace(cfg.sam, max_minutes=cfg.stage_minutes["sam"], seed=cfg.seed)
    path = train_sam(out / "split", d, s, resume=_resume(d), device="cpu", progress_bar=False)
    return {"steps": _steps(d, "training.json"), "losses": _losses(d), "file": path.name}


def _grounding_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    from core.training.generator import scratch_base, train_generator

    base = scratch_base(
        out / "split",
        d / "base",
        hidden=cfg.scratch_width,
        layers=cfg.scratch_layers,
        image_size=cfg.scratch_image_size,
        seed=cfg.seed % 2**31,
    )
    s = dataclasses.replace(
        cfg.grounding, max_minutes=cfg.stage_minutes["grounding"], seed=cfg.seed
    )
    model = train_generator(
        base, out / "split", d, s, resume=_resume(d), device="cpu", progress_bar=False
    )
    return {"steps": _steps(model, "training.json"), "losses": _losses(d)}


def _lisa_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    from core.training.generator import train_generator

    s = dataclasses.replace(cfg.lisa, max_minutes=cfg.stage_minutes["lisa"], seed=cfg.seed)
    model = train_generator(
        out / "grounding" / "model",
        out / "split",
        d,
        s,
        sam_checkpoint=out / "sam" / "sam.pth",
        resume=_resume(d),
        device="cpu",
        progress_bar=False,
    )
    return {"steps": _steps(model, "training.json"), "losses": _losses(d)}


def _groups_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    """Stage 1 of the ``lisa`` stage's segmenter over the split's training scenes, then its
    candidates grouped and labelled with their true IoU as ``export evaluator-train`` writes
    them (``groups/train.jsonl``): the evaluator's training data. Stops at its budget."""
    from core.cancel import Cancelled
    from core.evaluator.export import export_evaluator_train
    from core.importers.sgdr import import_sgdr
    from core.pipeline.cache import ModelCache
    from core.pipeline.engine import LocalEngine
    from core.pipeline.plan import RunRequest, plan_run
    from core.store.db import open_store

    # the budget counts the import and the model loading too
    t0, budget = time.monotonic(), 60.0 * cfg.stage_minutes["groups"]
    store = open_store(d / "store.sqlite")
    import_sgdr(store, out / "split" / "sgdr.json", dataset="miniature-train")
    presets = {"presets": {"mini-geometric": {"mllm_path": str(out / "lisa" / "model")}}}
    engine = LocalEngine(ModelCache(config=lambda: presets, device="cpu"))
    plan = plan_run(
        store, RunRequest("mini-geometric", resume=True, limit=cfg.scaled_group_samples), engine
    )
    try:
        done = [0]  # samples finished; one always runs, so a tiny budget still gives groups

        def finished(i: int, _total: int, _msg: str) -> None:
            done[0] = i

        engine.run(
            store,
            plan,
            progress=finished,
            should_cancel=lambda: done[0] >= 1 and time.monotonic() - t0 > budget,
        )
    except Cancelled:
        pass  # the budget is spent: export what was run
    stats = export_evaluator_train(store, plan.run_id, d / "train.jsonl")
    keep = ("samples", "groups", "mask_images", "samples_skipped")
    return {"run_id": plan.run_id, **{k: stats.get(k) for k in keep}}


def _evaluator_stage(cfg: MiniatureConfig, out: Path, d: Path) -> dict[str, Any]:
    """A small InternVL from random weights (its vocabulary: the score words, the split's words
    and the groups' question words) trained with LoRA on ``groups/train.jsonl`` within the stage's budget, then
    laid out as ``evaluator/model``: the adapter files plus ``base/``, its declaration naming
    ``base`` relative to itself (:func:`core.evaluator.adapter_dir.resolve_base`)."""
    from core.evaluator.adapter_dir import ADAPTER_INFO, read_adapter_info
    from core.evaluator.trainset import load_question_sets
    from core.training.evaluator import train_evaluator
    from core.training.generator_data import SceneBank, split_vocabulary
    from core.training.tiny_evaluator import build_tiny_scoring_internvl

    t0, budget = time.monotonic(), cfg.stage_minutes["evaluator"]
    data = out / "groups" / "train.jsonl"
    base = d / EVALUATOR_BASE
    if not (base / "config.json").is_file():
        # the split's words (as the scratch LLaVA's) and the groups' questions as written
        words = set(split_vocabulary(SceneBank(out / "split")))
        words |= {w for q in load_question_sets(data) for w in q.question.split()}
        build_tiny_scoring_internvl(
            base,
            words,
            seed=cfg.seed % 2**31,
            hidden=cfg.evaluator_width,
            layers=cfg.evaluator_layers,
            side=cfg.evaluator_image_size,
            patch=14,
        )
    left = max(budget - (time.monotonic() - t0) / 60.0, 1e-6)  # one step always runs
    s = dataclasses.replace(cfg.evaluator, max_minutes=left, seed=cfg.seed)
    adapter = d / "adapter"
    res = train_evaluator([data], base, adapter, s, resume=_resume(adapter))
    model = d / "model"
    if model.exists():
        shutil.rmtree(model)
    shutil.copytree(base, model / EVALUATOR_BASE)
    for name in ("adapter_config.json", "adapter_model.safetensors", ADAPTER_INFO):
        shutil.copy2(adapter / name, model / name)
    info = read_adapter_info(model)
    info["base"] = EVALUATOR_BASE  # relative to the adapter: the folder can move and ship
    (model / ADAPTER_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return {"steps": res.steps, "losses": _losses(adapter), "final_loss": res.final_loss}


_RUNNERS: dict[str, Callable[[MiniatureConfig, Path, Path], dict[str, Any]]] = {
    "split": _split_stage,
    "sam": _sam_stage,
    "grounding": _grounding_stage,
    "lisa": _lisa_stage,
    "groups": _groups_stage,
    "evaluator": _evaluator_stage,
}


def _read_done(d: Path, stage_hash: str) -> dict[str, Any] | None:
    """The stage's ``DONE.json`` when it was finished with the same settings (its stage hash),
    else ``None``. A folder begun or finished with other settings is moved aside (renamed
    ``<stage>.other-<its hash>``; nothing is deleted), so that the stage runs afresh."""
    made_by = None
    for name in (DONE_FILE, STARTED_FILE):
        p = d / name
        if p.is_file():
            made_by = json.loads(p.read_text(encoding="utf-8")).get("stage_hash")
            break
    if made_by == stage_hash:
        p = d / DONE_FILE
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
    if d.exists() and (made_by is not None or any(d.iterdir())):
        aside = d.with_name(f"{d.name}.other-{(made_by or 'unknown')[:12]}")
        n = 1
        while aside.exists():
            aside, n = d.with_name(f"{d.name}.other-{(made_by or 'unknown')[:12]}-{n}"), n + 1
        d.rename(aside)
    return None


# -- the whole run --------------------------------------------------------------------------


def _mtime(path: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "segment-anything"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _write_card(models: Path, info: dict[str, Any]) -> None:
    cfg = info["config"]
    st = info["stages"]
    lines = [
        "# mini-geometric: small models trained on the synthetic geometric split",
        "",
        "Made by `rea2seg train miniature` on CPU within a one-hour budget. They know only the",
        "project's rendered geometric scenes and are **not** the paper's models: the paper uses",
        "LISA-7B (a pretrained LLaVA) with a frozen pretrained SAM; none can be downloaded here,",
        "so the miniature makes its own SAM from random weights and its own small LLaVA from",
        "scratch, grounds it, then applies LISA's recipe (App. B). Its evaluator is a small",
        "InternVL from random weights trained with LoRA (no chain of thought) on that",
        "segmenter's candidates, not the paper's InternVL3-8B.",
        "",
        f"- config hash `{info['config_hash']}` (recipe version {info['recipe_version']}); "
        f"minutes scale {cfg['minutes_scale']}",
        f"- data: geometric training split, seed {cfg['seed']} (training seeds are disjoint from "
        f"every evaluation seed), {st.get('split', {}).get('scenes')} scenes, "
        f"{st.get('split', {}).get('questions')} questions at "
        f"{cfg['split_size_wh'][0]}×{cfg['split_size_wh'][1]}",
        f"- total wall-clock: {info['minutes']:.1f} min; models {info['model_bytes'] / 1e6:.1f} MB",
        "",
        "| stage | steps | loss (first → last) | minutes | note |",
        "|---|---|---|---|---|",
    ]
    for name in STAGES:
        s = st.get(name, {})
        loss = s.get("losses") or {}
        if "first" in loss:
            loss_txt = f"{loss['first']:.3f} → {loss['last']:.3f}"
        else:  # fewer steps than one logging interval
            loss_txt = f"mean {loss['run_mean']:.3f}" if "run_mean" in loss else ""
        steps = "" if s.get("steps") is None else s["steps"]
        note = s.get("skipped", "")
        if s.get("finished_at"):
            note = f"finished {s['finished_at']}"
        lines.append(f"| {name} | {steps} | {loss_txt} | {s.get('minutes', 0):.2f} | {note} |")
    lines += ["", "Every setting is in `miniature.json`."]
    (models / CARD_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_miniature(
    out_dir: str | Path,
    config: MiniatureConfig | None = None,
    progress: Progress | None = None,
) -> Path:
    """Run every stage (module docstring) under ``out_dir`` and return ``out_dir/models``.

    A stage finished by an earlier call with the same settings for it and the stages before it
    (:meth:`MiniatureConfig.stage_hash`) is skipped; one interrupted mid-training continues from
    its last checkpoint; a stage folder made with other settings is moved aside and the stage
    re-run (:func:`_read_done`). Raises ``ValueError`` when the models exceed
    :data:`MAX_MODEL_BYTES`. ``progress`` receives one line per stage."""
    cfg = config or MiniatureConfig()
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = cfg.config_hash()
    stages: dict[str, dict[str, Any]] = {}
    for name in STAGES:
        d = out / name
        sh = cfg.stage_hash(name)
        done = _read_done(d, sh)
        if done is not None:
            say(f"{name}: finished earlier, skipped")
            finished = done.get("finished_at") or _mtime(d / DONE_FILE)
            stages[name] = {
                **done["result"],
                "minutes": done["minutes"],
                "reused": True,
                "finished_at": finished,
            }
            continue
        say(f"{name}: running (budget {cfg.stage_minutes[name]:.2f} min)")
        t0 = time.monotonic()
        d.mkdir(parents=True, exist_ok=True)
        (d / STARTED_FILE).write_text(json.dumps({"stage_hash": sh}), encoding="utf-8")
        result = _RUNNERS[name](cfg, out, d)
        minutes = (time.monotonic() - t0) / 60.0
        finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        stages[name] = {**result, "minutes": minutes, "finished_at": finished}
        if "skipped" in result:
            say(f"{name}: {result['skipped']}")
            continue
        record = {
            "stage_hash": sh,
            "config_hash": h,
            "result": result,
            "minutes": minutes,
            "finished_at": finished,
        }
        (d / DONE_FILE).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        say(f"{name}: done in {minutes:.2f} min")

    models = out / MODELS_SUBDIR
    seg = models / SEGMENTER_SUBDIR
    if seg.exists():
        shutil.rmtree(seg)
    shutil.copytree(out / "lisa" / "model", seg)
    ev = models / EVALUATOR_SUBDIR
    if ev.exists():
        shutil.rmtree(ev)
    if (out / "evaluator" / "model").is_dir():
        shutil.copytree(out / "evaluator" / "model", ev)
    size = _dir_bytes(models)
    info = {
        "recipe_version": RECIPE_VERSION,
        "stage_recipes": STAGE_RECIPES,
        "config_hash": h,
        "config": cfg.to_dict(),
        "stages": stages,
        "minutes": sum(s.get("minutes", 0.0) for s in stages.values()),
        "model_bytes": size,
        "model_files": {
            str(p.relative_to(models)): p.stat().st_size
            for p in sorted(models.rglob("*"))
            if p.is_file() and p.name not in (INFO_FILE, CARD_FILE)
        },
        "versions": _versions(),
    }
    if size > MAX_MODEL_BYTES:
        raise ValueError(
            f"the miniature's models take {size / 1e6:.1f} MB, over {MAX_MODEL_BYTES / 1e6:.1f} MB"
        )
    (models / INFO_FILE).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    _write_card(models, info)
    say(f"wrote {models} ({size / 1e6:.1f} MB, config {h[:12]})")
    return models
