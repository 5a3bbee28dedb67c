"""File-dialog filters shared by the File menu's actions and the export dialog (a low layer both
import, so neither imports the other for them)."""

from __future__ import annotations

STORE_FILTER = "Stores (*.sqlite *.db);;All files (*)"
SGDR_FILTER = "SGDR JSON (*.json);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
