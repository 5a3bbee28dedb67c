"""Small inline SVG plots for the HTML report (no plotting library, no external reference):
grouped bars with optional interval whiskers, and a line. Coordinates are SVG user units."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

PALETTE = ("#3c8cff", "#faaa28", "#9a9a9a", "#28c85a", "#c8503c", "#8c5ac8")


def nice_step(span: float, ticks: int = 5) -> tuple[float, int]:
    """A tick step of 1, 2, 2.5 or 5 × 10^k giving about ``ticks`` ticks over ``span``, and the
    decimals that print it exactly."""
    raw = max(span, 1e-12) / max(ticks - 1, 1)
    k = math.floor(math.log10(raw))
    m = next(m for m in (1, 2, 2.5, 5, 10) if m * 10.0**k >= raw * (1 - 1e-9))
    step = m * 10.0**k
    digits = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if m == 2.5 else 0)
    return step, digits


def _num(v: float) -> str:
    return f"{v:.1f}"


def bars(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], Sequence[Sequence[float] | None] | None]],
    *,
    title: str = "",
    y_min: float = 0.0,
    y_max: float = 1.0,
    width: int = 640,
    height: int = 260,
) -> str:
    """Grouped bars: ``series`` = [(name, values per group, intervals per group or None)];
    a value ``None`` draws nothing. ``y_min`` below 0 draws a zero line (differences)."""
    left, right, top, bottom = 44, 10, 28, 48
    pw, ph = width - left - right, height - top - bottom
    span = (y_max - y_min) or 1.0

    def y(v: float) -> float:
        return top + ph * (1.0 - (min(max(v, y_min), y_max) - y_min) / span)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>',
        f'<text x="{left}" y="16" font-size="12">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>',
    ]
    step, digits = nice_step(span)
    for v in np.arange(np.ceil(y_min / step) * step, y_max + step * 1e-6, step):
        out.append(
            f'<line x1="{left}" y1="{_num(y(v))}" x2="{left + pw}" y2="{_num(y(v))}" '
            f'stroke="#ddd"/><text x="{left - 4}" y="{_num(y(v) + 4)}" font-size="10" '
            f'text-anchor="end">{v + 0.0:.{digits}f}</text>'
        )
    if y_min < 0 < y_max:
        out.append(
            f'<line x1="{left}" y1="{_num(y(0))}" x2="{left + pw}" y2="{_num(y(0))}" stroke="#444"/>'
        )
    n_g, n_s = max(len(groups), 1), max(len(series), 1)
    gw = pw / n_g
    bw = gw * 0.8 / n_s
    for gi, g in enumerate(groups):
        gx = left + gi * gw
        out.append(
            f'<text x="{_num(gx + gw / 2)}" y="{top + ph + 14}" font-size="10" '
            f'text-anchor="middle">{escape(g)}</text>'
        )
        for si, (_name, vals, cis) in enumerate(series):
            v = vals[gi] if gi < len(vals) else None
            if v is None:
                continue
            x = gx + gw * 0.1 + si * bw
            y0, y1 = sorted((y(0.0 if y_min <= 0 else y_min), y(v)))
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y0)}" width="{_num(bw * 0.92)}" '
                f'height="{_num(max(y1 - y0, 0.5))}" fill="{PALETTE[si % len(PALETTE)]}"/>'
            )
            ci = cis[gi] if cis is not None and gi < len(cis) else None
            if ci is not None:
                cx = _num(x + bw * 0.46)
                out.append(
                    f'<line x1="{cx}" y1="{_num(y(ci[0]))}" x2="{cx}" y2="{_num(y(ci[1]))}" '
                    'stroke="#000"/>'
                )
    for si, (name, _v, _c) in enumerate(series):
        lx = left + si * 130
        out.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="10" '
            f'fill="{PALETTE[si % len(PALETTE)]}"/><text x="{lx + 14}" y="{height - 7}" '
            f'font-size="10">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def line(
    values: Sequence[float],
    *,
    title: str = "",
    x_label: str = "",
    width: int = 640,
    height: int = 220,
) -> str:
    """A line with points over x = 1..len(values), y in [0, 1]."""
    left, right, top, bottom = 44, 10, 28, 36
    pw, ph = width - left - right, height - top - bottom
    n = max(len(values), 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + pw * (i + 0.5) / n, top + ph * (1.0 - min(max(v, 0.0), 1.0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>',
        f'<text x="{left}" y="16" font-size="12">{escape(title)}</text>',
    ]
    for k in range(5):
        v = k / 4
        yy = top + ph * (1 - v)
        out.append(
            f'<line x1="{left}" y1="{_num(yy)}" x2="{left + pw}" y2="{_num(yy)}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{_num(yy + 4)}" font-size="10" text-anchor="end">{v:.2f}</text>'
        )
    pts = [xy(i, v) for i, v in enumerate(values)]
    if pts:
        out.append(
            '<polyline fill="none" stroke="#28c85a" stroke-width="2" points="'
            + " ".join(f"{_num(a)},{_num(b)}" for a, b in pts)
            + '"/>'
        )
    for i, (a, b) in enumerate(pts):
        out.append(
            f'<circle cx="{_num(a)}" cy="{_num(b)}" r="3" fill="#28c85a"/>'
            f'<text x="{_num(a)}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{i + 1}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" font-size="10" '
        f'text-anchor="middle">{escape(x_label)}</text></svg>'
    )
    return "".join(out)
