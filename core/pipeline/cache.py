"""One model session for a process: segmenters and evaluators loaded lazily, once per preset,
and shared.

:class:`ModelCache` is what a caller keeps instead of dicts of models: the GUI keeps one for its
lifetime, and :class:`core.pipeline.engine.LocalEngine` makes one for a command's run. It loads
a preset's :class:`Segmenter` through :func:`load_segmenter` and a stage-2 evaluator through
:func:`core.evaluator.presets.load_evaluator` the first time either is asked for, from any
thread (a lock per preset: two threads asking for the same preset load it once; a failed load
raises in every caller and is not cached, so the next call tries again). Click refinement asks
for the preset's SAM and gets the segmenter's own backend when the segmenter is loaded (one SAM
per preset, shared by runs and clicks), else a SAM loaded alone.

SAM image embeddings are kept in a bounded LRU keyed by the caller's image key (e.g.
``(sample_id, image_path)`` or the image's sha): returning to a recently seen image restores its
embedding instead of running the encoder again. ``embedding_cache_size`` (default
:data:`EMBEDDING_CACHE_SIZE`) is a named setting, not from the paper.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.models.config import canonical_preset, load_config, load_preset_sam, load_prompt_model

EMBEDDING_CACHE_SIZE = (
    8  # image embeddings kept per cache (not from the paper; ~4 MB each for ViT-B)
)

SegmenterLoader = Callable[[str, dict[str, Any] | None], Any]
SamLoader = Callable[[str, dict[str, Any] | None], Any]
EvaluatorLoader = Callable[[str, dict[str, Any] | None], Any]


@dataclass(frozen=True)
class Segmenter:
    """A preset's prompt model (:class:`core.models.base.PromptModel`) and SAM backend
    (:class:`core.models.base.SamBackend`), loaded together. ``preset`` is the canonical name;
    ``is_random`` is true when either model has random weights (its output is noise)."""

    prompt_model: Any
    sam: Any
    preset: str
    is_random: bool


def load_segmenter(
    preset: str, device: str | None = None, config: dict[str, Any] | None = None
) -> Segmenter:
    """Load a preset's prompt model and SAM backend from local paths only.

    ``preset``: a preset name or alias (``tiny-random`` → ``tiny-random-lisa``); ``device``
    overrides the preset's ``device`` setting; ``config``: the parsed user config (default: the
    config file, :func:`core.models.config.load_config`). Raises
    :class:`core.models.base.ModelLoadError` naming every bad file and its setting.
    To share one SAM between runs and click refinement, use :class:`ModelCache`.
    """
    cfg = load_config() if config is None else config
    name = canonical_preset(preset)
    pm = load_prompt_model(name, cfg, device)
    sam = load_preset_sam(name, cfg, device)
    return Segmenter(pm, sam, name, bool(pm.is_random or sam.is_random))


def _default_sam_loader(preset: str, config: dict[str, Any] | None) -> Any:
    return load_preset_sam(preset, load_config() if config is None else config)


def _default_evaluator_loader(name: str, config: dict[str, Any] | None) -> Any:
    from core.evaluator.presets import load_evaluator

    return load_evaluator(name, config)


# The predictor attributes that hold one image's embedding (segment-anything, then sam2).
_STATE_ATTRS = (
    ("features", "original_size", "input_size", "is_image_set"),
    ("_features", "_orig_hw", "_is_image_set", "_is_batch"),
)


def _snapshot(sam: Any) -> dict[str, Any] | None:
    """The backend's current embedding state, or ``None`` when the backend's layout is unknown."""
    pred = getattr(sam, "predictor", None)
    img = getattr(sam, "_image", None)
    if pred is None or img is None:
        return None
    for attrs in _STATE_ATTRS:
        if all(hasattr(pred, a) for a in attrs):
            return {"_image": img, **{a: getattr(pred, a) for a in attrs}}
    return None


def _restore(sam: Any, snap: dict[str, Any]) -> None:
    for k, v in snap.items():
        if k == "_image":
            sam._image = v
        else:
            setattr(sam.predictor, k, v)


@dataclass
class _Slot:
    lock: threading.Lock
    value: Any = None
    loaded: bool = False


class ModelCache:
    """Segmenters, SAM backends and evaluators per preset, loaded on first use; thread-safe.

    ``config``: a callable returning the parsed user config for a load (read when a model is
    loaded, so a changed config applies after :meth:`clear`); ``None`` uses the config file.
    ``device``: overrides the presets' ``device`` setting for segmenters loaded by the default
    loader. ``load_segmenter`` / ``load_sam`` / ``load_evaluator``: ``(preset, config) -> model``
    loaders replacing the defaults (:func:`load_segmenter`, the preset's SAM alone,
    :func:`core.evaluator.presets.load_evaluator`).
    """

    def __init__(
        self,
        *,
        load_segmenter: SegmenterLoader | None = None,
        load_sam: SamLoader | None = None,
        load_evaluator: EvaluatorLoader | None = None,
        config: Callable[[], dict[str, Any] | None] | None = None,
        device: str | None = None,
        embedding_cache_size: int = EMBEDDING_CACHE_SIZE,
    ) -> None:
        if embedding_cache_size < 0:
            raise ValueError(f"embedding_cache_size must be >= 0, got {embedding_cache_size}")
        self.device = device
        self._load_segmenter = load_segmenter or self._default_segmenter_loader
        self._load_sam = load_sam or _default_sam_loader
        self._load_evaluator = load_evaluator or _default_evaluator_loader
        self._config = config or (lambda: None)
        self.embedding_cache_size = embedding_cache_size
        self._lock = threading.Lock()  # guards the slot tables and the embedding LRU
        self._segmenters: dict[str, _Slot] = {}
        self._sams: dict[str, _Slot] = {}
        self._evaluators: dict[str, _Slot] = {}
        self._sam_locks: dict[int, threading.Lock] = {}
        self._embeddings: OrderedDict[tuple[int, Hashable], dict[str, Any]] = OrderedDict()

    def config(self) -> dict[str, Any] | None:
        """The parsed user config models are loaded with (``None``: the config file)."""
        return self._config()

    def _slot(self, table: dict[str, _Slot], preset: str) -> _Slot:
        with self._lock:
            return table.setdefault(preset, _Slot(threading.Lock()))

    def _get(self, table: dict[str, _Slot], preset: str, load: Callable[[], Any]) -> Any:
        slot = self._slot(table, preset)
        with slot.lock:  # one load per preset; a second caller waits and gets the same object
            if not slot.loaded:
                slot.value = load()  # an exception propagates and leaves the slot empty
                slot.loaded = True
            return slot.value

    def segmenter(self, preset: str) -> Any:
        """The preset's segmenter, loaded once (raises the loader's error, e.g. ModelLoadError)."""
        return self._get(
            self._segmenters, preset, lambda: self._load_segmenter(preset, self._config())
        )

    def _default_segmenter_loader(self, preset: str, config: dict[str, Any] | None) -> Any:
        return load_segmenter(preset, device=self.device, config=config)

    def evaluator(self, name: str) -> Any:
        """The stage-2 evaluator of a preset name (or checkpoint directory), loaded once
        (raises the loader's error, e.g. ModelLoadError or ValueError)."""
        return self._get(self._evaluators, name, lambda: self._load_evaluator(name, self._config()))

    def loaded_segmenter(self, preset: str) -> Any | None:
        with self._lock:
            slot = self._segmenters.get(preset)
        return slot.value if slot is not None and slot.loaded else None

    def sam(self, preset: str) -> tuple[Any, bool]:
        """The preset's SAM backend and whether it is random: the segmenter's own when loaded."""
        seg = self.loaded_segmenter(preset)
        if seg is not None:
            return seg.sam, bool(seg.is_random)
        sam = self._get(self._sams, preset, lambda: self._load_sam(preset, self._config()))
        from core.models.config import preset_spec

        try:
            rnd = bool(getattr(sam, "is_random", False) or preset_spec(preset).is_random)
        except (KeyError, ValueError):
            rnd = bool(getattr(sam, "is_random", False))
        return sam, rnd

    def sam_lock(self, sam: Any) -> threading.Lock:
        """A lock per SAM backend: hold it from ``set_image`` to the last ``predict`` on that image."""
        with self._lock:
            return self._sam_locks.setdefault(id(sam), threading.Lock())

    def set_image(self, sam: Any, key: Hashable, image_rgb: np.ndarray) -> None:
        """``sam.set_image(image_rgb)``, restoring the embedding cached under ``key`` if there is one.

        Call it with :meth:`sam_lock` held. ``image_rgb``: uint8 (H, W, 3) RGB; ``key``
        identifies the image (sample id + path, or a sha of the bytes).
        """
        k = (id(sam), key)
        with self._lock:
            snap = self._embeddings.get(k)
            if snap is not None:
                self._embeddings.move_to_end(k)
        current = getattr(sam, "_image", None)
        if snap is not None and not (current is not None and current is snap["_image"]):
            img = np.asarray(image_rgb)
            if snap["_image"].shape == img.shape and np.array_equal(snap["_image"], img):
                _restore(sam, snap)
        sam.set_image(image_rgb)  # a no-op when the embedding for this image is in place
        snap = _snapshot(sam)
        if snap is not None and self.embedding_cache_size > 0:
            with self._lock:
                self._embeddings[k] = snap
                self._embeddings.move_to_end(k)
                while len(self._embeddings) > self.embedding_cache_size:
                    self._embeddings.popitem(last=False)

    def cached_embeddings(self) -> list[Hashable]:
        """The image keys whose embeddings are cached, least recently used first."""
        with self._lock:
            return [k for _, k in self._embeddings]

    def release_segmenter(self, preset: str) -> bool:
        """Forget a loaded segmenter (and its cached image embeddings) so its memory can be
        given back, e.g. before the evaluator loads when both do not fit; True when one was
        loaded. The next request loads it again."""
        with self._lock:
            slot = self._segmenters.pop(preset, None)
            seg = slot.value if slot is not None and slot.loaded else None
            if seg is not None:
                sam_id = id(getattr(seg, "sam", None))
                for k in [k for k in self._embeddings if k[0] == sam_id]:
                    del self._embeddings[k]
                self._sam_locks.pop(sam_id, None)
        if seg is None:
            return False
        del seg, slot
        import gc
        import sys
        import threading

        # collect the model's reference cycles now, but only on the main thread: a collection
        # on a worker thread may finalise GUI objects there (the app collects on its own thread)
        if threading.current_thread() is threading.main_thread():
            gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    def clear(self) -> None:
        """Forget every model and embedding (the next request loads again, e.g. after new settings)."""
        with self._lock:
            self._segmenters.clear()
            self._sams.clear()
            self._evaluators.clear()
            self._sam_locks.clear()
            self._embeddings.clear()
