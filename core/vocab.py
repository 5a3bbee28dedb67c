"""The store's fixed vocabularies: sample categories, review statuses and decisions, benchmark
splits, generation verdicts, IoU ignore modes. Lowest layer: imports nothing; the store, the
formats, the CLI and the GUI all take these names from here."""

from __future__ import annotations

from typing import Literal

CATEGORIES = ("discriminative", "geometric", "spatial", "multi_step", "reasonseg", "other")
STATUSES = ("pending", "verified", "rejected", "flagged")
DECISIONS = ("accept", "reject", "flag")
"""An annotator's review decisions (``review.decide`` also takes ``reopen``, which is no vote)."""
SPLITS = ("spatial", "multi_step", "discriminative")
"""The splits built from instance datasets (§3)."""
VERDICTS = ("accepted", "rejected", "skipped", "error", "fixed")
"""A question generation's outcome (App. C): the verifier's verdict, or why there is none."""
VERDICT_FILTERS = ("accepted", "rejected", "fixed", "not generated")
"""What a question list can be filtered by: a verifier verdict, or no generation yet."""
DISCRIMINATIVE_KINDS = ("camouflage", "thin_object")
"""The fixed questions of the discriminative split (App. C)."""
IGNORE_MODES = ("exclude", "background")
"""Ignore pixels excluded from IoU (LISA's protocol) or counted as background (LENS's)."""
IgnoreMode = Literal["exclude", "background"]
EXPORT_MASKS = ("reviewed", "gt")
"""Which mask an export writes: the reviewer's edited mask when there is one (else the imported
ground truth), or the imported ground truth only."""
ExportMask = Literal["reviewed", "gt"]
IMAGE_MODES = ("copy", "symlink")
"""How a folder export holds its images: copies of the files, or symlinks to them."""
ImageMode = Literal["copy", "symlink"]
