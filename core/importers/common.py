"""Shared import machinery: the report and the idempotent sample insert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.images import ImageError, image_info
from core.store import repo
from core.store.models import Dataset, Image, Sample


@dataclass
class ImportReport:
    """What an import did. ``errors`` are (item name, reason); the exit status follows them."""

    added: int = 0
    existing: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = (
        False  # stopped early through ``should_cancel``; running the import again finishes it
    )

    @property
    def ok(self) -> bool:
        return not self.errors and not self.cancelled

    @property
    def skipped(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        lines = [f"added {self.added}, already present {self.existing}, skipped {len(self.errors)}"]
        if self.cancelled:
            lines[0] += " (cancelled: run the import again to finish it)"
        lines += [f"  skipped {name}: {reason}" for name, reason in self.errors]
        return "\n".join(lines)


Progress = Callable[[int, int, str], None]
ShouldCancel = Callable[[], bool]


def _no_progress(done: int, total: int, label: str) -> None:
    pass


def _never() -> bool:
    return False


class ImageCache:
    """(sha256, h, w) per image path, so an image shared by samples is read once per import."""

    def __init__(self) -> None:
        self._info: dict[Path, tuple[str, int, int] | ImageError] = {}

    def info(self, path: Path) -> tuple[str, int, int]:
        key = path.resolve()
        if key not in self._info:
            try:
                self._info[key] = image_info(key)
            except ImageError as exc:
                self._info[key] = exc
        got = self._info[key]
        if isinstance(got, ImageError):
            raise got
        return got


def sample_exists(s: Session, dataset: Dataset, external_id: str) -> bool:
    q = select(Sample.id).where(Sample.dataset_id == dataset.id, Sample.external_id == external_id)
    return s.scalar(q) is not None


def insert_sample(
    s: Session,
    dataset: Dataset,
    image: Image,
    *,
    external_id: str,
    question: str,
    category: str,
    source: str,
    status: str,
    mask: np.ndarray | dict[str, Any] | None,
    ignore: np.ndarray | dict[str, Any] | None,
    is_sentence: bool | None = None,
) -> Sample:
    """Insert a sample with its ground-truth and ignore masks (validated against the image size)."""
    sample = Sample(
        dataset_id=dataset.id,
        image_id=image.id,
        external_id=external_id,
        question=question,
        category=category,
        source=source,
        status=status,
        is_sentence=is_sentence,
    )
    sample.image = image
    s.add(sample)
    s.flush()
    if mask is not None:
        sample.gt_mask_id = repo.add_mask(s, sample, mask, "gt").id
    if ignore is not None:
        sample.ignore_mask_id = repo.add_mask(s, sample, ignore, "ignore").id
    s.flush()
    return sample
