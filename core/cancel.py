"""One cancellation type for the whole pipeline (stage 1, stage 2, the engines), so one ``except``
ends a run cleanly. Core functions take a ``should_cancel()`` callable and raise this."""

from __future__ import annotations


class Cancelled(RuntimeError):
    """The work was cancelled through ``should_cancel``."""
