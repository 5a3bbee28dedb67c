"""Text from a model (or any other outside source) made safe to store and to show.

A model's reply may hold anything JSON can carry: NUL, lone UTF-16 surrogates (which no UTF-8
encoder accepts), terminal escape sequences, bidi overrides that reorder what a reviewer reads,
non-finite numbers and structures nested thousands deep. :func:`storable_text` and
:func:`json_safe` make such values fit every store backend (SQLite and PostgreSQL reject some
of them); :func:`terminal_text` makes them harmless on a terminal.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

MAX_JSON_DEPTH = 32
"""Deepest nesting of a model's parsed answer kept in the store; deeper parts are replaced by a
marker string (setting ``MAX_JSON_DEPTH``; the answers of App. C are flat). Not from the paper."""

_SURROGATE_OR_NUL = re.compile("[\x00\ud800-\udfff]")
# C0/C1 controls, DEL, formatting (bidi overrides and isolates, zero-width), line/paragraph
# separators, lone surrogates and private use: nothing a reviewer should see raw
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (every backend stores it)."""
    return _SURROGATE_OR_NUL.sub("\ufffd", str(text))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: Any, limit: int | None = None) -> str:
    """``text`` as one line that cannot steer a terminal: control characters (escape sequences
    start with one), bidi and other formatting characters, separators and lone surrogates are
    written as ``\\xNN`` / ``\\uNNNN``; cut to ``limit`` characters with ``…`` when given."""
    s = "".join(
        _escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in str(text)
    )
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def json_safe(value: Any, depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` (parsed JSON) as strict JSON every backend stores: strings through
    :func:`storable_text`, non-finite floats as their name (``"nan"``, ``"inf"``), parts nested
    deeper than ``depth`` replaced by a marker string. Iterative: no recursion limit to hit."""
    marker = f"(nested deeper than {depth} levels: not kept)"

    def leaf(v: Any) -> Any:
        if isinstance(v, str):
            return storable_text(v)
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if v is None or isinstance(v, bool | int | float):
            return v
        return storable_text(repr(v))

    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]  # (value, parent, key, level)
    while stack:
        v, parent, key, level = stack.pop()
        if isinstance(v, dict | list | tuple):
            if level >= depth:
                parent[key] = marker
                continue
            if isinstance(v, dict):
                out: Any = {}
                for k, item in v.items():
                    kk = storable_text(k) if isinstance(k, str) else storable_text(repr(k))
                    out[kk] = None
                    stack.append((item, out, kk, level + 1))
            else:
                out = [None] * len(v)
                stack.extend((item, out, i, level + 1) for i, item in enumerate(v))
            parent[key] = out
        else:
            parent[key] = leaf(v)
    return root[0]
