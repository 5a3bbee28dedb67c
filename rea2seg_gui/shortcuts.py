"""The keyboard shortcuts, one table: the window binds them, the cheat sheet shows them and
``scripts/gen_docs.py`` writes them into ``docs/reference/shortcuts.md``."""

from __future__ import annotations

SHORTCUTS = (
    ("A", "Accept (verified) and go to the next sample (refused when the image cannot be read)"),
    (
        "R",
        "Reject and go to the next sample (a reason is asked for when the Note field is empty; a setting)",
    ),
    ("F", "Flag with a note (asked for when the Note field is empty) and go to the next sample"),
    (
        "Note field: Enter / Esc",
        "Accept with the typed note / leave the field (letters type there, they are not shortcuts)",
    ),
    ("N / Down", "Next sample"),
    ("P / Up", "Previous sample"),
    (
        "Shift+N",
        "Next pending sample in the list (wraps around; the filters decide what the list holds)",
    ),
    (
        "Typed letters",
        "A / R / F / N / P that come within a short interval of another letter are ignored, and "
        "a decision followed at once by more letters is undone: typed text never decides a "
        "sample (a setting)",
    ),
    (
        "Ctrl+Z / Ctrl+Shift+Z",
        "Undo / redo the last change made here (status, question, mask), returning to its sample",
    ),
    ("F5", "Re-read the store (also when the window is activated, and on a timer: a setting)"),
    ("I, 1 … 9, 0", "Toggle a layer: image, ground truth, ignore, attention, … (Layers tab)"),
    ("D", "Toggle the GT vs edited difference view (added / removed pixels)"),
    ("O / G", "Outlines only (mask layers as contours) / the legend on the canvas"),
    ("Candidates list: ↑ ↓ ← →", "Previous / next candidate, shown on the canvas"),
    (
        "Ctrl+Shift+O / Ctrl+Shift+V",
        "Ask: open an image / paste one from the clipboard (or drop a file on the window); "
        "type a question in the Ask bar, Enter asks",
    ),
    ("Ctrl+0", "Fit the image to the view (wheel zooms, drag pans)"),
    (
        "B / E / L / S / X / Esc",
        "Tool: brush / eraser / polygon / SAM clicks / SAM box / pan (Esc also clears the SAM clicks and box)",
    ),
    (
        "SAM box: drag",
        "A rectangle: SAM segments what it holds, with the clicks made so far (a new drag replaces the box)",
    ),
    ("[ / ]", "Brush smaller / larger"),
    (
        "Polygon: click · Enter or double-click",
        "Add a vertex · fill the polygon (Shift+Enter erases it)",
    ),
    (
        "SAM or SAM box: left / right click",
        "Positive / negative point, sent to SAM with the box when there is one",
    ),
    ("Backspace", "Polygon: remove the last vertex · SAM: undo the last click, then the box"),
    ("M", "SAM: re-prompt with the chosen mask prompt alone (no clicks)"),
    ("F1 or ?", "This cheat sheet"),
)
