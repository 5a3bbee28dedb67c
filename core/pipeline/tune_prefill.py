"""Fill a what-if cache's seed bank ahead of the user: every token's centre seed, decoded once.

With the paper's seed policy (``one_per_token``: one seed per top-k2 token, at the centre of its
patch, §4.2 / App. B) every seed a change of k1, k2, the layers or the heads can produce is the
centre pixel of some image token. :func:`prefill_seed_bank` decodes those centres (most attended
first) into the cache's :class:`~core.pipeline.tune_amg.SeedBank`, a chunk at a time, so that a
later re-tune that moves the seeds finds every seed decoded and runs no decoder pass for the AMG::

    cache = prepare_stage1(prompt_model, sam, image_rgb, question, settings)
    prefill_seed_bank(cache, settings)                  # a few seconds on CPU, in the background
    retune(cache, replace(settings, k2=12, layers=(3,)))  # the AMG masks come from the bank

``proportional`` seeds beyond each token's first are drawn at random inside the patch and are
decoded when a re-tune first needs them.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from core.cancel import Cancelled
from core.models.base import CancelFn
from core.pipeline.seeds import aggregate_attention, patch_pixels, sample_seed_points
from core.pipeline.settings import Stage1Settings
from core.pipeline.tune import Stage1Cache, _restore_embedding
from core.trace import TokenScore

PREFILL_CHUNK = 16
"""Seeds per prefill step (not from the paper): small enough that a re-tune waiting behind a
step waits a fraction of a second on CPU."""


def centre_seeds(cache: Stage1Cache, settings: Stage1Settings) -> np.ndarray:
    """The centre seed of every image token inside the image, float32 (T, 2) ``(x, y)``, most
    attended first under ``settings``' layers and heads (equal attention: lower token index
    first). The same pixels :func:`~core.pipeline.seeds.sample_seed_points` gives a token's first
    seed."""
    out = cache.output
    gh, gw = int(out.grid_hw[0]), int(out.grid_hw[1])
    att = np.asarray(out.attention)[cache.layer_positions(settings)]
    heads = None if settings.heads is None else list(settings.heads)
    token_map = aggregate_attention(att, (gh, gw), None, heads, settings.attention_renorm).ravel()
    boxes = np.asarray(out.token_boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    tokens = [
        TokenScore(int(i), int(i // gw), int(i % gw), float(token_map[i]), tuple(boxes[i]))
        for i in np.argsort(-token_map, kind="stable")
        if patch_pixels(boxes[i], cache.hw) is not None
    ]
    seeds, _ = sample_seed_points(
        tokens, np.ones(len(tokens), np.int64), cache.hw, np.random.default_rng(0)
    )
    return seeds


def bank_progress(cache: Stage1Cache, settings: Stage1Settings) -> tuple[int, int]:
    """``(held, total)``: how many of :func:`centre_seeds` the bank holds for ``settings``'
    stability offset."""
    seeds = centre_seeds(cache, settings)
    bank = cache.seed_bank()
    if bank is None:
        return 0, len(seeds)
    return len(seeds) - len(bank.missing(seeds, settings.stability_score_offset)), len(seeds)


def prefill_seed_bank(
    cache: Stage1Cache,
    settings: Stage1Settings,
    *,
    max_seeds: int | None = None,
    chunk: int = PREFILL_CHUNK,
    lock: threading.Lock | None = None,
    progress: Any = None,
    should_cancel: CancelFn | None = None,
) -> int:
    """Decode up to ``max_seeds`` (all when ``None``) of :func:`centre_seeds` that the bank does
    not hold, ``chunk`` at a time; returns how many were decoded.

    Each chunk holds ``cache.lock`` and ``lock`` (the SAM backend's lock, when others share it:
    :meth:`core.pipeline.cache.ModelCache.sam_lock`) only while it decodes, so a re-tune can run
    between chunks. ``progress(held, total)`` after each chunk; ``should_cancel()`` is polled
    before each (:class:`~core.cancel.Cancelled`). Stops early when the bank is full
    (:data:`~core.pipeline.tune_amg.SEED_BANK_BYTES`). A cache without a bank decodes nothing.
    """
    bank = cache.seed_bank()
    if bank is None:
        return 0
    offset = settings.stability_score_offset
    seeds = centre_seeds(cache, settings)
    todo = seeds[bank.missing(seeds, offset)]
    if max_seeds is not None:
        todo = todo[: max(0, int(max_seeds))]
    decoded = 0
    for start in range(0, len(todo), max(1, int(chunk))):
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"seed bank cancelled after {decoded} seeds")
        if bank.full():
            break
        with lock if lock is not None else contextlib.nullcontext(), cache.lock:
            _restore_embedding(cache)
            decoded += bank.decode(
                cache.sam, todo[start : start + chunk], offset, settings.points_per_batch
            )
        if progress is not None:
            progress(len(seeds) - len(bank.missing(seeds, offset)), len(seeds))
    return decoded
