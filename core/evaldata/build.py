"""The App. D builders: samples with a chain-of-thought reasoning text for evaluator training.

Every builder goes item by item, at most ``concurrency`` items at a time, through the
OpenAI-compatible client (:class:`core.llm_client.ChatClient`: deadline, retries, key masking),
and records each item's pass as a :class:`~core.store.models.ReasoningAnnotation` (prompts and
their versions, each call's raw answer, parsed fields, tokens and seconds, the verdict and its
reasons). Failed requests and unparsable answers are recorded as ``error`` and change nothing
else; ``resume`` skips the items that are done and tries the errors again.

- ``gqa`` (imported :class:`~core.store.models.VqaItem`): the text-only filter of Figure S7
  (Score 0 → rejected, ``stage`` ``filter``) → SAM 3 prompted with the short answer, kept only
  when it returns exactly one mask (else rejected, ``stage`` ``sam3``) → the mask's tightest box
  drawn in red → Figure S8 checks the box against the answer and writes the reasoning. Kept:
  a ``pending`` sample (the question, SAM 3's mask, the reasoning); discarded: a ``rejected``
  sample with the mask, for review.
- ``spatial`` (imported category groups of at least two instances, as the spatial split of
  App. C): every instance boxed in red with its target ID → Figure S9 writes one referring
  question with its reasoning per instance → one ``pending`` sample per instance it covered.
- ``category`` (imported ``groups`` with a description, the LISA++-style query): every instance
  of the image of the group's categories merged into one semantic mask (App. D: "we merge all
  instances belonging to the queried category"), each boxed in red, the category names as the
  short answer → Figure S10 verifies and writes the reasoning (sample ``pending``), or marks it
  invalid (``rejected``).
- ``answer`` (samples that have a mask and no reasoning yet: ReasonSeg train, SGDR, geometric): the mask's
  parts boxed in red → a prompt not from the paper, in the manner of S10 (the paper annotated
  ReasonSeg train this way without printing its prompt) → the reasoning is set on the sample,
  recorded as a revision; the sample's own status does not change.

New samples get ``reasoning_status`` ``pending`` when they have a reasoning; review accepts,
edits or rejects it (:func:`core.store.review.decide_reasoning`, :func:`~core.store.review.edit_reasoning`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from core.evaldata.answers import (
    AnswerError,
    parse_annotator,
    parse_category_annotator,
    parse_filter,
    parse_spatial_reasoning,
)
from core.evaldata.records import (  # noqa: F401  (re-exported: the builders' public names)
    BUILDERS,
    PROMPT_NAMES,
    SAMPLE_CATEGORY,
    AnnotationError,
    BuildReport,
    Item,
    NewSample,
    builder_prompts,
    call_model,
    eligible_keys,
    error_record,
    items_to_annotate,
    new_record,
    read_item,
    record_parsed,
    store_results,
)
from core.evaldata.render import component_boxes, draw_red_boxes
from core.images import ImageError, load_image_rgb
from core.llm_client import ChatClient, EndpointError
from core.masks import bbox_xyxy, decode_rle
from core.store import Store
from core.store.models import ReasoningAnnotation

Progress = Callable[[int, int, str], None]


class Annotator:
    """One builder's clients, prompts and models, shared by the worker threads."""

    def __init__(
        self,
        store: Store,
        builder: str,
        annotator: ChatClient,
        *,
        filter_client: ChatClient | None = None,
        sam3: Any = None,
        user: str = "",
    ) -> None:
        self.store, self.builder, self.user = store, builder, user
        self.prompts = builder_prompts(builder)
        self.annotator = annotator
        self.filter_client = filter_client or annotator
        self.sam3 = sam3

    def one(self, key: str) -> list[ReasoningAnnotation]:
        t0 = time.perf_counter()
        item = self.store.run(lambda s: read_item(s, key), write=False)
        results = getattr(self, f"_{self.builder}")(key, item)
        for rec, _ in results:
            rec.seconds = time.perf_counter() - t0
        return store_results(self.store, results, self.user)

    def _new(self) -> ReasoningAnnotation:
        return new_record(self.builder, "", self.prompts, self.user)

    # -- gqa: S7 → SAM 3 → S8 ----------------------------------------------------------------
    def _gqa(self, key: str, it: Item) -> list[tuple[ReasoningAnnotation, NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key, rec.question, rec.answer = key, it.question, it.answer
        try:
            raw = call_model(
                rec,
                self.filter_client,
                "filter",
                p["filter"],
                p["filter_user"].format(
                    question=it.question, answer=it.answer, full_answer=it.full_answer
                ),
                [],
            )
            flt = parse_filter(raw)
        except (EndpointError, AnswerError) as exc:
            return [(error_record(rec, "filter", exc), None)]
        record_parsed(rec, flt.fields)
        if not flt.usable:
            rec.verdict, rec.stage, rec.reasons = "rejected", "filter", flt.reason or "Score 0"
            return [(rec, None)]
        try:
            image = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(error_record(rec, "image", exc), None)]
        try:
            masks, scores = self.sam3.segment(image, it.answer)
        except (ValueError, RuntimeError) as exc:
            return [(error_record(rec, "sam3", exc), None)]
        rec.details = {
            "sam3": {
                "model": getattr(self.sam3, "name", ""),
                "masks": len(masks),
                "scores": [round(float(x), 4) for x in scores],
                "threshold": getattr(self.sam3, "threshold", None),
            }
        }
        if len(masks) != 1:
            rec.verdict, rec.stage = "rejected", "sam3"
            rec.reasons = (
                f"SAM 3 returned {len(masks)} masks for {it.answer!r}; exactly one is kept"
            )
            return [(rec, None)]
        return self._gqa_annotate(rec, it, image, masks[0])

    def _gqa_annotate(
        self, rec: ReasoningAnnotation, it: Item, image: np.ndarray, mask: np.ndarray
    ) -> list[tuple[ReasoningAnnotation, NewSample | None]]:
        """Figure S8 on the mask's tightest box: keep (a pending sample) or discard."""
        from core.masks import encode_rle

        p = self.prompts
        box = list(bbox_xyxy(mask) or (0, 0, 0, 0))
        rec.details = {**rec.details, "box_xyxy": box}
        try:
            raw = call_model(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question, answer=it.answer),
                [draw_red_boxes(image, [box])],
            )
            ann = parse_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(error_record(rec, "annotator", exc), None)]
        record_parsed(rec, ann.fields)
        rec.stage, rec.reasons = "annotator", ann.reason
        rec.verdict = "accepted" if ann.keep else "rejected"
        rec.reasoning = ann.reasoning
        return [
            (
                rec,
                NewSample(
                    it.dataset_id,
                    it.image_id,
                    f"gqa/{it.external_id}",
                    it.question,
                    SAMPLE_CATEGORY["gqa"],
                    encode_rle(mask),
                    "pending" if ann.keep else "rejected",
                    ann.reasoning,
                ),
            )
        ]

    # -- spatial: S9 ---------------------------------------------------------------------------
    def _spatial(self, key: str, it: Item) -> list[tuple[ReasoningAnnotation, NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key = key
        ids = [str(k) for k in range(1, len(it.members) + 1)]
        try:
            image = draw_red_boxes(
                load_image_rgb(it.image_path), [m[2] for m in it.members], labels=ids
            )
        except ImageError as exc:
            return [(error_record(rec, "image", exc), None)]
        try:
            raw = call_model(
                rec,
                self.annotator,
                "generator",
                p["annotator"],
                p["annotator_user"].format(category=it.categories[0], target_ids=", ".join(ids)),
                [image],
            )
            found = parse_spatial_reasoning(raw)
        except (EndpointError, AnswerError) as exc:
            return [(error_record(rec, "generator", exc), None)]
        by_id = {q.target_id: q for q in found}
        record_parsed(rec, [q.__dict__ for q in found])
        stray = sorted(set(by_id) - set(range(1, len(it.members) + 1)))
        out: list[tuple[ReasoningAnnotation, NewSample | None]] = []
        for k, (tid, ext, _box, rle) in enumerate(it.members, start=1):
            r = rec if k == 1 else self._copy(rec)
            r.details = {
                "target_id": tid,
                "label": k,
                **({"unknown_labels": stray} if stray else {}),
            }
            r.stage = "generator"
            q = by_id.get(k)
            if q is None:
                r.verdict, r.reasons = "skipped", f"no question for target ID {k}"
                out.append((r, None))
                continue
            r.verdict, r.question, r.reasoning = "accepted", q.question, q.reasoning
            r.reasons = f"relation: {q.relation}" if q.relation else ""
            out.append(
                (
                    r,
                    NewSample(
                        it.dataset_id,
                        it.image_id,
                        f"spatial_reasoning/{ext}",
                        q.question,
                        SAMPLE_CATEGORY["spatial"],
                        rle,
                        "pending",
                        q.reasoning,
                    ),
                )
            )
        return out

    def _copy(self, rec: ReasoningAnnotation) -> ReasoningAnnotation:
        c = self._new()
        c.item_key, c.endpoint, c.calls, c.usage = rec.item_key, rec.endpoint, rec.calls, {}
        return c  # tokens are counted once, on the group's first record

    # -- category: S10 ------------------------------------------------------------------------
    def _category(self, key: str, it: Item) -> list[tuple[ReasoningAnnotation, NewSample | None]]:
        from core.masks import encode_rle

        p = self.prompts
        rec = self._new()
        answer = ", ".join(it.categories)
        rec.item_key, rec.question, rec.answer = key, it.question, answer
        try:
            img = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(error_record(rec, "image", exc), None)]
        # every instance of the queried categories, not only those the group lists (App. D)
        instances = it.category_members or it.members
        merged = np.zeros(img.shape[:2], bool)
        for _tid, _ext, _box, rle in instances:
            merged |= decode_rle(rle, img.shape[:2])
        boxes = [m[2] for m in instances]
        rec.details = {"targets": [m[0] for m in instances], "boxes_xyxy": boxes}
        try:
            raw = call_model(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question, answer=answer),
                [draw_red_boxes(img, boxes)],
            )
            ann = parse_category_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(error_record(rec, "annotator", exc), None)]
        record_parsed(rec, ann.fields)
        rec.stage, rec.reasons, rec.reasoning = "annotator", ann.reason, ann.reasoning
        rec.verdict = "accepted" if ann.keep else "rejected"
        return [
            (
                rec,
                NewSample(
                    it.dataset_id,
                    it.image_id,
                    f"category/{it.external_id}",
                    it.question,
                    SAMPLE_CATEGORY["category"],
                    encode_rle(merged),
                    "pending" if ann.keep else "rejected",
                    ann.reasoning,
                ),
            )
        ]

    # -- answer: a known mask -----------------------------------------------------------------
    def _answer(self, key: str, it: Item) -> list[tuple[ReasoningAnnotation, NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key, rec.question, rec.sample_id = key, it.question, it.sample_id
        if not it.members:
            rec.verdict, rec.reasons = "skipped", "the sample has no mask"
            return [(rec, None)]
        try:
            img = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(error_record(rec, "image", exc), None)]
        boxes = component_boxes(decode_rle(it.members[0][3], img.shape[:2]))
        if not boxes:
            rec.verdict, rec.reasons = "skipped", "the sample's mask is empty"
            return [(rec, None)]
        rec.details = {"boxes_xyxy": boxes}
        try:
            raw = call_model(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question),
                [draw_red_boxes(img, boxes)],
            )
            ann = parse_category_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(error_record(rec, "annotator", exc), None)]
        record_parsed(rec, ann.fields)
        rec.stage, rec.reasons, rec.reasoning = "annotator", ann.reason, ann.reasoning
        rec.verdict = "accepted" if ann.keep else "rejected"
        return [(rec, None)]


