"""The runner: load a preset's segmenter, create a run and run the pipeline over a store's samples.

Both front ends call it — ``rea2seg run`` (:mod:`core.cli.run`) and the app's run panel — so a
run started from either is stored the same way. The call order is::

    seg = load_segmenter("tiny-random-lisa")           # or ModelCache.segmenter(...)
    settings = default_settings(seg, k1=40)            # Stage1Settings (paper defaults, App. B)
    run_id = create_run(store, seg, settings, stage2=Stage2Settings("tiny-random"), evaluator=ev)
    n = run_samples(store, seg, sample_ids, run_id, settings, evaluator=ev, cot=True, group_size=5)

Each trace is saved in its own transaction, so a kill loses at most the sample in flight; a
resumed run keeps the settings it was started with (:func:`resumed_settings`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from core.evaluator.grouping import GROUP_SIZE
from core.models.config import (
    canonical_preset,
    load_config,
    load_preset_sam,
    load_prompt_model,
    preset_spec,
)
from core.pipeline.settings import Stage1Settings

__all__ = [
    "OutOfMemory",
    "Segmenter",
    "Stage2Settings",
    "canonical_preset",
    "create_run",
    "default_settings",
    "load_segmenter",
    "preset_default_settings",
    "record_run",
    "resumed_settings",
    "run_samples",
]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: called after each sample (``label`` is its external id)."""

# For random weights the AMG filters are opened and fewer seeds are drawn, so every step still
# produces output to inspect (not from the paper; recorded in the run's stored settings).
RANDOM_WEIGHT_OVERRIDES: dict[str, Any] = {
    "layers": None,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "seeds_total": 12,
    "k1": 12,
    "k2": 8,
}


@dataclass(frozen=True)
class Segmenter:
    """A preset's prompt model (:class:`core.models.base.PromptModel`) and SAM backend
    (:class:`core.models.base.SamBackend`), loaded together. ``preset`` is the canonical name;
    ``is_random`` is true when either model has random weights (its output is noise)."""

    prompt_model: Any
    sam: Any
    preset: str
    is_random: bool


@dataclass(frozen=True)
class Stage2Settings:
    """How stage 2 (§4.3) is run: ``evaluator`` preset name (``None`` = stage 1 only), ``cot``
    (chain of thought before the scores), ``group_size`` (s, masks per evaluator group, 5) and
    ``pad_last`` (pad a short last group with candidates of earlier groups; not from the paper)."""

    evaluator: str | None = None
    cot: bool = True
    group_size: int = GROUP_SIZE
    pad_last: bool = True

    def __post_init__(self) -> None:
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OutOfMemory(RuntimeError):
    """The device ran out of memory; the message says on which sample and what to try."""


def load_segmenter(
    preset: str, device: str | None = None, config: dict[str, Any] | None = None
) -> Segmenter:
    """Load a preset's prompt model and SAM backend from local paths only.

    ``preset``: a preset name or alias (``tiny-random`` → ``tiny-random-lisa``); ``device``
    overrides the preset's ``device`` setting; ``config``: the parsed user config (default: the
    config file, :func:`core.models.config.load_config`). Raises
    :class:`core.models.base.ModelLoadError` naming every bad file and its setting.
    To share one SAM between runs and click refinement, use :class:`core.pipeline.cache.ModelCache`.
    """
    cfg = load_config() if config is None else config
    name = canonical_preset(preset)
    pm = load_prompt_model(name, cfg, device)
    sam = load_preset_sam(name, cfg, device)
    return Segmenter(pm, sam, name, bool(pm.is_random or sam.is_random))


def _defaults(backbone: str, is_random: bool, overrides: dict[str, Any]) -> Stage1Settings:
    base = RANDOM_WEIGHT_OVERRIDES if is_random else {}
    return Stage1Settings.for_backbone(backbone, **{**base, **overrides})


def default_settings(segmenter: Segmenter, **overrides: Any) -> Stage1Settings:
    """Paper defaults for the segmenter's backbone (App. B) with ``overrides`` applied. For random
    weights :data:`RANDOM_WEIGHT_OVERRIDES` apply first (not from the paper); the run stores the
    settings used."""
    return _defaults(segmenter.sam.kind, bool(segmenter.is_random), overrides)


def preset_default_settings(preset: str, **overrides: Any) -> Stage1Settings:
    """The settings :func:`default_settings` gives once ``preset`` is loaded, without loading it
    (for showing a preset's defaults)."""
    spec = preset_spec(preset)
    return _defaults(spec.sam_kind, spec.is_random, overrides)


def create_run(
    store,
    segmenter: Segmenter,
    settings: Stage1Settings,
    *,
    stage2: Stage2Settings | None = None,
    evaluator: Any = None,
    name: str | None = None,
    engine: dict[str, Any] | None = None,
) -> int:
    """Create a run in ``store`` for loaded models and return its id (see :func:`record_run`).

    ``evaluator``: the loaded :class:`core.evaluator.base.MaskEvaluator` of ``stage2.evaluator``
    (``None`` for stage 1 only); the model ids and ``is_random`` are read from the models.
    """
    model_ids = {
        "mllm": segmenter.prompt_model.name,
        "sam": segmenter.sam.name,
        "evaluator": evaluator.name if evaluator is not None else None,
    }
    is_random = bool(segmenter.is_random or (evaluator is not None and evaluator.is_random))
    return record_run(
        store,
        segmenter.preset,
        model_ids,
        is_random,
        settings,
        stage2=stage2,
        name=name,
        engine=engine,
    )


