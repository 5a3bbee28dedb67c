"""Import the model stack on the GUI thread before any worker touches it.

torch, transformers and what they import lazily (sympy, mpmath, regex, …) were first imported
inside a worker thread while the GUI thread ran Qt's event loop; a garbage collection on the GUI
thread during that import could abort the process ("pure virtual method called", then a
corrupted heap). Importing them here, once, on the GUI thread, before the first model job
starts, removes that window: a worker then only uses modules that are fully initialised.
"""

from __future__ import annotations

import importlib
import threading

MODULES = (
    "torch",
    "sympy",
    "mpmath",
    "transformers",
    "segment_anything",
    "sam2",
    "torch.utils._sympy.functions",
    "core.models.sam_backend",
    "core.models.tiny_sam",
    "core.models.tiny_mllm",
    "core.models.lisa",
    "core.models.lens",
    "core.evaluator.presets",
    "core.pipeline.engine",
    "core.pipeline.plan",
)
_done = False


def import_model_stack() -> None:
    """Import :data:`MODULES` (those installed) once; call it on the GUI thread only."""
    global _done
    if _done:
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("import_model_stack() must run on the GUI (main) thread")
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional backend (e.g. sam2) that is not installed
            pass
    _done = True
