"""Running a planned run: one step per sample (:func:`process_sample`), the :class:`Engine`
protocol every way of running implements, its one :class:`RunReport`, and the local engine.

A run goes *plan → engine → report*::

    engine = LocalEngine()                                   # or RayEngine(RayOptions(...))
    plan = plan_run(store, RunRequest("tiny-random"), engine)  # core.pipeline.plan
    report = engine.run(store, plan, progress=..., should_cancel=...)

:func:`core.pipeline.plan.plan_run` asks the engine to :meth:`~Engine.prepare` the models (it
loads them, or starts workers that do, and raises when they cannot load) before the run row is
written; :meth:`~Engine.run` then processes the plan's samples and saves each trace in its own
transaction. Both engines call :func:`process_sample` for the work on one sample, so a trace
does not depend on where it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from core.evaluator.prompt import MAX_PATCHES
from core.pipeline.settings import Stage1Settings, Stage2Settings

if TYPE_CHECKING:
    from core.pipeline.cache import ModelCache, Segmenter
    from core.pipeline.plan import RunPlan
    from core.trace import PipelineTrace

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: called after each sample (``label`` is its external id,
with `` skipped`` / `` failed`` appended when it was)."""


class OutOfMemory(RuntimeError):
    """The device ran out of memory; the message says on which sample and what to try."""


class EngineError(RuntimeError):
    """The engine cannot run the job (no resources, workers that keep dying); one line."""


@dataclass(frozen=True)
class ModelInfo:
    """What a run records about its models, as an engine loaded them (:meth:`Engine.prepare`).

    ``preset``: the segmenter preset's canonical name; ``sam_kind``: ``"sam"`` or ``"sam2"``
    (which paper defaults apply, App. B); ``segmenter_is_random``: random weights in the
    segmenter (its settings open the filters); ``mllm`` / ``sam`` / ``evaluator``: model ids
    (``evaluator`` ``None`` for stage 1 only); ``evaluator_is_random``; ``prompt_format``: the
    prompt format the evaluator was trained on, when it declares one; ``max_patches``: the tiles
    its groups share (part of the format it sends).
    """

    preset: str
    sam_kind: str
    segmenter_is_random: bool
    mllm: str
    sam: str
    evaluator: str | None = None
    evaluator_is_random: bool = False
    prompt_format: str | None = None
    max_patches: int = MAX_PATCHES

    @property
    def is_random(self) -> bool:
        """Any model with random weights (the run's output is noise)."""
        return bool(self.segmenter_is_random or self.evaluator_is_random)

    @property
    def model_ids(self) -> dict[str, str | None]:
        return {"mllm": self.mllm, "sam": self.sam, "evaluator": self.evaluator}

    @classmethod
    def of(cls, segmenter: Segmenter, evaluator: Any = None) -> ModelInfo:
        """From loaded models (a :class:`core.pipeline.cache.Segmenter` and an optional
        :class:`core.evaluator.base.MaskEvaluator`)."""
        return cls(
            preset=segmenter.preset,
            sam_kind=str(segmenter.sam.kind),
            segmenter_is_random=bool(segmenter.is_random),
            mllm=str(segmenter.prompt_model.name),
            sam=str(segmenter.sam.name),
            evaluator=None if evaluator is None else str(evaluator.name),
            evaluator_is_random=bool(evaluator is not None and evaluator.is_random),
            prompt_format=getattr(evaluator, "prompt_format", None) or None,
            max_patches=int(getattr(evaluator, "max_patches", MAX_PATCHES)),
        )


