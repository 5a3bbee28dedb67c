"""The annotation store (SQLAlchemy 2; SQLite by default, any SQLAlchemy URL for a team).

``open_store(path_or_url)`` → :class:`Store`; :mod:`core.store.repo` for data access inside a
session, :mod:`core.store.review` for user actions (one transaction each).
"""

from __future__ import annotations

from core.store.db import (
    Store,
    StoreCorruptError,
    StoreError,
    StoreFull,
    StoreGone,
    StoreMissing,
    StoreUnusable,
    move_aside,
    open_store,
    schema_version,
    store_url,
)

__all__ = [
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreFull",
    "StoreGone",
    "StoreMissing",
    "StoreUnusable",
    "move_aside",
    "open_store",
    "schema_version",
    "store_url",
]
