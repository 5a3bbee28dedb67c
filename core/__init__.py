"""Rea2Seg Studio headless core: store, pipeline, evaluator, metrics. Never imports Qt."""

from __future__ import annotations

__version__ = "0.1.0"
