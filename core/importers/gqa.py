"""GQA questions as VQA items for evaluator training data (App. D).

Accepted files (GQA's own layout):

- the questions file (``--questions``), e.g. ``train_balanced_questions.json``: one JSON object
  mapping a question id to ``{"imageId": "2375429", "question": "…", "answer": "pants",
  "fullAnswer": "The man is wearing pants.", "annotations": {"answer": {"0": "1232"},
  "fullAnswer": {"4": "1232"}, …}, …}``; other keys are ignored. A JSON list of such objects
  with an ``"id"`` key each is read too.
- the scene graphs file (``--scene-graphs``, optional), e.g. ``train_sceneGraphs.json``:
  ``{"2375429": {"width": 500, "height": 375, "objects": {"1232": {"name": "pants", "x": 10,
  "y": 20, "w": 50, "h": 90}, …}}, …}``. The boxes of the objects the answer names
  (``annotations.answer``, else the ``fullAnswer`` objects whose name is the answer) are kept with
  the item (xyxy, image pixels, exclusive max), for the reviewer's eyes.
- the images folder (``--images``): ``<imageId>.jpg`` (or ``.png``, ``.jpeg``).

Each question becomes one :class:`~core.store.models.VqaItem` (idempotent: a question already
imported is counted as present). A question with a missing field, an unreadable image or a
size that disagrees with its scene graph is skipped with its reason; nothing else changes.
``sample`` / ``seed`` keep a random subset (the paper samples 50K of GQA's train and val).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from core.images import ImageError
from core.importers.common import ImageCache, ImportReport, Progress, ShouldCancel
from core.store import Store, repo
from core.store.models import VqaItem

IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")


class GqaError(ValueError):
    """A GQA file that cannot be read as a whole (nothing is imported then)."""


def _load(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GqaError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GqaError(f"{what} {path} is not readable JSON ({exc})") from None


def read_questions(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(question id, entry) pairs of a GQA questions file, in file order."""
    data = _load(Path(path), "questions file")
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, list):
        out = []
        for i, v in enumerate(data):
            qid = v.get("id") if isinstance(v, dict) else None
            out.append((str(qid) if qid is not None else f"#{i}", v))
        return out
    raise GqaError(f"questions file {path}: a JSON object (id → question) or list is needed")


def answer_boxes(entry: dict[str, Any], graph: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``[{"object_id", "name", "box_xyxy"}]`` of the objects the answer names (module docstring)."""
    if not isinstance(graph, dict) or not isinstance(graph.get("objects"), dict):
        return []
    objects = graph["objects"]
    ann = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
    ids = list((ann.get("answer") or {}).values()) if isinstance(ann.get("answer"), dict) else []
    if not ids and isinstance(ann.get("fullAnswer"), dict):
        ans = str(entry.get("answer", "")).strip().lower()
        ids = [
            o
            for o in ann["fullAnswer"].values()
            if str((objects.get(str(o)) or {}).get("name", "")).lower() == ans
        ]
    out = []
    for oid in dict.fromkeys(str(o) for o in ids):
        o = objects.get(oid)
        try:
            x, y, w, h = (int(o[k]) for k in ("x", "y", "w", "h"))
        except (TypeError, KeyError, ValueError):
            continue
        out.append(
            {"object_id": oid, "name": str(o.get("name", "")), "box_xyxy": [x, y, x + w, y + h]}
        )
    return out


def _image_file(images_dir: Path, image_id: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        p = images_dir / f"{image_id}{suffix}"
        if p.is_file():
            return p
    return images_dir / f"{image_id}.jpg"


def import_gqa(
    store: Store,
    questions: str | Path,
    images_dir: str | Path,
    *,
    scene_graphs: str | Path | None = None,
    dataset: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ImportReport:
    """Import GQA questions (module docstring) as VQA items of ``dataset`` (default: the
    questions file's stem). Raises :class:`GqaError` when a file cannot be read at all."""
    qpath = Path(questions)
    items = read_questions(qpath)
    graphs = _load(Path(scene_graphs), "scene graphs file") if scene_graphs else {}
    if not isinstance(graphs, dict):
        raise GqaError(
            f"scene graphs file {scene_graphs}: a JSON object (image id → graph) is needed"
        )
    if sample is not None and sample < len(items):
        pick = np.sort(np.random.default_rng(seed).choice(len(items), size=sample, replace=False))
        items = [items[i] for i in pick]
    name = dataset or qpath.stem
    images = Path(images_dir)
    report = ImportReport()
    cache = ImageCache()
    for n, (qid, e) in enumerate(items):
        if should_cancel is not None and should_cancel():
            report.cancelled = True
            break
        if progress is not None:
            progress(n, len(items), qid)
        if not isinstance(e, dict):
            report.errors.append((f"question {qid}", "not a JSON object"))
            continue
        fields = {k: e.get(k) for k in ("imageId", "question", "answer")}
        missing = [
            k for k, v in fields.items() if not isinstance(v, str | int) or not str(v).strip()
        ]
        if missing:
            report.errors.append((f"question {qid}", f"no {', '.join(missing)}"))
            continue
        image_id = str(e["imageId"])
        path = _image_file(images, image_id).resolve()
        try:
            sha, h, w = cache.info(path)
        except ImageError as exc:
            report.errors.append((f"question {qid}", str(exc)))
            continue
        graph = graphs.get(image_id)
        if isinstance(graph, dict) and (graph.get("height"), graph.get("width")) not in (
            (None, None),
            (h, w),
        ):
            report.errors.append(
                (
                    f"question {qid}",
                    f"scene graph says {graph.get('height')}x{graph.get('width')} but {path.name} is {h}x{w}",
                )
            )
            continue
        boxes = answer_boxes(e, graph)

        def add(s, qid=qid, e=e, path=path, sha=sha, h=h, w=w, boxes=boxes) -> bool:
            ds = repo.get_or_create_dataset(s, name)
            found = s.scalar(
                select(VqaItem.id).where(VqaItem.dataset_id == ds.id, VqaItem.external_id == qid)
            )
            if found is not None:
                return False
            img = repo.get_or_create_image(s, ds, path, sha, (h, w))
            s.add(
                VqaItem(
                    dataset_id=ds.id,
                    image_id=img.id,
                    external_id=qid,
                    question=" ".join(str(e["question"]).split()),
                    answer=str(e["answer"]).strip(),
                    full_answer=str(e.get("fullAnswer") or "").strip(),
                    boxes=boxes,
                )
            )
            return True

        if store.run(add):
            report.added += 1
        else:
            report.existing += 1
    if progress is not None and not report.cancelled:
        progress(len(items), len(items), "done")
    return report
