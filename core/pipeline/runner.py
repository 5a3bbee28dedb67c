"""The runner: load a preset's segmenter and run the pipeline over a store's samples.

Both front ends call it: ``rea2seg run`` (:mod:`core.cli.run`) and the app's run panel. Each
trace is saved in its own transaction, so a kill loses at most the sample in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def default_settings(segmenter, **overrides):
    """Paper defaults for the segmenter's backbone (App. B). For random weights the AMG filters
    are opened (0) and the model's own layer range is used, so every step still produces output
    to inspect; the trace records the settings used."""
    from core.pipeline.settings import Stage1Settings

    base = {}
    if segmenter.is_random:
        base = {"layers": None, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "seeds_total": 12, "k1": 12, "k2": 8}
    return Stage1Settings.for_backbone(segmenter.sam.kind, **{**base, **overrides})


@dataclass
class Segmenter:
    """A preset's prompt model and SAM backend, loaded together."""

    prompt_model: Any
    sam: Any
    preset: str
    is_random: bool


def canonical_preset(preset: str) -> str:
    """The preset's canonical name (aliases such as ``tiny-random`` resolved) when the model
    config module knows presets; the name unchanged otherwise."""
    try:
        from core.models.config import canonical_preset as canon
    except ModuleNotFoundError as exc:
        if exc.name != "core.models.config":
            raise
        return preset
    return canon(preset)


def load_segmenter(preset: str, device: str | None = None) -> Segmenter:
    """Load a preset's prompt model and SAM backend from the user config (local paths only):
    ``core.models.config.load_prompt_model`` and ``load_preset_sam``; the older
    ``core.models.presets.load_segmenter`` where that module is absent."""
    try:
        from core.models import config as model_config
    except ModuleNotFoundError as exc:
        if exc.name != "core.models.config":
            raise
        from core.models.presets import load_segmenter as legacy

        return legacy(preset, device=device)
    cfg = model_config.load_config()
    name = model_config.canonical_preset(preset)
    pm = model_config.load_prompt_model(name, cfg, device)
    sam = model_config.load_preset_sam(name, cfg, device)
    return Segmenter(pm, sam, name, bool(pm.is_random or sam.is_random))


class OutOfMemory(RuntimeError):
    """The device ran out of memory; the message says on which sample and what to try."""


def run_samples(store, segmenter, sample_ids: list[int], run_id: int, settings, *, progress=None, should_cancel=None,
                evaluator=None, cot: bool = True, group_size: int = 5, pad_last: bool = True, skipped: list[tuple[int, str]] | None = None) -> int:
    """Run stage 1 (and stage 2 when an ``evaluator`` is given) on each sample, saving each trace
    in its own transaction, so a kill loses at most the sample in flight. Returns the count.

    A sample whose image cannot be read is skipped and listed in ``skipped`` (sample id, reason);
    running out of device memory stops the run with :class:`OutOfMemory` (traces saved so far stay).
    """
    import torch

    from core.images import ImageError, load_image_rgb
    from core.pipeline.stage1 import Cancelled, run_stage1
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
            trace = run_stage1(segmenter.prompt_model, segmenter.sam, image, sample.question, settings,
                               preset=segmenter.preset, should_cancel=should_cancel,
                               is_sentence=getattr(sample, "is_sentence", None))
            if evaluator is not None:
                from core.evaluator.stage2 import run_stage2

                run_stage2(trace, image, evaluator, group_size=group_size, shuffle_seed=sid, cot=cot,
                           pad_last=pad_last)
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


def resumed_settings(run, overrides: dict):
    """The stage-1 settings a run was started with; a resumed run keeps them unchanged."""
    from core.pipeline.settings import Stage1Settings

    stored = (run.config or {}).get("stage1")
    if stored is None:
        raise ValueError(f"run {run.id} has no stored stage-1 settings; start a new run instead of --resume")
    settings = Stage1Settings.from_dict(stored)
    if overrides and Stage1Settings.from_dict({**settings.to_dict(), **overrides}) != settings:
        raise ValueError(f"--settings differ from those run {run.id} was started with; a resumed run keeps its "
                         "settings (start a new run without --resume to change them)")
    return settings


