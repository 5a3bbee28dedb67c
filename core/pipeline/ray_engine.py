"""The Ray engine: the same run as :class:`core.pipeline.engine.LocalEngine`, spread over the
GPUs of one machine or a Ray cluster (not from the paper: an execution choice, recorded in the
run's config under ``engines``). It implements :class:`core.pipeline.engine.Engine`:
``prepare`` starts the workers (which load the models), ``run`` processes a plan.

Each worker is a Ray actor that loads the preset's models once, through
:func:`core.pipeline.cache.load_segmenter` and :func:`core.evaluator.presets.load_evaluator`,
and calls :func:`core.pipeline.engine.process_sample` (stage 1, and stage 2 unless an evaluator
pool is asked for) on one sample at a time, as the local engine does. Image
files travel as their encoded bytes in Ray's object store, so the workers need no shared file
system; traces come back to the driver, which saves each one in its own transaction: the store
keeps a single writer, and a kill loses at most the samples in flight.

Failures: a worker that dies is replaced and each sample it had in flight is tried once more
(``retries``), then listed as failed; out of device memory, or an error in the model code, on one
sample fails that sample the same way while the other workers go on. A sample whose image cannot
be read is skipped, as in the local run.

Ray is imported only here, and only when a run asks for this engine.
"""

from __future__ import annotations

import importlib
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.evaluator.prompt import MAX_PATCHES
from core.images import ImageError, read_image_bytes
from core.pipeline.engine import EngineError, ModelInfo, RunReport
from core.pipeline.ray_health import gcs_answers, raylet_answers
from core.pipeline.settings import Stage1Settings, Stage2Settings

if TYPE_CHECKING:
    from core.pipeline.plan import RunPlan

__all__ = ["EngineError", "JobSpec", "RayEngine", "RayOptions"]

