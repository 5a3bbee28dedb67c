"""Mask editing: brush / eraser strokes, polygons, clean-ups and the SAM prompt session.

A SAM session collects one prompt: positive / negative clicks and at most one box (the SAM and
SAM box tools share it; a new box replaces the old one). Each change re-prompts SAM with all of
it at once, box and clicks together, and saves the mask. Without a box the chosen mask prompt
goes with the clicks; with a box SAM gets the box and the clicks alone (not from the paper: a
tool choice, recorded in the provenance as ``mask_prompt: None``).

Every finished edit is handed to ``commit(mask, provenance)`` (one store transaction, the
window's); SAM runs in the window's :class:`~rea2seg_gui.controllers.jobs.JobRunner` with the
preset's SAM from the :class:`core.pipeline.cache.ModelCache` (the run's SAM when it is loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6 import QtCore

from core.pipeline.cache import ModelCache
from rea2seg_gui.canvas import Canvas, DragMode
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.controllers.state import SampleState
from rea2seg_gui.panels.edit import EditPanel

MASK_PROMPT_LOGIT = 10.0  # a binary mask given to SAM as a mask prompt: +10 inside, −10 outside
HINTS = {
    "none": "drag to pan, wheel to zoom",
    "brush": "drag to paint ([ / ] size)",
    "eraser": "drag to erase",
    "polygon": "click vertices; Enter or double-click fills, Shift+Enter erases, Backspace removes a vertex",
    "sam": "left click = positive, right click = negative, Backspace undoes a click (X: add a box)",
    "box": "drag a rectangle: SAM segments what it holds; then left / right clicks add positive / "
    "negative points, Backspace undoes a click, then the box; Esc clears the prompt",
}
SAM_TOOLS = ("sam", "box")  # the tools that share the SAM prompt session


class EditController(QtCore.QObject):
    """``status(text)`` for the status bar; ``sam_finished`` when a SAM prediction ended (any way);
    ``stroke_started`` when the first paint of a stroke needs the edited layer shown."""

    status = QtCore.Signal(str)
    sam_finished = QtCore.Signal()
    show_edited_layer = QtCore.Signal()

    def __init__(
        self,
        state: SampleState,
        canvas: Canvas,
        panel: EditPanel,
        jobs: JobRunner,
        models: ModelCache,
        commit: Callable[[np.ndarray | None, dict[str, Any]], bool],
        selected_candidate: Callable[[], Any],
        run_id: Callable[[], int | None],
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.canvas, self.panel, self.jobs, self.models = (
            state,
            canvas,
            panel,
            jobs,
            models,
        )
        self._commit, self._candidate, self._run_id = commit, selected_candidate, run_id
        self.tool = "none"
        self.poly_points: list[tuple[float, float]] = []
        self._stroke: dict[str, Any] | None = None
        self.sam_points: list[tuple[float, float, int]] = []
        self._session: dict[str, Any] | None = None
        self._rerun = False
        self._running = False
        self._drag: list[float] | None = None  # (x0, y0, x1, y1) of the rectangle being dragged
        self.sam_box_xyxy: list[float] | None = None  # the session's box (image pixels, ordered)
        panel.tool_chosen.connect(self.set_tool)
        panel.brush_changed.connect(lambda v: setattr(canvas, "brush_radius", float(v)))
        panel.sam_prompt_changed.connect(self.end_sam_session)
        panel.mask_only_requested.connect(self.sam_prompt_mask_only)
        panel.cleanup_requested.connect(self.cleanup)
        canvas.clicked.connect(self.on_click)
        canvas.double_clicked.connect(self.on_double_click)
        canvas.dragged.connect(self.on_drag)
        canvas.drag_finished.connect(self.on_stroke_finished)

    @property
    def busy(self) -> bool:
        """True while a stroke, a polygon or a SAM session is in progress (refresh keeps it)."""
        return (
            self._stroke is not None
            or bool(self.poly_points)
            or self._session is not None
            or self._running
            or self._drag is not None
        )

    def reset(self) -> None:
        """A new sample: drop the polygon, stroke and SAM session."""
        self.poly_points = []
        self._stroke = None
        self.canvas.set_polygon(None)
        self.end_sam_session()

    def set_tool(self, name: str) -> None:
        if name not in SAM_TOOLS:
            self.end_sam_session()
        if name != "polygon":
            self.poly_points = []
            self.canvas.set_polygon(None)
        self.tool = name
        if self.panel.tool() != name:
            self.panel.choose_tool(name)
        mode = {"brush": DragMode.PAINT, "eraser": DragMode.PAINT, "box": DragMode.BOX}.get(
            name, DragMode.PAN
        )
        self.canvas.set_drag_mode(mode)
        self.canvas.brush_radius = float(self.panel.brush_radius())
        if self._drag is not None:  # a rectangle being dragged is dropped; the session's box stays
            self._drag = None
            self.canvas.set_box(self.sam_box_xyxy)
        self.status.emit(f"tool: {name} — {HINTS[name]}")

    def escape(self) -> None:
        """Esc on the canvas: cancel the polygon, else back to pan."""
        if self.poly_points:
            self.poly_points = []
            self.canvas.set_polygon(None)
            self.status.emit("polygon cancelled")
            return
        self.panel.choose_tool("none")

    # ------------------------------------------------------------------- brush / polygon
    def on_drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        from core.mask_edit import paint_stroke

        if self.tool == "box":
            self._drag_box(x0, y0, x1, y1)
            return
        if self.tool not in ("brush", "eraser"):
            return
        if self._stroke is None:
            base, source = self.state.edit_base()
            if base is None:
                return
            self._stroke = {"mask": base, "base": source}
        self._stroke["mask"] = paint_stroke(
            self._stroke["mask"],
            (x0, y0),
            (x1, y1),
            self.panel.brush_radius(),
            self.tool == "brush",
        )
        if not self.canvas.visible["edited"]:
            self.show_edited_layer.emit()
        self.canvas.update_mask("edited", self._stroke["mask"])

    def on_stroke_finished(self) -> None:
        if self.tool == "box":
            rect, self._drag = self._drag, None
            if rect is not None and not self.sam_box(rect):
                self.canvas.set_box(self.sam_box_xyxy)  # refused: the session's box (if any) again
            return
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self._commit(
                stroke["mask"],
                {"tool": self.tool, "radius": self.panel.brush_radius(), "base": stroke["base"]},
            )

    def on_click(self, x: float, y: float, button: int) -> None:
        if self.tool in ("brush", "eraser") and button == 1:
            self.on_drag(x, y, x, y)
            self.on_stroke_finished()
        elif self.tool == "polygon" and button == 1:
            self.poly_points.append((x, y))
            self.canvas.set_polygon(self.poly_points)
        elif self.tool in SAM_TOOLS:
            self.sam_click(x, y, 1 if button == 1 else 0)

    def on_double_click(self, x: float, y: float) -> None:
        if self.tool == "polygon":
            if not self.poly_points or self.poly_points[-1] != (x, y):
                self.poly_points.append((x, y))
            self.close_polygon(True)

    def close_polygon(self, add: bool) -> None:
        """Fill (or with ``add`` False, erase) the polygon drawn so far and save the mask."""
        from core.mask_edit import fill_polygon

        if self.tool != "polygon" or len(self.poly_points) < 3:
            self.status.emit("a polygon needs at least 3 vertices")
            return
        base, source = self.state.edit_base()
        pts = list(self.poly_points)
        self.poly_points = []
        self.canvas.set_polygon(None)
        self._commit(
            fill_polygon(base, np.array(pts), add),
            {
                "tool": "polygon",
                "mode": "add" if add else "erase",
                "points_xy": [list(p) for p in pts],
                "base": source,
            },
        )

    def undo_click(self) -> None:
        """Backspace: remove the last polygon vertex or undo the last SAM click (then the box)."""
        if self.tool == "polygon" and self.poly_points:
            self.poly_points.pop()
            self.canvas.set_polygon(self.poly_points)
        elif self.tool in SAM_TOOLS and (self.sam_points or self.sam_box_xyxy is not None):
            if self._other_job():
                return
            if self.sam_points:
                self.sam_points.pop()
                self.canvas.set_clicks(self.sam_points)
            else:
                self.sam_box_xyxy = None
                self.canvas.set_box(None)
            if self.sam_points or self.sam_box_xyxy is not None:
                self._run_sam()
            elif self._session is not None:
                session = self._session
                self._commit(
                    session["start_mask"],
                    {"tool": "sam", "clicks_undone": True, "restored": session["start_source"]},
                )
                self.end_sam_session()

    # ------------------------------------------------------------------------- clean-up
    def cleanup(self, what: str) -> None:
        from core.mask_edit import fill_holes, remove_specks

        if what == "clear":
            if self.state.image is not None:
                self._commit(np.zeros(self.state.image.shape[:2], bool), {"tool": "clear"})
            return
        base, source = self.state.edit_base()
        if base is None:
            return
        if what == "fill_holes":
            self._commit(fill_holes(base), {"tool": "fill_holes", "base": source})
        elif what == "remove_specks":
            area = self.panel.min_speck_area()
            self._commit(
                remove_specks(base, area),
                {"tool": "remove_specks", "min_area": area, "base": source},
            )

    def use_candidate(self, c: Any) -> None:
        if c is None:
            self.status.emit("Select a candidate first")
            return
        self._commit(
            c.mask.copy(),
            {
                "tool": "candidate",
                "from_candidate": c.id,
                "origin": c.origin,
                "run": self._run_id(),
            },
        )

    # ----------------------------------------------------------------------------- SAM
    def _drag_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """One drag segment: the rectangle runs from the drag's first point to the pointer."""
        if self._drag is None:
            self._drag = [x0, y0, x1, y1]
        self._drag[2:] = [x1, y1]
        self.canvas.set_box(self._drag)

    def _other_job(self) -> bool:
        """True (and said in the status bar) while a job other than SAM holds the worker."""
        if self.jobs.busy and not self._running:
            self.status.emit(f"{self.jobs.name or 'a job'} is running; try again after it")
            return True
        return False

    def sam_box(self, corners: list[float] | tuple[float, float, float, float]) -> bool:
        """Make the box from two opposite corners (image pixels; ordered and clipped to the image
        here) the session's box, replacing any earlier one, and re-prompt SAM with it and the
        session's clicks. The mask is saved with provenance ``{"tool": "sam_box", "box_xyxy": …,
        "points_xy": …, "labels": …}``. False when the box was refused."""
        if self.state.image is None or self.state.sample_id is None:
            return False
        h, w = self.state.image.shape[:2]
        xa, ya, xb, yb = (float(v) for v in corners)
        box = [
            min(max(min(xa, xb), 0.0), w - 1.0),
            min(max(min(ya, yb), 0.0), h - 1.0),
            min(max(max(xa, xb), 0.0), w - 1.0),
            min(max(max(ya, yb), 0.0), h - 1.0),
        ]
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            self.status.emit("drag a larger rectangle (at least 2 pixels each way)")
            return False
        if self._other_job() or not self._start_session(with_box=True):
            return False
        self.sam_box_xyxy = box
        self.canvas.set_box(box)
        self._run_sam()
        return True

    def end_sam_session(self) -> None:
        """Drop the session's prompt: its clicks and its box (hidden on the canvas)."""
        self.sam_points = []
        self.sam_box_xyxy = None
        self._drag = None
        self._session = None
        self._rerun = False
        self.canvas.set_clicks([])
        self.canvas.set_box(None)

    def _mask_prompt(self) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        """The chosen mask prompt as SAM logits (float32 (H, W), ±10) and its description."""
        key = self.panel.sam_prompt_key()
        mask, desc = None, None
        if key == "current":
            mask, source = self.state.edit_base()
            desc = {"source": source}
            if source == "empty":
                mask = None
        elif key == "candidate":
            c = self._candidate()
            if c is not None:
                mask, desc = (
                    c.mask,
                    {"source": "candidate", "from_candidate": c.id, "run": self._run_id()},
                )
        elif key == "gt" and self.state.gt is not None:
            mask, desc = self.state.gt, {"source": "ground truth"}
        if mask is None:
            return None, None
        return np.where(mask, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT).astype(np.float32), desc

    def _start_session(self, with_box: bool = False) -> bool:
        if self._session is not None:
            return True
        if self.state.image is None or self.state.sample_id is None:
            return False
        if (
            self.panel.sam_prompt_key() == "candidate"
            and self._candidate() is None
            and not with_box
        ):
            self.status.emit(
                "the mask prompt is 'selected candidate': pick one in the Candidates tab first"
            )
            return False
        logits, desc = self._mask_prompt()
        self._session = {
            "prior": logits,
            "prior_desc": desc,
            "start_mask": self.state.edit_mask,
            "start_source": "edited" if self.state.edit_mask is not None else "none",
        }
        return True

    def sam_click(self, x: float, y: float, label: int) -> None:
        """A positive (1) or negative (0) click at image pixel (x, y): re-prompt SAM and save."""
        if self._other_job() or not self._start_session(with_box=self.sam_box_xyxy is not None):
            return
        self.sam_points.append((float(x), float(y), int(label)))
        self.canvas.set_clicks(self.sam_points)
        self._run_sam()

    def sam_prompt_mask_only(self) -> None:
        """Prompt SAM with the chosen mask alone (no clicks): SAM's reading of an existing mask."""
        if self.panel.sam_prompt_key() == "none":
            self.status.emit("choose a mask prompt first (Edit tab)")
            return
        if self.tool != "sam":
            self.panel.choose_tool("sam")
        self.end_sam_session()
        if not self._start_session():
            return
        if self._session["prior"] is None:
            self.status.emit("there is no such mask for this sample")
            self.end_sam_session()
            return
        self._run_sam()

    def _run_sam(self) -> None:
        if self.state.image is None or self._session is None:
            return
        if self._running:  # clicks made while SAM works are batched into the next prediction
            self._rerun = True
            return
        if self._other_job():
            return
        image, session, sid = self.state.image, self._session, self.state.sample_id
        key = (sid, self.state.image_path)  # the embedding cache's key: sample id + image path
        pts = np.array([[p[0], p[1]] for p in self.sam_points], np.float32).reshape(-1, 2)
        labels = np.array([p[2] for p in self.sam_points], np.int32)
        box = None if self.sam_box_xyxy is None else list(self.sam_box_xyxy)
        prior, prior_desc = (
            (session["prior"], session["prior_desc"]) if box is None else (None, None)
        )
        preset, models = self.panel.sam_preset_name(), self.models

        def job(progress, should_cancel):
            sam, rnd = models.sam(preset)
            with models.sam_lock(sam):
                models.set_image(sam, key, image)
                logits, iou = sam.predict_points(pts, labels, prior, multimask=False, box_xyxy=box)
            return logits[0] > 0, float(iou[0]), sam.name, rnd

        def done(result) -> None:
            self._running = False
            if self._rerun:  # clicks made meanwhile supersede this result
                self._rerun = False
                self._run_sam()
                return
            if self._session is not session or self.state.sample_id != sid:
                self.sam_finished.emit()  # the session ended (other sample, other tool) while SAM worked
                return
            mask, score, name, rnd = result
            prov = {
                "tool": "sam" if box is None else "sam_box",
                "model": name,
                "preset": preset,
                "is_random": rnd,
                "points_xy": pts.tolist(),
                "labels": labels.tolist(),
                "mask_prompt": prior_desc,
                "multimask": False,
                "predicted_iou": score,
            }
            if box is not None:
                prov["box_xyxy"] = [round(v, 2) for v in box]
            self._commit(mask, prov)
            self.panel.show_state(
                f"SAM mask saved (predicted IoU {score:.3f}, {_prompt_words(box, len(pts))})"
                + (" — RANDOM WEIGHTS" if rnd else "")
            )
            self.sam_finished.emit()

        def failed(msg: str) -> None:
            self._running = False
            self.end_sam_session()
            self.panel.show_state(f"SAM failed: {msg}")
            self.sam_finished.emit()

        import_model_stack()  # on the GUI thread, before the worker uses the model stack
        self._running = True
        self.panel.show_state(f"SAM ({preset}) working on {_prompt_words(box, len(pts))}…")
        self.jobs.start(job, done, "SAM", failed, cancellable=False)


def _prompt_words(box: list[float] | None, clicks: int) -> str:
    """ "2 clicks", "the box", "the box + 1 click"."""
    words = f"{clicks} click{'s' if clicks != 1 else ''}"
    return words if box is None else "the box" + (f" + {words}" if clicks else "")
