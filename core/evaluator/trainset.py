"""Reading evaluator-training JSONL (``rea2seg export evaluator-train``) back as questions.

The export writes one line per group of s masks (§4.3, App. B). Training reshuffles the
candidates into new groups every epoch, and the evaluator's quality is measured by scoring the
same candidates in other groupings, so both need each question's FULL candidate list with its
true IoUs. :func:`load_question_sets` rebuilds it: lines with the same ``(run_id, sample_id)``
in one file are one question; their candidates are the union of the lines' ``candidate_ids``
(a padded slot repeats a candidate of another line and is read once).

Fields read per line: ``image`` (original first, then one mask picture per candidate, paths
relative to the file's folder), ``ious``, ``candidate_ids`` (optional: the mask paths identify the
candidates without them), ``sample_id`` / ``run_id`` (optional: without them every line is its own
question), ``question`` (optional; else read from the human turn's ``Question: …`` line),
``reasoning`` (optional; else the text before ``Answer:`` in the gpt turn when there is any),
``prompt_format``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.evaluator.prompt import ANSWER_MARKER

_QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class QuestionSet:
    """One question with all its candidates.

    ``mask_paths[i]`` is a 0/255 mask picture of candidate ``candidate_ids[i]`` (the export's
    PNG; > 127 = mask) at the original image's size; ``ious[i]`` its true IoU in [0, 1].
    ``reasoning`` is the chain-of-thought text of the answer, or ``None`` when the data has none.
    """

    key: str
    image_path: Path
    question: str
    candidate_ids: list[int | str]
    mask_paths: list[Path]
    ious: list[float]
    reasoning: str | None = None
    prompt_format: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.candidate_ids) == len(self.mask_paths) == len(self.ious)):
            raise ValueError(
                f"{self.key}: {len(self.candidate_ids)} ids, {len(self.mask_paths)} masks, "
                f"{len(self.ious)} IoUs"
            )
        if not self.candidate_ids:
            raise ValueError(f"{self.key}: no candidates")

    def __len__(self) -> int:
        return len(self.candidate_ids)

    def load_image(self) -> np.ndarray:
        """The original image, uint8 RGB (H, W, 3)."""
        img = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read image {self.image_path}")
        return np.ascontiguousarray(img[:, :, ::-1])

    def load_mask(self, i: int) -> np.ndarray:
        """Candidate ``i`` as a bool (H, W) mask."""
        m = cv2.imread(str(self.mask_paths[i]), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise OSError(f"cannot read mask {self.mask_paths[i]}")
        return m > 127


def _question_of(rec: dict) -> str:
    if rec.get("question"):
        return str(rec["question"])
    human = next((c["value"] for c in rec.get("conversations", []) if c.get("from") == "human"), "")
    m = _QUESTION.search(human)
    if not m:
        raise ValueError(f"line {rec.get('id')!r}: no question field and no 'Question:' line")
    return m.group(1).strip()


def _reasoning_of(rec: dict) -> str | None:
    if rec.get("reasoning"):
        return str(rec["reasoning"]).strip() or None
    if rec.get("reasoning_missing"):
        return None
    gpt = next((c["value"] for c in rec.get("conversations", []) if c.get("from") == "gpt"), "")
    if ANSWER_MARKER in gpt:
        return gpt.split(ANSWER_MARKER, 1)[0].strip() or None
    return None


def load_question_sets(paths: list[str | Path] | str | Path) -> list[QuestionSet]:
    """Questions from one or more evaluator-training JSONL files (module docstring), in file
    order. Raises ``ValueError`` naming the file and line for a malformed line."""
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[QuestionSet] = []
    for path in paths:
        path = Path(path).expanduser().resolve()
        root = path.parent
        sets: dict[str, dict] = {}
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    images = [Path(p) for p in rec["image"]]
                    ious = [float(v) for v in rec["ious"]]
                    cids = rec.get("candidate_ids") or [str(p) for p in images[1:]]
                    if not (len(images) - 1 == len(ious) == len(cids)):
                        raise ValueError("image, ious and candidate_ids disagree in length")
                    if "sample_id" in rec:
                        key = f"{path.name}:r{rec.get('run_id', '')}:s{rec['sample_id']}"
                    else:
                        key = f"{path.name}:{rec.get('id', n)}"
                    qs = sets.setdefault(
                        key,
                        {
                            "image": images[0] if images[0].is_absolute() else root / images[0],
                            "question": _question_of(rec),
                            "ids": [],
                            "masks": [],
                            "ious": [],
                            "reasoning": _reasoning_of(rec),
                            "fmt": rec.get("prompt_format"),
                        },
                    )
                    for cid, p, v in zip(cids, images[1:], ious, strict=True):
                        if cid in qs["ids"]:
                            continue  # a padded slot: this candidate belongs to another line
                        qs["ids"].append(cid)
                        qs["masks"].append(p if p.is_absolute() else root / p)
                        qs["ious"].append(min(1.0, max(0.0, v)))
                except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
                    raise ValueError(f"{path}:{n}: not an evaluator-training line ({exc})") from exc
        for key, qs in sets.items():
            out.append(
                QuestionSet(
                    key,
                    qs["image"],
                    qs["question"],
                    qs["ids"],
                    qs["masks"],
                    qs["ious"],
                    qs["reasoning"],
                    qs["fmt"],
                )
            )
    return out
