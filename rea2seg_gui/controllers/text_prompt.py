"""The Edit tab's text / concept prompt: SAM 3 (:class:`core.models.sam3_text.Sam3TextSegmenter`,
transformers' ``Sam3Model``) segments every instance of a typed concept in the shown image, in
the window's worker; the instances become the sample's edited mask (one store change, with
provenance ``{"tool": "sam3_text", "text", "model", "threshold", "scores", "instances"}``),
which every edit tool then refines. Choosing one instance in the panel saves that one instead.

The checkpoint is loaded once per (folder, threshold) and kept; its loading shows in the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6 import QtCore

from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.controllers.state import SampleState

ALL = -1
SETTING = "sam3/checkpoint"


class TextPromptController(QtCore.QObject):
    """``status(text)``; ``mask_added(sample_id)`` after the instances were saved;
    ``show_edited_layer`` when the edited layer should be turned on."""

    status = QtCore.Signal(str)
    mask_added = QtCore.Signal(int)
    show_edited_layer = QtCore.Signal()

    def __init__(
        self,
        state: SampleState,
        box: Any,
        jobs: JobRunner,
        commit: Callable[[np.ndarray | None, dict[str, Any]], bool],
        settings: QtCore.QSettings | None = None,
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.box, self.jobs, self._commit, self.settings = (
            state,
            box,
            jobs,
            commit,
            settings,
        )
        self._models: dict[tuple[str, float], Any] = {}
        self.last: dict[str, Any] | None = None  # the last answer: sample, text, masks, scores
        if settings is not None and settings.value(SETTING):
            box.checkpoint_edit.setText(str(settings.value(SETTING)))
        box.segment_requested.connect(self.segment)
        box.instance_chosen.connect(self.use_instance)

    def segment(self, text: str) -> bool:
        """Run SAM 3 on the shown sample's image with ``text``; False (and said) when it cannot
        start: no sample, no checkpoint folder, or another job running."""
        from core.models.sam3_text import load_sam3

        st, box = self.state, self.box
        if st.image is None or st.sample_id is None:
            box.show_state("Pick a sample with a readable image first.")
            return False
        path = box.checkpoint()
        if not path:
            box.show_state("Choose a SAM 3 checkpoint folder first (Browse…).")
            return False
        if self.jobs.busy:
            box.show_state(f"{self.jobs.name or 'a job'} is running; try again after it.")
            return False
        if self.settings is not None:
            self.settings.setValue(SETTING, path)
        key, image, sid, models = (path, box.threshold()), st.image, st.sample_id, self._models

        def job(progress, should_cancel):
            model = models.get(key)
            if model is None:
                progress(0, 2, f"loading SAM 3 from {path}")
                model = models[key] = load_sam3(path, threshold=key[1], setting="Checkpoint")
            progress(1, 2, f"SAM 3: segmenting '{text}'")
            masks, scores = model.segment(image, text)
            progress(2, 2, "SAM 3 done")
            return masks, scores, model.name, model.is_random

        def progress(done: int, total: int, label: str) -> None:
            if self.jobs.name == "SAM 3":
                box.show_state(f"{label}…" if done < total else label)

        def done(result) -> None:
            self.jobs.progress.disconnect(progress)
            box.set_busy(False)
            masks, scores, name, rnd = result
            if self.state.sample_id != sid:
                box.show_state("SAM 3 answered for another sample; nothing was saved.")
                return
            self.last = {
                "sample": sid,
                "text": text,
                "masks": masks,
                "scores": scores,
                "model": name,
                "is_random": rnd,
                "threshold": key[1],
            }
            box.show_instances(scores)
            if not masks:
                box.show_state(
                    f"SAM 3 found no '{text}' scoring {key[1]:.2f} or more; nothing was saved."
                    + (" (RANDOM WEIGHTS)" if rnd else "")
                )
                return
            self.use_instance(ALL)

        def failed(msg: str) -> None:
            self.jobs.progress.disconnect(progress)
            box.set_busy(False)
            box.show_state(f"SAM 3 failed: {msg.splitlines()[0]}")

        import_model_stack()  # on the GUI thread, before the worker uses the model stack
        self.jobs.progress.connect(progress)
        if not self.jobs.start(job, done, "SAM 3", failed, cancellable=False):
            self.jobs.progress.disconnect(progress)
            return False
        box.set_busy(True)
        box.show_state(f"SAM 3: segmenting '{text}'…")
        return True

    def use_instance(self, index: int) -> bool:
        """Save instance ``index`` of the last answer (``ALL``: their union) as the edited mask."""
        last = self.last
        if last is None or not last["masks"] or last["sample"] != self.state.sample_id:
            return False
        idx = list(range(len(last["masks"]))) if index == ALL else [index]
        mask = np.logical_or.reduce([last["masks"][i] for i in idx])
        prov = {
            "tool": "sam3_text",
            "text": last["text"],
            "model": last["model"],
            "is_random": last["is_random"],
            "threshold": last["threshold"],
            "scores": [round(float(s), 4) for s in last["scores"]],
            "instances": idx,
        }
        if not self._commit(mask, prov):
            return False
        n = len(idx)
        self.box.show_state(
            f"saved {n} instance{'' if n == 1 else 's'} of '{last['text']}' as the edited mask"
            " — refine it with the brush, eraser, polygon or SAM clicks"
            + (" — RANDOM WEIGHTS" if last["is_random"] else "")
        )
        self.show_edited_layer.emit()
        self.status.emit(f"sample {last['sample']}: SAM 3 mask for '{last['text']}' saved")
        self.mask_added.emit(int(last["sample"]))
        return True
