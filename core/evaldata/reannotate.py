"""Asking a sample's annotator again, from review (``rea2seg reasoning reannotate``, the
Training reasoning dock's Re-annotate)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.evaldata.build import Annotator
from core.evaldata.records import (
    AnnotationError,
    NewSample,
    annotator_model,
    error_record,
    read_item,
    store_results,
)
from core.images import ImageError, load_image_rgb
from core.llm_client import ChatClient
from core.store import Store, repo
from core.store.models import ReasoningAnnotation


def reannotate(
    store: Store,
    sample_id: int,
    *,
    user: str,
    api_key: str | None = None,
    endpoint: str | None = None,
    model: str | None = None,
    **client_options: Any,
) -> list[ReasoningAnnotation]:
    """Ask the endpoint and annotator model of the sample's latest annotation again
    (``endpoint`` / ``model`` given: those instead).

    ``gqa``: Figure S8 only, on the box of the sample's current mask (SAM 3 and the S7 filter
    are not run again); ``spatial``: Figure S9 for the sample's group, of which only this
    sample's instance is used; ``category`` / ``answer``: their prompt again. The new question
    (S9), status and reasoning are recorded as ``user``'s revisions; a failed attempt adds an
    ``error`` annotation and changes nothing else. The key comes from ``api_key`` or
    ``$REA2SEG_EVAL_API_KEY``.
    """
    import os

    from core.llm_client import API_KEY_ENV
    from core.masks import encode_rle

    user = (user or "").strip()
    if not user:
        raise AnnotationError("a user name is required to ask for a re-annotation")

    def last(s: Session) -> tuple[ReasoningAnnotation | None, str, np.ndarray | None]:
        rec = s.scalar(
            select(ReasoningAnnotation)
            .where(ReasoningAnnotation.sample_id == sample_id)
            .order_by(ReasoningAnnotation.id.desc())
            .limit(1)
        )
        smp = repo.get_sample(s, sample_id)
        if rec is not None:
            s.expunge(rec)
        return rec, smp.external_id, repo.current_mask(s, sample_id)

    prev, ext, mask = store.run(last, write=False)
    if prev is None:
        raise AnnotationError(f"sample {sample_id} has no reasoning annotation to ask again")
    endpoint = endpoint or prev.endpoint
    model = model or annotator_model(prev)
    if not endpoint or not model:
        raise AnnotationError(
            f"sample {sample_id}: its annotation has no endpoint or model recorded; give them"
        )
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    client = ChatClient(endpoint, model, key, **client_options)
    worker = Annotator(store, prev.builder, client, user=user)
    t0 = time.perf_counter()
    item = store.run(lambda s: read_item(s, prev.item_key), write=False)
    if prev.builder == "gqa":
        rec = worker._new()
        rec.item_key, rec.question, rec.answer = prev.item_key, item.question, item.answer
        rec.details = {"recheck": "S8 on the sample's current mask"}
        if mask is None or not mask.any():
            raise AnnotationError(f"sample {sample_id} has no mask to draw the box of")
        try:
            image = load_image_rgb(item.image_path)
        except ImageError as exc:
            results = [(error_record(rec, "image", exc), None)]
        else:
            results = worker._gqa_annotate(rec, item, image, mask)
        if results[0][1] is not None:
            results = [(results[0][0], _replace(results[0][1], mask=encode_rle(mask)))]
    else:
        results = getattr(worker, f"_{prev.builder}")(prev.item_key, item)
        if prev.builder == "spatial":
            mine = [r for r in results if r[1] is not None and r[1].external_id == ext]
            results = mine or [r for r in results if r[1] is None][:1]
    for rec, _ in results:
        rec.seconds = time.perf_counter() - t0
        if rec.sample_id is None and rec.builder != "answer":
            rec.sample_id = sample_id  # a failed attempt stays in the sample's history
    return store_results(store, results, user)


def _replace(new: NewSample, **changes: Any) -> NewSample:
    from dataclasses import replace

    return replace(new, **changes)