# -- many items ---------------------------------------------------------------------------------


def annotate(
    store: Store,
    builder: str,
    annotator: ChatClient,
    *,
    filter_client: ChatClient | None = None,
    sam3: Any = None,
    resume: bool = False,
    limit: int | None = None,
    dataset: str | None = None,
    category: str | None = None,
    status: str | None = None,
    user: str = "",
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> BuildReport:
    """Run ``builder`` (module docstring) over every eligible item not done yet, at most
    ``annotator.concurrency`` at a time.

    ``filter_client``: the S7 model of ``gqa`` (default: ``annotator``). ``sam3``: an object with
    ``segment(image_rgb, text) -> (masks, scores)`` and ``name``
    (:class:`core.models.sam3_text.Sam3TextSegmenter`), needed by ``gqa``. ``dataset`` limits
    the items to one dataset; ``category`` / ``status`` the samples of ``answer``.
    """
    if builder == "gqa" and sam3 is None:
        raise AnnotationError("the gqa builder needs SAM 3 (--sam3 CHECKPOINT_DIR)")
    worker = Annotator(store, builder, annotator, filter_client=filter_client, sam3=sam3, user=user)
    keys = items_to_annotate(
        store,
        builder,
        resume=resume,
        limit=limit,
        dataset=dataset,
        category=category,
        status=status,
    )
    report = BuildReport()
    lock = threading.Lock()
    done = 0
    t0 = time.perf_counter()

    def one(key: str) -> None:
        nonlocal done
        if should_cancel and should_cancel():
            return
        recs = worker.one(key)
        with lock:
            for rec in recs:
                report.verdicts[rec.verdict] += 1
                if rec.error:
                    report.errors.append((key, rec.error))
                if rec.verdict == "accepted":
                    report.samples += 1
                for call in (rec.usage or {}).values():
                    report.tokens.update({k: v for k, v in call.items() if k.endswith("_tokens")})
            done += 1
            if progress:
                progress(done, len(keys), recs[-1].verdict if recs else "")

    if progress:
        progress(0, len(keys), "start")
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(annotator.concurrency, len(keys) or 1)),
        thread_name_prefix="reasoning",
    )
    try:
        for f in [pool.submit(one, k) for k in keys]:
            f.result()
    except BaseException:
        # Ctrl+C or a store failure: items not started stay to do (resume); requests in
        # flight finish and are recorded
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    report.seconds = time.perf_counter() - t0
    return report
