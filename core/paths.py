"""Per-user locations and the bundled resources, the one place they are decided (lowest layer:
imports nothing of core). Every path here has ``~`` expanded."""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path

RESOURCES_PACKAGE = "rea2seg_resources"
"""The importable name of the repository's ``resources/`` folder once installed (setup.py)."""


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


@functools.cache
def _resources_root() -> Path:
    # A source checkout (core/ beside pyproject.toml and resources/) reads its own folder, so a
    # checkout on PYTHONPATH never reads another checkout's files through an editable install.
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (
        checkout / "resources" / "__init__.py"
    ).is_file():
        return checkout / "resources"
    try:
        root = importlib.resources.files(RESOURCES_PACKAGE)
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"the bundled resources ({RESOURCES_PACKAGE}) are not installed; reinstall rea2seg-studio"
        ) from None
    if not isinstance(root, Path):  # e.g. a zip import: the readers need real files
        raise FileNotFoundError(f"{RESOURCES_PACKAGE} is not installed as plain files: {root}")
    return root


def resource_path(*parts: str) -> Path:
    """A bundled file or folder: ``resource_path("demo", "sgdr.json")``, ``resource_path("prompts")``.

    Installed, the files are the package ``rea2seg_resources`` (found with ``importlib.resources``);
    in a source checkout they are its top-level ``resources/`` folder. The path may not exist:
    callers check and name what is missing.
    """
    return _resources_root().joinpath(*parts)
