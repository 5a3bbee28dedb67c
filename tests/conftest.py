from __future__ import annotations

import os

# Every test runs headless and with its own per-user folder.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
