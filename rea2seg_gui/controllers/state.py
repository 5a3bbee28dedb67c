"""What is shown now: one plain object the window and the controllers share (no widgets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.trace import PipelineTrace


@dataclass
class SampleState:
    """The current sample: ``image`` uint8 (H, W, 3) RGB; masks bool (H, W) at its resolution."""

    sample_id: int | None = None
    image: np.ndarray | None = None
    image_error: str | None = None
    image_path: str | None = None
    gt: np.ndarray | None = None
    ignore: np.ndarray | None = None
    edit_mask: np.ndarray | None = None  # the saved edited mask
    trace: PipelineTrace | None = None
    run_id: int | None = None

    def edit_base(self) -> tuple[np.ndarray | None, str]:
        """The mask an edit starts from: the edited mask, else the ground truth, else empty."""
        if self.image is None:
            return None, "none"
        if self.edit_mask is not None:
            return self.edit_mask, "edited"
        if self.gt is not None:
            return self.gt.copy(), "ground truth"
        return np.zeros(self.image.shape[:2], bool), "empty"

    def reference_mask(self) -> np.ndarray | None:
        """The mask candidates are scored against: the edited mask, else the imported ground truth."""
        return self.edit_mask if self.edit_mask is not None else self.gt
