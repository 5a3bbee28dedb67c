"""The app's own preferences (QSettings), one table: names, defaults and the Settings dialog's labels.

Model paths live in the config file (:mod:`rea2seg_gui.models`); these are how the window
behaves. Not from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore


@dataclass(frozen=True)
class Preference:
    name: str  # the QSettings key
    default: bool | int
    label: str
    maximum: int = 0  # for integers


ASK_REJECT_REASON = Preference(
    "review/ask_reject_reason", True, "Ask for a reason when rejecting (R) with an empty Note field"
)
REFRESH_INTERVAL_S = Preference(
    "review/refresh_interval_s",
    30,
    "Re-read the store every n seconds (0 = only on F5 and when the window is activated)",
    maximum=3600,
)
KEY_BURST_MS = Preference(
    "review/key_burst_ms",
    250,
    "Ignore A / R / F / N / P within n ms of another typed letter (typed text never decides a "
    "sample; 0 = off)",
    maximum=2000,
)
PREFERENCES = (ASK_REJECT_REASON, REFRESH_INTERVAL_S, KEY_BURST_MS)


def read(settings: QtCore.QSettings, pref: Preference) -> bool | int:
    """The stored value, or the default when unset or unreadable."""
    raw = settings.value(pref.name, pref.default)
    if isinstance(pref.default, bool):
        return (
            raw if isinstance(raw, bool) else str(raw).strip().lower() in ("true", "1", "yes", "on")
        )
    try:
        return max(0, min(int(raw), pref.maximum or int(raw)))
    except (TypeError, ValueError):
        return pref.default
