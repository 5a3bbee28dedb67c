"""The bundled demo project: ``resources/demo/sgdr.json`` imported into a per-user store, and the
``mini-geometric`` run over it that ``rea2seg-gui --demo`` opens on (:func:`demo_run_request`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.paths import data_dir, resource_path

if TYPE_CHECKING:
    from core.pipeline.plan import RunRequest
    from core.store import Store

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


# -- the demo run ---------------------------------------------------------------------------

DEMO_RUN_NAME = "mini-geometric demo"
"""The run ``rea2seg-gui --demo`` opens on: ``mini-geometric`` stage 1 and its evaluator."""
DEMO_PRESET = "mini-geometric"


def demo_run_request(limit: int | None = None) -> RunRequest:
    """The demo run: the ``mini-geometric`` segmenter and evaluator over every demo sample. The
    evaluator was trained without chain of thought (its declaration), so it runs without;
    ``resume`` finishes an interrupted demo run instead of starting another."""
    from core.pipeline.plan import RunRequest
    from core.pipeline.settings import Stage2Settings

    return RunRequest(
        DEMO_PRESET,
        stage2=Stage2Settings(DEMO_PRESET, cot=False),
        resume=True,
        limit=limit,
        name=DEMO_RUN_NAME,
    )


def finished_demo_run(store: Store) -> int | None:
    """The newest run named :data:`DEMO_RUN_NAME` that holds a trace of every sample of
    ``store``, or ``None`` (none yet, or one that was interrupted)."""
    from core.store import repo

    def find(s) -> int | None:
        n = repo.count_samples(s)
        for run in reversed(repo.list_runs(s)):
            if run.name == DEMO_RUN_NAME and len(repo.finished_sample_ids(s, run.id)) >= n:
                return int(run.id)
        return None

    return store.run(find, write=False)
