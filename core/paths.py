"""Per-user folders (lowest layer: imports nothing of core)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Per-user data folder (``$REA2SEG_HOME`` or ``$XDG_DATA_HOME/rea2seg``, ``~`` expanded)."""
    env = os.environ.get("REA2SEG_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "rea2seg"
