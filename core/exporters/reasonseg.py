"""Export of a store's samples to LISA's ReasonSeg layout: ``OUT/<name>.jpg`` + ``OUT/<name>.json``
(format in :mod:`core.formats.reasonseg`; :mod:`core.importers.reasonseg` reads it back).

How samples map to files:

- Each sample's current question goes into ``text``; its mask (:attr:`ReasonSegSettings.mask`:
  the reviewed (edited) mask when there is one, else the imported ground truth; or the ground
  truth only) becomes ``target`` polygons and its ignore region ``ignore`` polygons
  (:func:`core.formats.reasonseg.mask_to_shapes`).
- Samples of one image that share the same mask, ignore region and ``is_sentence`` share one
  JSON (their questions in ``text``, in sample order), as ReasonSeg holds several questions of
  one image. Any other sample of that image gets its own JSON and its own copy of the image,
  named ``<stem>__1``, ``<stem>__2``, … (LISA pairs a JSON with the image of the same name).
  The same rule keeps apart two images with the same file name.
- A JPEG is written as ``.jpg`` and a PNG as ``.png``, with the source file's bytes (or a link
  to it, :attr:`ReasonSegSettings.images`); LISA's own loader globs ``*.jpg`` only, so the
  report counts the PNGs. Other image types are skipped and reported.
- ``is_sentence`` is written from the store; a sample without one is written with
  :data:`UNKNOWN_IS_SENTENCE`.

Polygons cannot hold a hole the way LISA fills them, so a hole comes back filled. For every
written sample the mask is compared with its polygons rasterised by
:func:`core.formats.reasonseg.rasterize` (LISA's way) and the IoU is in the report; samples
under :attr:`ReasonSegSettings.min_iou` are listed with what they lose (they are still written,
and the command exits 1).

The folder is written whole or not at all: it is built beside ``OUT`` and renamed into place
at the end, so a failure or a cancel leaves nothing. ``OUT`` must not exist or be empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from core.fileio import WriteError, folder_problem
from core.formats.reasonseg import (
    PolygonFidelity,
    annotation_text,
    mask_to_shapes,
    polygon_fidelity,
)
from core.formats.sgdr import check_text, printable
from core.images import file_sha256
from core.masks import MaskError, decode_rle
from core.store import Store, repo
from core.store.listing import chunks
from core.store.models import Dataset, Mask
from core.vocab import EXPORT_MASKS as MASK_CHOICES
from core.vocab import IMAGE_MODES, ImageMode
from core.vocab import ExportMask as MaskChoice

# not from the paper: a sample whose ``is_sentence`` the store does not know (not imported from
# ReasonSeg) is written as a sentence; the store's questions are whole sentences
UNKNOWN_IS_SENTENCE = True
_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png"}

Progress = Callable[[int, int, str], None]
ShouldCancel = Callable[[], bool]


@dataclass(frozen=True)
class ReasonSegSettings:
    """Options of ``rea2seg export reasonseg`` (the one source of their defaults; not from the paper).

    ``mask``: ``"reviewed"`` (the edited mask when there is one, else the imported ground
    truth) or ``"gt"`` (the imported ground truth; a sample without one is skipped).
    ``images``: ``"copy"`` the image files, or ``"symlink"`` to them (absolute links; importing
    the folder again then needs ``--allow-outside``). ``min_iou``: samples whose polygons,
    rasterised, reach a lower IoU with their mask (or ignore region) are listed in the report."""

    mask: MaskChoice = "reviewed"
    images: ImageMode = "copy"
    min_iou: float = 0.99

    def __post_init__(self) -> None:
        if self.mask not in MASK_CHOICES:
            raise ValueError(
                f"unknown mask choice {self.mask!r}; use one of {', '.join(MASK_CHOICES)}"
            )
        if self.images not in IMAGE_MODES:
            raise ValueError(
                f"unknown image mode {self.images!r}; use one of {', '.join(IMAGE_MODES)}"
            )
        if not isinstance(self.min_iou, int | float) or not 0.0 <= float(self.min_iou) <= 1.0:
            raise ValueError(f"min_iou must be a number from 0 to 1, got {self.min_iou!r}")


@dataclass(frozen=True)
class SampleFidelity(PolygonFidelity):
    """One written sample's :class:`PolygonFidelity`, with its name in messages and the JSON it
    went to."""

    sample: str = ""
    file: str = ""

    @classmethod
    def of(cls, fidelity: PolygonFidelity, sample: str, file: str) -> SampleFidelity:
        return cls(**asdict(fidelity), sample=sample, file=file)

    def describe(self) -> str:
        parts = [f"IoU {self.iou:.4f}"]
        if self.added:
            parts.append(f"{self.added} px of holes filled")
        if self.removed:
            parts.append(f"{self.removed} px lost")
        if self.ignore_changed:
            parts.append(f"ignore IoU {self.ignore_iou:.4f} ({self.ignore_changed} px differ)")
        return f"{self.sample} -> {self.file}: " + ", ".join(parts)


@dataclass
class ReasonSegExportReport:
    """What an export wrote: ``written`` samples in ``files`` JSON files under ``out``
    (``reviewed`` of them with the reviewer's edited mask), each sample's polygon
    :class:`SampleFidelity` in ``fidelity``, each skipped sample with its reason in ``skipped``,
    ``png`` images that LISA's own ``*.jpg`` glob would miss."""

    out: Path
    min_iou: float
    written: int = 0
    files: int = 0
    reviewed: int = 0
    png: int = 0
    fidelity: list[SampleFidelity] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    @property
    def below(self) -> list[SampleFidelity]:
        """The written samples whose polygons hold less than ``min_iou``, worst first."""
        return sorted(
            (f for f in self.fidelity if f.worst < self.min_iou), key=lambda f: (f.worst, f.sample)
        )

    @property
    def lowest_iou(self) -> float | None:
        """The lowest IoU (target or ignore) of any written sample; ``None`` when none was written."""
        return min((f.worst for f in self.fidelity), default=None)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.below and not self.cancelled

    def summary(self) -> str:
        if self.cancelled:
            return f"cancelled: nothing written to {self.out}"
        lines = [
            f"wrote {self.written} samples in {self.files} JSON files to {self.out} ({self.reviewed} with a "
            f"reviewed mask, {self.written - self.reviewed} with the imported ground truth); "
            f"skipped {len(self.skipped)}"
        ]
        low = self.lowest_iou
        if low is not None:
            exact = sum(f.exact for f in self.fidelity)
            lines.append(
                f"polygons rasterised as LISA does: lowest IoU {low:.4f}; {exact} of {self.written} "
                f"exact; {len(self.below)} below --min-iou {self.min_iou:g}"
            )
        lines += [f"  below {self.min_iou:g}: {f.describe()}" for f in self.below]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        if self.png:
            lines.append(f"note: {self.png} images are PNG; LISA's own loader reads *.jpg only")
        return "\n".join(lines)


@dataclass
class _Row:
    """One sample as read from the store (plain values: used after the session ends)."""

    name: str
    image_id: int
    image_path: str
    sha256: str
    hw: tuple[int, int]
    question: str
    is_sentence: bool
    mask: dict[str, Any] | None
    ignore: dict[str, Any] | None
    reviewed: bool


@dataclass
class _Group:
    """Samples written to one JSON: same image, mask, ignore region and ``is_sentence``. The
    masks are decoded again when the JSON is written, so that only one is held at a time."""

    rows: list[_Row]
    has_ignore: bool

    def masks(self) -> tuple[np.ndarray, np.ndarray | None]:
        first = self.rows[0]
        target = np.ascontiguousarray(decode_rle(first.mask, first.hw, validate=False))
        ignore = (
            np.ascontiguousarray(decode_rle(first.ignore, first.hw, validate=False))
            if self.has_ignore
            else None
        )
        return target, ignore


def _digest(mask: np.ndarray) -> bytes:
    return hashlib.sha256(np.packbits(mask).tobytes()).digest()


def _read_rows(
    store: Store, status: str | None, dataset: str | None, mask: MaskChoice
) -> list[_Row]:
    def collect(s) -> list[_Row]:
        samples = repo.list_samples(s, status=status, dataset=dataset)
        datasets = {d.id: d.name for d in s.scalars(select(Dataset))}
        pick = {
            r.id: (r.edited_mask_id or r.gt_mask_id) if mask == "reviewed" else r.gt_mask_id
            for r in samples
        }
        ids = {m for r in samples for m in (pick[r.id], r.ignore_mask_id) if m is not None}
        rles = {  # IN lists of bounded length: a PostgreSQL statement takes 65,535 parameters
            m.id: {"size": [m.height, m.width], "counts": m.counts}
            for batch in chunks(ids)
            for m in s.execute(
                select(Mask.id, Mask.height, Mask.width, Mask.counts).where(Mask.id.in_(batch))
            )
        }
        rows = []
        for r in samples:
            mid = pick[r.id]
            rows.append(
                _Row(
                    name=f"{printable(datasets[r.dataset_id], 80)}/{printable(r.external_id, 120)} (sample {r.id})",
                    image_id=r.image_id,
                    image_path=r.image.path,
                    sha256=r.image.sha256,
                    hw=(r.image.height, r.image.width),
                    question=r.question,
                    is_sentence=UNKNOWN_IS_SENTENCE
                    if r.is_sentence is None
                    else bool(r.is_sentence),
                    mask=rles.get(mid) if mid is not None else None,
                    ignore=rles.get(r.ignore_mask_id) if r.ignore_mask_id is not None else None,
                    reviewed=mask == "reviewed" and r.edited_mask_id is not None,
                )
            )
        return rows

    return store.run(collect, write=False)


def _image_problem(path: str, sha256: str) -> str | None:
    """Why the image can no longer be exported, or ``None``."""
    p = Path(path)
    if p.suffix.lower() not in _SUFFIXES:
        return (
            f"image {printable(p.name)}: only .jpg / .jpeg / .png images pair with a ReasonSeg JSON"
        )
    if not p.is_file():
        return f"image {printable(str(p))} no longer exists"
    try:
        if file_sha256(p) != sha256:
            return f"image {printable(str(p))} changed on disk since it was imported"
    except OSError as exc:
        return f"image {printable(str(p))} cannot be read ({' '.join(str(exc.strerror or exc).split())})"
    return None


def _groups(rows: list[_Row], mask: MaskChoice, report: ReasonSegExportReport) -> list[_Group]:
    """Check each sample and group those that share a JSON; problems go to ``report.skipped``."""
    image_ok: dict[int, str | None] = {}
    groups: dict[tuple, _Group] = {}
    for r in rows:
        if r.image_id not in image_ok:
            image_ok[r.image_id] = _image_problem(r.image_path, r.sha256)
        problem = image_ok[r.image_id]
        if problem is None and r.mask is None:
            problem = (
                "no mask to export (no reviewed mask and no ground truth)"
                if mask == "reviewed"
                else "no imported ground truth (--mask gt)"
            )
        target = ignore = None
        if problem is None:
            try:
                check_text(r.question, "question")
                target = decode_rle(r.mask, r.hw)
                ignore = decode_rle(r.ignore, r.hw) if r.ignore is not None else None
            except (MaskError, ValueError) as exc:
                problem = " ".join(str(exc).split())
        if problem is not None:
            report.skipped.append((r.name, problem))
            continue
        has_ignore = ignore is not None and bool(ignore.any())
        key = (r.image_id, r.is_sentence, _digest(target), _digest(ignore) if has_ignore else None)
        if key in groups:
            groups[key].rows.append(r)
        else:
            groups[key] = _Group([r], has_ignore)
    return list(groups.values())


def _unique(stem: str, used: set[str]) -> str:
    """``stem``, else ``stem__1``, ``stem__2``, … : the first not in ``used`` (case-insensitive)."""
    name, n = stem, 0
    while name.lower() in used:
        n += 1
        name = f"{stem}__{n}"
    used.add(name.lower())
    return name


def export_reasonseg(
    store: Store,
    out: str | Path,
    *,
    status: str | None = None,
    dataset: str | None = None,
    settings: ReasonSegSettings | None = None,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ReasonSegExportReport:
    """Write the store's samples (optionally one review ``status`` / one ``dataset``) to the
    folder ``out`` in the ReasonSeg layout (module doc). ``out`` that exists and is not an
    empty folder, or that cannot be created, raises :class:`core.fileio.WriteError` before
    anything is read or written. A sample whose image is gone, changed, or of another type, or
    that has no mask, is skipped and reported; the rest is written. ``progress(done, total,
    label)`` is called per JSON; when ``should_cancel()`` turns true nothing is written."""
    settings = settings or ReasonSegSettings()
    progress = progress or (lambda done, total, label: None)
    should_cancel = should_cancel or (lambda: False)
    problem = folder_problem(out)
    if problem is not None:
        raise WriteError(problem)
    out_p = Path(out).expanduser().resolve()
    report = ReasonSegExportReport(out_p, float(settings.min_iou))
    groups = _groups(_read_rows(store, status, dataset, settings.mask), settings.mask, report)
    try:
        out_p.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_p.parent, prefix=f".{out_p.name}.", suffix=".tmp"))
    except OSError as exc:
        raise WriteError(
            f"{out_p}: cannot write ({' '.join(str(exc.strerror or exc).split())})"
        ) from None
    try:
        used: set[str] = set()
        for i, g in enumerate(groups):
            if should_cancel():
                report.cancelled = True
                break
            first = g.rows[0]
            src = Path(first.image_path)
            name = _unique(src.stem, used)
            progress(i, len(groups), name)
            image_name = name + _SUFFIXES[src.suffix.lower()]
            target, ignore = g.masks()
            shapes = mask_to_shapes(target, ignore)
            fid = polygon_fidelity(target, ignore, shapes)
            text = annotation_text(
                [r.question for r in g.rows],
                first.is_sentence,
                shapes,
                image_name=image_name,
                hw=first.hw,
            )
            if settings.images == "symlink":
                os.symlink(src.resolve(), tmp / image_name)
            else:
                shutil.copyfile(src, tmp / image_name)
            (tmp / f"{name}.json").write_text(text, encoding="ascii")
            report.files += 1
            report.png += image_name.endswith(".png")
            for r in g.rows:
                report.written += 1
                report.reviewed += r.reviewed
                report.fidelity.append(SampleFidelity.of(fid, r.name, f"{name}.json"))
        if report.cancelled:
            shutil.rmtree(tmp, ignore_errors=True)
            return report
        mode = 0o777 & ~_umask()
        os.chmod(tmp, mode)  # mkdtemp makes it private; the export is an ordinary folder
        os.replace(tmp, out_p)  # over an empty folder too (POSIX rename)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(
            f"{out_p}: cannot write ({' '.join(str(exc.strerror or exc).split())}); "
            "nothing was written"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):
        fd = os.open(out_p.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    progress(len(groups), len(groups), "done")
    return report


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
