"""Rea2Seg Studio desktop app (PySide6 + pyqtgraph) over the headless core."""
