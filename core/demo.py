"""The bundled demo project: ``resources/demo/sgdr.json`` imported into a per-user store."""

from __future__ import annotations

from pathlib import Path

from core.paths import data_dir, resource_path

DEMO_SGDR = resource_path("demo", "sgdr.json")


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