DEFAULT_LOADER = "core.pipeline.cache:load_segmenter"
# The driver's per-user settings that decide which models a worker loads; forwarded to the
# workers so a local cluster reads the same config file and tiny-random build as the driver.
FORWARDED_ENV = ("REA2SEG_CONFIG", "REA2SEG_HOME")
MAX_REPLACEMENTS_PER_WORKER = 3


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    address: ``None`` starts a Ray instance on this machine (every CPU and GPU it has);
    ``"auto"`` joins the cluster this machine belongs to; ``"ray://HOST:PORT"`` connects to a
    remote cluster's head through Ray Client.
    workers: segmenter actors; ``None`` means one per ``gpus_per_worker`` GPUs of the cluster, or
    one per ``cpus_per_worker`` CPUs when it has no GPU.
    gpus_per_worker: GPUs reserved by each actor; ``None`` means 1 when the cluster has GPUs, else 0.
    evaluator_workers: 0 runs stage 2 inside each segmenter worker; N > 0 runs it in its own pool
    of N evaluator actors (each with ``gpus_per_worker`` GPUs).
    retries: extra tries of a sample whose worker died or failed on it.
    loader: ``"module:function"`` with the signature of
    :func:`core.pipeline.cache.load_segmenter` (preset, device) → Segmenter; that one by default.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    evaluator_workers: int = 0
    retries: int = 1
    loader: str = DEFAULT_LOADER

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ValueError(f"--gpus-per-worker must be 0 or more, got {self.gpus_per_worker}")
        if self.evaluator_workers < 0:
            raise ValueError(f"--evaluator-workers must be 0 or more, got {self.evaluator_workers}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        if ":" not in self.loader:
            raise ValueError(f"loader must be 'module:function', got {self.loader!r}")


@dataclass(frozen=True)
class JobSpec:
    """What every worker loads: the segmenter ``preset`` on ``device``, and the stage-2 evaluator
    with how it scores (``stage2``)."""

    preset: str
    device: str | None = None
    stage2: Stage2Settings = Stage2Settings()


def _load(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- the actors (plain classes; wrapped with ray.remote when a pool starts) -------------------


class SegmentWorker:
    """One segmenter (and, without an evaluator pool, one evaluator), loaded once per actor."""

    def __init__(self, job: JobSpec, loader: str, with_evaluator: bool) -> None:
        self.job = job
        self.settings: Stage1Settings | None = None
        self.evaluator = None
        # A load error is kept and raised by the next call, so the driver gets the loader's own
        # exception (Ray reports a failed __init__ only as a dead actor, without it).
        self.load_error: Exception | None = None
        try:
            self.segmenter = _load(loader)(job.preset, device=job.device)
            if with_evaluator and job.stage2.evaluator:
                from core.evaluator.presets import load_evaluator

                self.evaluator = load_evaluator(job.stage2.evaluator, cot=job.stage2.cot)
        except Exception as exc:  # noqa: BLE001 - re-raised by describe()/segment()
            self.load_error = exc

    def describe(self) -> ModelInfo:
        """What this worker loaded (raises the load error, if loading failed)."""
        if self.load_error is not None:
            raise self.load_error
        return ModelInfo.of(self.segmenter, self.evaluator)

    def configure(self, settings: dict[str, Any]) -> None:
        self.settings = Stage1Settings.from_dict(settings)

    def segment(
        self,
        sample_id: int,
        name: str,
        question: str,
        image: bytes,
        is_sentence: bool | None = None,
    ) -> tuple[str, Any]:
        """("trace", PipelineTrace) | ("skipped", reason) | ("failed", reason), from
        :func:`core.pipeline.engine.process_sample` as the local engine calls it."""
        import torch

        from core.images import ImageError, decode_image_rgb
        from core.pipeline.engine import process_sample

        if self.load_error is not None:
            raise self.load_error
        try:
            rgb = decode_image_rgb(image, name)
        except ImageError as exc:
            return "skipped", str(exc)
        try:
            trace = process_sample(
                self.segmenter,
                rgb,
                question,
                self.settings,
                evaluator=self.evaluator,
                stage2=self.job.stage2,
                sample_id=sample_id,
                is_sentence=is_sentence,
            )
        except torch.OutOfMemoryError:
            _free_device_memory()
            return "failed", f"out of device memory ({rgb.shape[1]}x{rgb.shape[0]} px)"
        return "trace", trace


class EvaluatorWorker:
    """One stage-2 evaluator, loaded once per actor (the evaluator pool)."""

    def __init__(self, job: JobSpec) -> None:
        from core.evaluator.presets import load_evaluator

        self.job = job
        self.load_error: Exception | None = None  # as in SegmentWorker
        try:
            self.evaluator = load_evaluator(job.stage2.evaluator, cot=job.stage2.cot)
        except Exception as exc:  # noqa: BLE001 - re-raised by describe()/score()
            self.load_error = exc

    def describe(self) -> dict[str, Any]:
        if self.load_error is not None:
            raise self.load_error
        return {
            "evaluator": self.evaluator.name,
            "is_random": bool(self.evaluator.is_random),
            "prompt_format": getattr(self.evaluator, "prompt_format", None) or None,
            "max_patches": int(getattr(self.evaluator, "max_patches", MAX_PATCHES)),
        }

    def score(self, sample_id: int, name: str, trace, image: bytes) -> tuple[str, Any]:
        import torch

        from core.images import decode_image_rgb
        from core.pipeline.engine import score_sample

        if self.load_error is not None:
            raise self.load_error
        rgb = decode_image_rgb(image, name)
        try:
            score_sample(trace, rgb, self.evaluator, self.job.stage2, sample_id=sample_id)
        except torch.OutOfMemoryError:
            _free_device_memory()
            return "failed", f"out of device memory in stage 2 ({rgb.shape[1]}x{rgb.shape[0]} px)"
        return "trace", trace


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- pools ------------------------------------------------------------------------------------


class _Pool:
    """N actors of one class, each with at most one sample in flight; a dead one is replaced."""

    def __init__(self, ray, cls, args: tuple, n: int, options: dict[str, Any], name: str) -> None:
        self._ray = ray
        self._remote = ray.remote(cls)
        self._options = options
        self._args = args
        self._name = name
        self.actors = [self._start(i) for i in range(n)]
        self.idle = list(range(n))
        self.replaced = 0

    def _start(self, slot: int):
        name = f"{self._name}-{slot}-{time.monotonic_ns()}"
        return self._remote.options(**self._options, name=name).remote(*self._args)

    def replace(self, slot: int) -> None:
        if self.replaced >= MAX_REPLACEMENTS_PER_WORKER * len(self.actors):
            raise EngineError(
                f"{self._name}: workers died {self.replaced + 1} times; stopping "
                "(check the Ray logs, then run again with --resume)"
            )
        try:
            self._ray.kill(self.actors[slot], no_restart=True)
        except Exception:  # noqa: BLE001 - it is already gone
            pass
        self.actors[slot] = self._start(slot)
        self.replaced += 1

    def close(self) -> None:
        for a in self.actors:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - it is already gone
                pass


class RayEngine:
    """An :class:`core.pipeline.engine.Engine` on Ray: :meth:`prepare` starts Ray (unless it is
    running) and the worker pools, and waits for their models; :meth:`run` processes a plan;
    ``close()`` (or ``with``) stops the actors, and the Ray instance when this engine started it.

    ``device``: the torch device in each worker (default: ``cuda`` when workers get GPUs, else
    the preset's own).
    """

    def __init__(self, options: RayOptions | None = None, *, device: str | None = None) -> None:
        self.options = options or RayOptions()
        self.device = device
        self.ray: Any = None
        self.job: JobSpec | None = None
        self.segmenters: _Pool | None = None
        self.evaluators: _Pool | None = None
        self.gpus_per_worker, self.workers = 0.0, 0
        self.load_seconds = 0.0
        self.info: ModelInfo | None = None
        self._owns_ray = False

    def prepare(self, preset: str, stage2: Stage2Settings) -> ModelInfo:
        """Start the pools for ``preset`` and ``stage2.evaluator`` and return what the first
        workers loaded (a load error is raised here with the loader's own message)."""
        if self.options.evaluator_workers and not stage2.evaluator:
            raise ValueError("--evaluator-workers needs --evaluator")
        if self.segmenters is not None:
            raise RuntimeError("this engine is already prepared; use a new one for another job")
        t0 = time.perf_counter()
        self._start(JobSpec(preset, self.device, stage2))
        info = self._get(self.segmenters.actors[0].describe.remote())
        if self.evaluators is not None:
            ev = self._get(self.evaluators.actors[0].describe.remote())
            info = replace(
                info,
                evaluator=ev["evaluator"],
                evaluator_is_random=ev["is_random"],
                prompt_format=ev["prompt_format"],
                max_patches=ev["max_patches"],
            )
        self.load_seconds = time.perf_counter() - t0
        self.info = info
        return info

    def _start(self, job: JobSpec) -> None:
        import ray

        self.ray = ray
        self.job = job
        if not ray.is_initialized():
            # worker logs (model loading) stay in Ray's session logs, off the progress bar
            extra = {"include_dashboard": False} if self.options.address is None else {}
            try:
                ray.init(address=self.options.address, log_to_driver=False, **extra)
            except ConnectionError as exc:
                raise EngineError(f"no Ray cluster at {self.options.address}: {exc}") from None
            self._owns_ray = True
        self.gpus_per_worker, self.workers = self._size()
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        base = {
            "num_cpus": self.options.cpus_per_worker,
            "num_gpus": self.gpus_per_worker,
            "max_restarts": 0,
            "max_task_retries": 0,
        }
        if env:
            base["runtime_env"] = {"env_vars": env}
        device = job.device or ("cuda" if self.gpus_per_worker > 0 else None)
        worker_job = JobSpec(job.preset, device, job.stage2)
        self.segmenters = _Pool(
            ray,
            SegmentWorker,
            (worker_job, self.options.loader, not self.options.evaluator_workers),
            self.workers,
            base,
            "rea2seg-segmenter",
        )
        if self.options.evaluator_workers:
            self.evaluators = _Pool(
                ray,
                EvaluatorWorker,
                (worker_job,),
                self.options.evaluator_workers,
                base,
                "rea2seg-evaluator",
            )

    def _size(self) -> tuple[float, int]:
        res = self.ray.cluster_resources()
        gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 0))
        per_gpu = (
            self.options.gpus_per_worker
            if self.options.gpus_per_worker is not None
            else (1.0 if gpus else 0.0)
        )
        if per_gpu > gpus:
            raise EngineError(
                f"each worker asks for {per_gpu:g} GPU(s) but the cluster has {gpus:g}"
            )
        workers = self.options.workers
        if workers is None:
            workers = (
                int(gpus // per_gpu)
                if per_gpu
                else int(cpus // max(self.options.cpus_per_worker, 1e-9))
            )
            workers = max(1, workers - (self.options.evaluator_workers if not per_gpu else 0))
        actors = workers + self.options.evaluator_workers
        if actors * per_gpu > gpus or actors * self.options.cpus_per_worker > cpus:
            raise EngineError(
                f"{actors} workers x ({per_gpu:g} GPU, {self.options.cpus_per_worker:g} CPU) do not fit "
                f"the cluster ({gpus:g} GPU, {cpus:g} CPU); use fewer --workers"
            )
        return per_gpu, workers

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for pool in (self.segmenters, self.evaluators):
            if pool is not None:
                pool.close()
        self.segmenters = self.evaluators = None
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False

    def record(self) -> dict[str, Any]:
        """What the run's config records about this engine."""
        return {
            "engine": "ray",
            "workers": self.workers,
            "gpus_per_worker": self.gpus_per_worker,
            "evaluator_workers": self.options.evaluator_workers,
            "address": self.options.address,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def summary(self) -> str:
        extra = (
            f" + {self.options.evaluator_workers} evaluator workers"
            if self.options.evaluator_workers
            else ""
        )
        return f"on {self.workers} Ray workers{extra} (models loaded in {self.load_seconds:.1f} s)"

    def node_alive(self) -> bool:
        """Whether this driver's raylet and the cluster's GCS still answer on their sockets
        (True when it cannot tell).

        With the raylet gone its workers die one by one, and Ray ends the driver process at its
        next object put (exit status 1, no exception); with the GCS gone the raylet and then
        the driver end the same way. So the run checks before each sample it sends."""
        return raylet_answers(self.ray) and gcs_answers(self.ray)

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            # a worker that could not load its models: the loader's own error, e.g. a missing path
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise
        except self.ray.exceptions.RayActorError as exc:
            raise EngineError(f"a worker could not start: {str(exc).splitlines()[0]}") from None

    def run(
        self,
        store,
        plan: RunPlan,
        *,
        progress=None,
        should_cancel=None,
    ) -> RunReport:
        """Process ``plan.todo`` and save each trace in ``plan.run_id`` as it arrives (one
        transaction each). progress(i, n, label) is called once per sample finished, skipped or
        failed."""
        from core.store import repo

        if self.segmenters is None or self.info is None or self.info != plan.models:
            raise RuntimeError("run() takes a plan made with this engine (plan_run prepares it)")
        ray = self.ray
        report = RunReport()
        run_id, sample_ids = plan.run_id, list(plan.todo)
        settings_d = plan.settings.to_dict()
        ray.get([a.configure.remote(settings_d) for a in self.segmenters.actors])
        todo: deque[tuple[int, int]] = deque((sid, 0) for sid in sample_ids)
        scoring: deque[tuple[int, int]] = (
            deque()
        )  # (sample, attempt) whose stage-1 trace waits in `staged`
        inflight: dict[Any, tuple[str, int, int, int]] = {}  # ref -> (stage, slot, sample, attempt)
        images: dict[int, tuple[str, Any]] = {}  # sample -> (file name, object ref of its bytes)
        questions: dict[int, tuple[str, str]] = {}  # sample -> (external id, question)
        staged: dict[int, Any] = {}  # sample -> its stage-1 trace while stage 2 is in flight
        n, ended = len(sample_ids), [0]

        def finish(sid: int, label: str) -> None:
            images.pop(sid, None)
            staged.pop(sid, None)
            ended[0] += 1
            if progress is not None:
                progress(ended[0], n, label)

        def fail(sid: int, attempt: int, reason: str, stage: str) -> None:
            if attempt < self.options.retries:
                if stage == "segment":
                    todo.appendleft((sid, attempt + 1))
                else:
                    scoring.appendleft((sid, attempt + 1))
            else:
                report.failed.append((sid, reason))
                finish(sid, f"{questions[sid][0]} failed")

        def submit_segment(slot: int, sid: int, attempt: int) -> bool:
            if sid not in questions:
                sample = store.run(lambda s: repo.get_sample(s, sid), write=False)
                questions[sid] = (
                    sample.external_id,
                    sample.question,
                    getattr(sample, "is_sentence", None),
                )
                path = repo.image_path(sample)
                try:
                    images[sid] = (str(path), ray.put(read_image_bytes(path)))
                except ImageError as exc:
                    report.skipped.append((sid, str(exc)))
                    finish(sid, f"{sample.external_id} skipped")
                    return False
            name, ref = images[sid]
            out = self.segmenters.actors[slot].segment.remote(
                sid, name, questions[sid][1], ref, questions[sid][2]
            )
            inflight[out] = ("segment", slot, sid, attempt)
            return True

        while True:
            cancelled = should_cancel is not None and should_cancel()
            if cancelled:
                report.cancelled = True
                todo.clear()
                scoring.clear()
            if ((todo and self.segmenters.idle) or scoring) and not self.node_alive():
                # between samples: the next put would end this process without a word
                raise EngineError(
                    "a Ray system process of this driver died (its raylet or the GCS is gone)"
                )
            while todo and self.segmenters.idle:
                slot = self.segmenters.idle[-1]
                sid, attempt = todo.popleft()
                if submit_segment(slot, sid, attempt):
                    self.segmenters.idle.pop()
            while scoring and self.evaluators is not None and self.evaluators.idle:
                slot = self.evaluators.idle.pop()
                sid, attempt = scoring.popleft()
                name, ref = images[sid]
                out = self.evaluators.actors[slot].score.remote(sid, name, staged[sid], ref)
                inflight[out] = ("score", slot, sid, attempt)
            if not inflight:
                break
            [ref], _ = ray.wait(list(inflight), num_returns=1)
            stage, slot, sid, attempt = inflight.pop(ref)
            pool = self.segmenters if stage == "segment" else self.evaluators
            try:
                kind, payload = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                if not self.node_alive():  # Ray ends this process at its next put: stop first
                    raise EngineError(
                        "the Ray node of this driver died (its raylet is gone)"
                    ) from exc
                pool.replace(slot)
                if (
                    pool is self.segmenters
                ):  # calls to one actor run in order: configured before its next sample
                    pool.actors[slot].configure.remote(settings_d)
                pool.idle.append(slot)
                fail(sid, attempt, f"its worker died ({type(exc).__name__})", stage)
                continue
            except ray.exceptions.RayTaskError as exc:
                pool.idle.append(slot)
                fail(
                    sid,
                    attempt,
                    f"error in the worker: {str(exc.cause if exc.cause else exc).splitlines()[0]}",
                    stage,
                )
                continue
            pool.idle.append(slot)
            if cancelled:
                continue  # the sample in flight is dropped, as in the local run
            if kind == "skipped":
                report.skipped.append((sid, payload))
                finish(sid, f"{questions[sid][0]} skipped")
            elif kind == "failed":
                fail(sid, attempt, payload, stage)
            elif stage == "segment" and self.evaluators is not None:
                staged[sid] = payload
                scoring.append((sid, 0))
            else:
                store.run(lambda s, sid=sid, trace=payload: repo.save_trace(s, run_id, sid, trace))
                report.saved += 1
                finish(sid, questions[sid][0])
        report.replaced = self.segmenters.replaced + (
            self.evaluators.replaced if self.evaluators else 0
        )
        return report