def record_run(
    store,
    preset: str,
    model_ids: dict[str, str | None],
    is_random: bool,
    settings: Stage1Settings,
    *,
    stage2: Stage2Settings | None = None,
    name: str | None = None,
    engine: dict[str, Any] | None = None,
) -> int:
    """Create a run from what its models are, loaded here or on other machines, and return its id.

    The run stores ``{"stage1": settings, "stage2": stage2}`` as its config (what
    :func:`resumed_settings` reads back), the model ids (``mllm``, ``sam``, ``evaluator``) and
    ``is_random`` (any model with random weights). ``name`` defaults to
    ``"<preset>[ + <evaluator>] <YYYY-mm-dd HH:MM>"``. ``engine``: how the run is executed (e.g.
    ``{"engine": "local", "workers": 1}``), kept under ``config["engines"]``.
    """
    from core.store import repo

    stage2 = stage2 or Stage2Settings()
    if name is None:
        name = f"{preset}{' + ' + stage2.evaluator if stage2.evaluator else ''} {time.strftime('%Y-%m-%d %H:%M')}"
    config: dict[str, Any] = {"stage1": settings.to_dict(), "stage2": stage2.to_dict()}
    if engine is not None:
        config["engines"] = [engine]
    return store.run(
        lambda s: repo.create_run(
            s,
            name=name,
            preset=preset,
            config=config,
            model_ids=dict(model_ids),
            is_random=bool(is_random),
        )
    )


def run_samples(
    store,
    segmenter: Segmenter,
    sample_ids: list[int],
    run_id: int,
    settings: Stage1Settings,
    *,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    evaluator: Any = None,
    cot: bool = True,
    group_size: int = GROUP_SIZE,
    pad_last: bool = True,
    skipped: list[tuple[int, str]] | None = None,
) -> int:
    """Run stage 1 (and stage 2 when an ``evaluator`` is given) on each sample, saving each trace
    in its own transaction, so a kill loses at most the sample in flight. Returns the count saved.

    ``should_cancel()`` is polled before each sample and each step; cancelling drops the sample in
    flight and returns. A sample whose image cannot be read is skipped and listed in ``skipped``
    (sample id, reason); running out of device memory stops the run with :class:`OutOfMemory`
    (traces saved so far stay). Safe to call from a worker thread (the store opens one session per
    transaction).
    """
    import torch

    from core.cancel import Cancelled
    from core.images import ImageError, load_image_rgb
    from core.pipeline.stage1 import run_stage1
    from core.store import repo

    done = 0
    for i, sid in enumerate(sample_ids):
        if should_cancel is not None and should_cancel():
            break
        sample = store.run(lambda s, sid=sid: repo.get_sample(s, sid), write=False)
        try:
            image = load_image_rgb(repo.image_path(sample))
        except ImageError as exc:
            if skipped is not None:
                skipped.append((sid, str(exc)))
            if progress is not None:
                progress(i + 1, len(sample_ids), f"{sample.external_id} skipped")
            continue
        try:
            trace = run_stage1(
                segmenter.prompt_model,
                segmenter.sam,
                image,
                sample.question,
                settings,
                preset=segmenter.preset,
                should_cancel=should_cancel,
                is_sentence=getattr(sample, "is_sentence", None),
            )
            if evaluator is not None:
                from core.evaluator.stage2 import run_stage2

                run_stage2(
                    trace,
                    image,
                    evaluator,
                    group_size=group_size,
                    shuffle_seed=sid,
                    cot=cot,
                    pad_last=pad_last,
                )
        except Cancelled:
            break  # the sample in flight is dropped; everything saved so far stays
        except torch.OutOfMemoryError as exc:
            raise OutOfMemory(
                f"out of device memory on sample {sid} ({image.shape[1]}x{image.shape[0]} px); {done} traces were saved. "
                "Free the device, use --device cpu, or a smaller evaluator group size, and run again with --resume."
            ) from exc
        store.run(lambda s, sid=sid, trace=trace: repo.save_trace(s, run_id, sid, trace))
        done += 1
        if progress is not None:
            progress(i + 1, len(sample_ids), sample.external_id)
    return done


def resumed_settings(run, overrides: dict[str, Any]) -> Stage1Settings:
    """The stage-1 settings ``run`` (a :class:`core.store.models.Run`) was started with; a resumed
    run keeps them unchanged, so ``overrides`` that change them are a ``ValueError``."""
    stored = (run.config or {}).get("stage1")
    if stored is None:
        raise ValueError(
            f"run {run.id} has no stored stage-1 settings; start a new run instead of --resume"
        )
    settings = Stage1Settings.from_dict(stored)
    if overrides and Stage1Settings.from_dict({**settings.to_dict(), **overrides}) != settings:
        raise ValueError(
            f"--settings differ from those run {run.id} was started with; a resumed run keeps its "
            "settings (start a new run without --resume to change them)"
        )
    return settings
