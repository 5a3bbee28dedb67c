"""The bundled demo project: ``resources/demo/sgdr.json`` imported into a per-user store."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_SGDR = RESOURCES / "demo" / "sgdr.json"


def data_dir() -> Path:
    """Per-user data folder (``$REA2SEG_HOME`` or ``$XDG_DATA_HOME/rea2seg``)."""
    env = os.environ.get("REA2SEG_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rea2seg"


def ensure_demo_store(path: str | Path | None = None) -> Path:
    """Create (or top up) the demo store from the bundled SGDR file; returns its path.

    Idempotent: samples already present are left as they are, so reviews made in the demo
    store survive re-opening it.
    """
    from core.importers.sgdr import import_sgdr
    from core.store import open_store

    if not DEMO_SGDR.is_file():
        raise FileNotFoundError(f"{DEMO_SGDR}: the bundled demo project is missing")
    target = Path(path) if path else data_dir() / "demo.sqlite"
    target.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(target)
    try:
        import_sgdr(store, DEMO_SGDR, dataset="demo")
    finally:
        store.close()
    return target
