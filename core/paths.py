"""Per-user locations, the one place they are decided (lowest layer: imports nothing of core).
Every path here has ``~`` expanded."""

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


def tiny_models_dir() -> Path:
    """Where the ``tiny-random`` presets build their random-init models (``data_dir()/tiny-random``)."""
    return data_dir() / "tiny-random"


def config_path() -> Path:
    """The model config file: ``$REA2SEG_CONFIG`` or ``~/.config/rea2seg/config.toml``."""
    env = os.environ.get("REA2SEG_CONFIG")
    return Path(env).expanduser() if env else Path.home() / ".config" / "rea2seg" / "config.toml"