@dataclass
class RunReport:
    """What an engine did with a plan: traces ``saved``; samples ``skipped`` (unreadable image)
    and ``failed`` (after any retry), each ``(sample id, reason)``; workers ``replaced`` (Ray);
    ``cancelled`` when ``should_cancel`` stopped it (the sample in flight is dropped)."""

    saved: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    replaced: int = 0
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Nothing skipped and nothing failed."""
        return not self.skipped and not self.failed


@runtime_checkable
class Engine(Protocol):
    """A way of running a plan: in this process (:class:`LocalEngine`) or on a Ray cluster
    (:class:`core.pipeline.ray_engine.RayEngine`)."""

    def prepare(self, preset: str, stage2: Stage2Settings) -> ModelInfo:
        """Load the preset's segmenter and ``stage2.evaluator`` (or start workers that do);
        raise when they cannot load. Writes nothing to any store."""
        ...

    def record(self) -> dict[str, Any]:
        """What the run's config records about this engine (under ``engines``)."""
        ...

    def summary(self) -> str:
        """A few words on where the run goes (``""`` for this process)."""
        ...

    def run(
        self,
        store: Any,
        plan: RunPlan,
        *,
        progress: Progress | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> RunReport:
        """Process ``plan.todo``, saving each trace in ``plan.run_id`` in its own transaction."""
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` started (workers); loaded models may stay cached."""
        ...


# -- one sample ---------------------------------------------------------------------------------


def process_sample(
    segmenter: Segmenter,
    image_rgb: np.ndarray,
    question: str,
    settings: Stage1Settings,
    *,
    evaluator: Any = None,
    stage2: Stage2Settings | None = None,
    sample_id: int = 0,
    is_sentence: bool | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> PipelineTrace:
    """Stage 1 (§4.2) on one image and question, then stage 2 (§4.3) when an ``evaluator`` is
    given; returns the trace (nothing is saved).

    ``segmenter``: a :class:`core.pipeline.cache.Segmenter`; ``image_rgb``: uint8 (H, W, 3) RGB;
    ``settings``: the run's stage-1 settings; ``evaluator``: a loaded
    :class:`core.evaluator.base.MaskEvaluator` or ``None`` (stage 1 only); ``stage2``: how it
    scores (default :class:`Stage2Settings`); ``sample_id``: seeds the candidate shuffle of
    stage 2 (a run is reproducible); ``is_sentence``: the sample's ReasonSeg flag (LISA's query
    wording). ``should_cancel()`` is polled before each step and raises
    :class:`core.cancel.Cancelled`; running out of device memory raises
    ``torch.OutOfMemoryError`` (the engine decides what that means for the run).
    """
    from core.pipeline.stage1 import run_stage1

    trace = run_stage1(
        segmenter.prompt_model,
        segmenter.sam,
        image_rgb,
        question,
        settings,
        preset=segmenter.preset,
        is_sentence=is_sentence,
        should_cancel=should_cancel,
    )
    if evaluator is not None:
        score_sample(trace, image_rgb, evaluator, stage2 or Stage2Settings(), sample_id=sample_id)
    return trace


def score_sample(
    trace: PipelineTrace,
    image_rgb: np.ndarray,
    evaluator: Any,
    stage2: Stage2Settings,
    *,
    sample_id: int = 0,
) -> None:
    """Stage 2 on a stage-1 ``trace`` as a run scores it: groups of ``stage2.group_size``,
    shuffled with ``sample_id`` as the seed; sets ``trace.evaluator``."""
    from core.evaluator.stage2 import run_stage2

    run_stage2(
        trace,
        image_rgb,
        evaluator,
        group_size=stage2.group_size,
        shuffle_seed=sample_id,
        cot=stage2.cot,
        pad_last=stage2.pad_last,
    )


# -- the local engine ---------------------------------------------------------------------------


class LocalEngine:
    """Runs a plan in this process, one sample after another, with models from a
    :class:`core.pipeline.cache.ModelCache` (the caller's, e.g. the GUI's, so a second run reuses
    the loaded segmenter and evaluator; or a new one, with ``device`` overriding the presets').

    A sample whose image cannot be read is skipped; running out of device memory stops the run
    with :class:`OutOfMemory` (traces saved so far stay); any other error propagates. Safe to
    call from a worker thread (the store opens one session per transaction).
    """

    def __init__(self, models: ModelCache | None = None, *, device: str | None = None) -> None:
        if models is None:
            from core.pipeline.cache import ModelCache

            models = ModelCache(device=device)
        self.models = models
        self.segmenter: Segmenter | None = None
        self.evaluator: Any = None
        self.info: ModelInfo | None = None

    def prepare(self, preset: str, stage2: Stage2Settings) -> ModelInfo:
        self.segmenter = self.models.segmenter(preset)
        self.evaluator = self.models.evaluator(stage2.evaluator) if stage2.evaluator else None
        self.info = ModelInfo.of(self.segmenter, self.evaluator)
        return self.info

    def record(self) -> dict[str, Any]:
        return {"engine": "local", "workers": 1}

    def summary(self) -> str:
        return ""

    def close(self) -> None:
        pass  # the models stay in the cache for the next run

    def run(
        self,
        store: Any,
        plan: RunPlan,
        *,
        progress: Progress | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> RunReport:
        import torch

        from core.cancel import Cancelled
        from core.images import ImageError, load_image_rgb
        from core.store import repo

        if self.info is None or self.info != plan.models:
            raise RuntimeError("run() takes a plan made with this engine (plan_run prepares it)")
        report = RunReport()
        total = len(plan.todo)
        for i, sid in enumerate(plan.todo):
            if should_cancel is not None and should_cancel():
                report.cancelled = True
                break
            sample = store.run(lambda s, sid=sid: repo.get_sample(s, sid), write=False)
            try:
                image = load_image_rgb(repo.image_path(sample))
            except ImageError as exc:
                report.skipped.append((sid, str(exc)))
                if progress is not None:
                    progress(i + 1, total, f"{sample.external_id} skipped")
                continue
            try:
                trace = process_sample(
                    self.segmenter,
                    image,
                    sample.question,
                    plan.settings,
                    evaluator=self.evaluator,
                    stage2=plan.stage2,
                    sample_id=sid,
                    is_sentence=getattr(sample, "is_sentence", None),
                    should_cancel=should_cancel,
                )
            except Cancelled:
                report.cancelled = True  # the sample in flight is dropped; the saved ones stay
                break
            except torch.OutOfMemoryError as exc:
                raise OutOfMemory(
                    f"out of device memory on sample {sid} ({image.shape[1]}x{image.shape[0]} px); "
                    f"{report.saved} traces were saved. Free the device, use --device cpu, or a "
                    "smaller evaluator group size, and run again with --resume."
                ) from exc
            store.run(lambda s, sid=sid, trace=trace: repo.save_trace(s, plan.run_id, sid, trace))
            report.saved += 1
            if progress is not None:
                progress(i + 1, total, sample.external_id)
        return report
