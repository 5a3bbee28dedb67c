"""Planning a run: what to run, on which samples, with which settings — decided, checked and
recorded before any sample is processed.

:func:`plan_run` is the one way a run starts (``rea2seg run``, ``--engine ray`` and the app's run
panel all call it)::

    engine = LocalEngine()
    plan = plan_run(store, RunRequest("tiny-random", stage2=Stage2Settings("tiny-random")), engine)
    report = engine.run(store, plan)          # core.pipeline.engine

Everything that can refuse a run is checked before the run row is written: the stage-1
overrides, a resumed run's stored settings, the presets, the checkpoints and the evaluator
(loaded by :meth:`Engine.prepare <core.pipeline.engine.Engine.prepare>`), the evaluator's
declared prompt format, the settings' values. A refused run leaves the store unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.models.config import canonical_preset, preset_stage1
from core.pipeline.engine import Engine, ModelInfo
from core.pipeline.settings import Stage1Settings, Stage2Settings, run_defaults

__all__ = ["RunPlan", "RunRequest", "plan_run", "resumed_settings"]


@dataclass(frozen=True)
class RunRequest:
    """What a caller asks for.

    ``preset``: the segmenter preset (name or alias). ``stage2``: the evaluator and how it scores
    (``Stage2Settings()``: stage 1 only). ``overrides``: stage-1 settings replacing the run's
    defaults (field names of :class:`Stage1Settings`). ``samples``: sample ids (``int``) or
    references as users type them (``str``: a numeric id, an SGDR id or ``#N``); ``None`` means
    every sample of the store, filtered by ``status`` and ``category``. ``resume``: continue the
    latest run of this preset, with its stored stage-1 settings (a new run when there is none).
    ``limit``: at most this many samples, after those already done. ``name``: the new run's name
    (default ``"<preset>[ + <evaluator>] <YYYY-mm-dd HH:MM>"``).
    """

    preset: str
    stage2: Stage2Settings = field(default_factory=Stage2Settings)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    samples: Sequence[int | str] | None = None
    status: str | None = None
    category: str | None = None
    resume: bool = False
    limit: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.overrides) - set(Stage1Settings.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown stage-1 settings: {sorted(unknown)}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be 0 or more, got {self.limit}")


@dataclass(frozen=True)
class RunPlan:
    """A run that is recorded and ready for an engine.

    ``run_id``: its row in the store (new, or the resumed run's); ``preset``: canonical segmenter
    preset; ``todo``: sample ids to process, in order; ``done``: samples of this run already
    done when it was planned; ``settings`` / ``stage2``: how each sample is processed;
    ``models``: what the engine loaded; ``resumed``: an earlier run is continued.
    """

    run_id: int
    preset: str
    todo: tuple[int, ...]
    done: int
    settings: Stage1Settings
    stage2: Stage2Settings
    models: ModelInfo
    resumed: bool = False

    @property
    def is_random(self) -> bool:
        """Some model has random weights: the run's output is noise, not a result."""
        return self.models.is_random


def plan_run(store: Any, request: RunRequest, engine: Engine) -> RunPlan:
    """Check ``request``, load its models through ``engine``, then record the run in ``store``
    and return its plan.

    In order: the samples are resolved (an unknown reference is a ``LookupError``), a resumed
    run's stored settings are compared with the overrides (``ValueError`` when they differ),
    ``engine.prepare`` loads the segmenter and the evaluator (their own errors, e.g.
    :class:`core.models.base.ModelLoadError`), the evaluator's trained prompt format is checked
    against ``stage2.cot`` and the settings' values are validated (``ValueError``). Only then is
    the run row created — or, for a resumed run, the engine appended to its ``engines`` — so a
    refused run leaves the store as it was.
    """
    from core.store import repo

    preset = canonical_preset(request.preset)
    with store.session(write=False) as s:
        ids = _sample_ids(s, request)
        run = repo.latest_run(s, preset) if request.resume else None
        resumed = None if run is None else (run.id, resumed_settings(run, request.overrides))
    info = engine.prepare(preset, request.stage2)
    if info.evaluator is not None:
        from core.evaluator.stage2 import check_prompt_format

        check_prompt_format(
            info.evaluator, info.prompt_format, request.stage2.cot, info.max_patches
        )
    record = engine.record()
    if resumed is None:
        overrides = {**preset_stage1(preset), **request.overrides}
        settings = run_defaults(info.sam_kind, info.segmenter_is_random, **overrides)
        run_id = store.run(lambda s: _create_run(s, request, info, settings, record))
    else:
        run_id, settings = resumed
        store.run(lambda s: _add_engine(s, run_id, record))
    with store.session(write=False) as s:
        finished = repo.finished_sample_ids(s, run_id)
    todo = [i for i in ids if i not in finished]
    if request.limit is not None:
        todo = todo[: request.limit]
    return RunPlan(
        run_id=run_id,
        preset=info.preset,
        todo=tuple(todo),
        done=len(finished),
        settings=settings,
        stage2=request.stage2,
        models=info,
        resumed=resumed is not None,
    )


def resumed_settings(run: Any, overrides: Mapping[str, Any]) -> Stage1Settings:
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


def _sample_ids(s: Any, request: RunRequest) -> list[int]:
    from core.store import repo

    if request.samples is None:
        return [
            x.id for x in repo.list_samples(s, status=request.status, category=request.category)
        ]
    ids = [
        int(ref) if isinstance(ref, int) else repo.find_sample(s, ref).id for ref in request.samples
    ]
    return list(dict.fromkeys(ids))


def _create_run(
    s: Any,
    request: RunRequest,
    info: ModelInfo,
    settings: Stage1Settings,
    record: dict[str, Any],
) -> int:
    """The run row: ``{"stage1", "stage2", "engines"}`` as its config (what a resumed run reads
    back), the model ids and ``is_random``."""
    from core.store import repo

    ev = request.stage2.evaluator
    name = (
        request.name or f"{info.preset}{' + ' + ev if ev else ''} {time.strftime('%Y-%m-%d %H:%M')}"
    )
    config = {
        "stage1": settings.to_dict(),
        "stage2": request.stage2.to_dict(),
        "engines": [record],
    }
    return repo.create_run(
        s,
        name=name,
        preset=info.preset,
        config=config,
        model_ids=info.model_ids,
        is_random=info.is_random,
    )


def _add_engine(s: Any, run_id: int, record: dict[str, Any]) -> None:
    from core.store import repo

    r = repo.get_run(s, run_id)
    r.config = {**r.config, "engines": [*r.config.get("engines", []), record]}
