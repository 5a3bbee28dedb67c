"""``rea2seg report``: one self-contained HTML file of a run (and optionally its comparison with
another): the evaluation table with bootstrap intervals, failure classes, best origins,
stored-candidate ablations, the coverage curve, and thumbnails of the worst samples.

Self-contained: CSS inline in a ``<style>`` element, plots as inline SVG
(:mod:`core.analytics.svg`), thumbnails as ``data:image/png;base64`` URIs; no script, link,
font or image is fetched from anywhere, so the file can be mailed or attached as it is. Every
text taken from the store (questions, run names) is HTML-escaped. The store is only read.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

from core.analytics import failures, svg
from core.analytics.bootstrap import excludes_zero
from core.analytics.records import METHODS, SampleRecord, answer_mask
from core.analytics.runs import analyse_run, compare_records, run_records
from core.evaluator.evaluate import LABELS

WORST = 8
"""Worst samples shown as thumbnails (lowest top-1 IoU; not from the paper)."""
THUMB_PX = 200

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td.l,th.l{text-align:left}.warn{background:#fff3cd;border:1px solid #e0c060;padding:8px}
.ci{color:#666;font-size:11px}.sig{font-weight:bold}
.thumbs{display:flex;flex-wrap:wrap;gap:12px}.thumb{width:210px;font-size:12px}
.thumb img{width:200px;border:1px solid #999;image-rendering:pixelated}
.note{color:#555;font-size:12px}
"""


def _v(v: float | None, d: int = 3) -> str:
    return "—" if v is None else f"{v:.{d}f}"


def _ci(ci: Sequence[float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    f = "+" if signed else ""
    return f'<span class="ci">[{ci[0]:{f}.3f}, {ci[1]:{f}.3f}]</span>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    h = "".join(
        f'<th class="{"l" if i < left else ""}">{escape(x)}</th>' for i, x in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def _eval_section(res: dict[str, Any], ev: dict[str, Any]) -> str:
    iv = res["intervals"]
    cats = [*sorted({c for m in METHODS for c in iv[m]["per_category"]}), "overall"]
    head = ["category", "n"] + [f"{LABELS[m]} {k}" for m in METHODS for k in ("gIoU", "cIoU")]
    rows = []
    for c in cats:
        cells = [escape(c)]
        first = iv[METHODS[0]]["overall" if c == "overall" else "per_category"]
        one = first if c == "overall" else first.get(c, {})
        cells.append(str(one.get("n", 0)))
        for m in METHODS:
            d = iv[m]["overall"] if c == "overall" else iv[m]["per_category"].get(c, {})
            for k in ("giou", "ciou"):
                cells.append(f"{_v(d.get(k))}<br>{_ci(d.get(k + '_ci'))}")
        rows.append(cells)
    corr = ev.get("correlation", {})
    bs = res["bootstrap"]
    return (
        "<h2>Evaluation</h2>"
        + _table(head, rows)
        + f'<p class="note">95% percentile bootstrap intervals over samples ({bs["n_boot"]} '
        f"resamples, seed {bs['seed']}). Evaluator score vs true IoU: Pearson "
        f"{_v(corr.get('pearson'))}, Spearman {_v(corr.get('spearman'))}, MAE {_v(corr.get('mae'))} "
        f"over {corr.get('n', 0)} scored candidates; {ev.get('fell_back', 0)} of {ev.get('n', 0)} "
        "samples fell back to the initial mask M.</p>"
    )


def _plots(res: dict[str, Any]) -> str:
    iv = res["intervals"]
    cats = [*sorted(iv["top1"]["per_category"]), "overall"]

    def pick(m: str, key: str) -> list:
        return [
            (iv[m]["overall"] if c == "overall" else iv[m]["per_category"][c]).get(key)
            for c in cats
        ]

    bars = svg.bars(
        cats,
        [(LABELS[m], pick(m, "giou"), pick(m, "giou_ci")) for m in METHODS],
        title="gIoU per category (whiskers: 95% bootstrap interval)",
    )
    cov = svg.line(
        res["coverage"],
        title="Coverage: mean best true IoU within the first n ranked candidates",
        x_label="number of candidates n",
    )
    return f"<h2>Plots</h2>{bars}<br>{cov}"


def _failure_section(res: dict[str, Any]) -> str:
    cl, org = res["classification"], res["origins"]
    cats = [*sorted(cl["per_category"]), "overall"]

    def row(d: dict[str, dict[str, int]], c: str, keys: Sequence[str]) -> list[str]:
        x = d["overall"] if c == "overall" else d["per_category"][c]
        return [escape(c)] + [str(x[k]) for k in keys]

    t1 = _table(
        ["category", *(failures.CLASS_LABELS[k] for k in failures.CLASSES)],
        [row(cl, c, failures.CLASSES) for c in cats],
    )
    names = list(org["overall"])
    t2 = _table(["category", *names], [row(org, c, names) for c in cats])
    abl = res["ablations"]
    t3 = _table(
        ["without", "candidates removed", "top-1 gIoU", "top-1 cIoU", "oracle gIoU", "oracle cIoU"],
        [
            [
                escape(o),
                str(d["removed"]),
                f"{_v(d['top1']['overall']['giou'])} {_ci(d['intervals']['top1']['giou_ci'])}",
                f"{_v(d['top1']['overall']['ciou'])} {_ci(d['intervals']['top1']['ciou_ci'])}",
                f"{_v(d['oracle']['overall']['giou'])} {_ci(d['intervals']['oracle']['giou_ci'])}",
                f"{_v(d['oracle']['overall']['ciou'])} {_ci(d['intervals']['oracle']['ciou_ci'])}",
            ]
            for o, d in abl.items()
        ],
    )
    return (
        f'<h2>Where failures come from</h2><p class="note">generator missed: oracle IoU &lt; '
        f"{cl['threshold']:g}; evaluator mis-ranked: oracle ≥ {cl['threshold']:g} and top-1 below; "
        f"fine: top-1 ≥ {cl['threshold']:g}.</p>{t1}"
        f"<h2>Which origin found the best candidate</h2>{t2}"
        f"<h2>Ablations from the stored candidates</h2>{t3}"
        '<p class="note">Nothing re-run: each origin\'s candidates are removed from the stored '
        "set; top-1 is the best-scored remaining candidate (a real re-run would regroup and "
        "rescore the rest); the oracle equals a re-run's.</p>"
    )


def _compare_section(cmp: dict[str, Any]) -> str:
    rows = []
    for c, d in [*cmp["per_category"].items(), ("overall", cmp["overall"])]:
        g = "sig" if excludes_zero(d["giou_ci"]) else ""
        k = "sig" if excludes_zero(d["ciou_ci"]) else ""
        gd = "—" if d["giou_diff"] is None else f"{d['giou_diff']:+.3f}"
        cd = "—" if d["ciou_diff"] is None else f"{d['ciou_diff']:+.3f}"
        rows.append(
            [
                escape(c),
                str(d["n"]),
                _v(d["a"]["giou"]),
                _v(d["b"]["giou"]),
                f'<span class="{g}">{gd}</span> {_ci(d["giou_ci"], True)}',
                _v(d["a"]["ciou"]),
                _v(d["b"]["ciou"]),
                f'<span class="{k}">{cd}</span> {_ci(d["ciou_ci"], True)}',
            ]
        )
    a, b = cmp["run_a"], cmp["run_b"]
    table = _table(
        ["category", "n", f"gIoU {a}", f"gIoU {b}", "Δ gIoU", f"cIoU {a}", f"cIoU {b}", "Δ cIoU"],
        rows,
    )
    cats = [*cmp["per_category"], "overall"]
    ds = [
        cmp["per_category"].get(c, cmp["overall"]) if c != "overall" else cmp["overall"]
        for c in cats
    ]
    lo = min([0.0] + [d["giou_ci"][0] for d in ds if d["giou_ci"]]) - 0.02
    hi = max([0.0] + [d["giou_ci"][1] for d in ds if d["giou_ci"]]) + 0.02
    plot = svg.bars(
        cats,
        [("Δ gIoU (A − B)", [d["giou_diff"] for d in ds], [d["giou_ci"] for d in ds])],
        title=f"run {a} − run {b}: gIoU difference with paired 95% interval",
        y_min=lo,
        y_max=hi,
    )
    changed = _table(
        ["sample", "category", f"IoU {a}", f"IoU {b}", "Δ"],
        [
            [
                str(c["sample_id"]),
                escape(c["category"]),
                _v(c["a"]),
                _v(c["b"]),
                f"{c['diff']:+.3f}",
            ]
            for c in cmp["changed"]
        ],
    )
    return (
        f"<h2>Run {a} vs run {b} ({escape(LABELS[cmp['method']])})</h2>"
        f'<p class="note">Over the {cmp["shared"]} samples both runs have ({cmp["only_a"]} only in '
        f"{a}, {cmp['only_b']} only in {b}); paired bootstrap; bold: the interval excludes 0.</p>"
        f"{table}{plot}<h3>Samples that changed most</h3>{changed}"
    )


def thumbnail_png(
    image_rgb: np.ndarray, answer: np.ndarray | None, gt: np.ndarray, px: int = THUMB_PX
) -> bytes:
    """A PNG of the image in dimmed grey with the reference only in green, the answer only in
    magenta and their overlap in yellow (colours that stay readable whatever the scene's own
    colours), at most ``px`` pixels on its long side."""
    from PIL import Image

    grey = image_rgb.astype(np.float32).mean(axis=2, keepdims=True) * 0.55
    img = np.repeat(grey, 3, axis=2)
    g = gt.astype(bool)
    a = np.zeros_like(g) if answer is None else answer.astype(bool)
    for region, colour in (
        (g & ~a, (40, 220, 60)),
        (a & ~g, (235, 40, 220)),
        (g & a, (250, 220, 30)),
    ):
        img[region] = img[region] * 0.3 + np.array(colour, dtype=np.float32) * 0.7
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    pil.thumbnail((px, px))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _worst_section(
    store, run_id: int, records: Sequence[SampleRecord], against: str, n: int
) -> str:
    from core.images import load_image_rgb
    from core.store import repo

    worst = sorted(records, key=lambda r: (r.iou("top1"), r.sample_id))[:n]
    cells = []
    for r in worst:
        with store.session(write=False) as s:
            sample = repo.get_sample(s, r.sample_id)
            question = sample.question
            path = repo.image_path(sample)
            trace = repo.load_trace(s, run_id, r.sample_id)
            ref = repo.reference_mask(s, r.sample_id, against).mask
        cls = failures.CLASS_LABELS[failures.classify(r)]
        try:
            png = thumbnail_png(load_image_rgb(path), answer_mask(trace), ref)
            img = f'<img alt="sample {r.sample_id}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        except (OSError, ValueError) as exc:  # a missing image file: say so, keep the rest
            img = f'<div class="warn">no image: {escape(str(exc))}</div>'
        cells.append(
            f'<div class="thumb">{img}<br><b>sample {r.sample_id}</b> ({escape(r.category)}) — '
            f"{escape(cls)}<br>top-1 IoU {_v(r.iou('top1'))}, oracle {_v(r.iou('oracle'))}, "
            f"best origin {escape(failures.best_origin(r))}<br>{escape(question)}</div>"
        )
    return (
        f"<h2>The {len(worst)} worst samples (lowest top-1 IoU)</h2>"
        '<p class="note">on the dimmed image: green = reference only, magenta = the run\'s '
        "answer only, yellow = both.</p>"
        f'<div class="thumbs">{"".join(cells)}</div>'
    )


def build_report(
    store,
    run_id: int,
    *,
    compare_with: int | None = None,
    against: str = "gt",
    threshold: float = failures.FAILURE_IOU,
    n_boot: int = 1000,
    seed: int = 0,
    worst: int = WORST,
) -> str:
    """The report's HTML text (module docstring). Reads the store only."""
    from core.evaluator.evaluate import evaluate_run
    from core.store import repo

    with store.session(write=False) as s:
        run = repo.get_run(s, run_id)
        title, preset, is_random = run.name, run.preset, bool(run.is_random)
    ev = evaluate_run(store, run_id, against=against)
    res, records = analyse_run(
        store, run_id, against=against, threshold=threshold, n_boot=n_boot, seed=seed
    )
    parts = [
        f"<h1>Run {run_id}: {escape(title)}</h1>",
        f'<p class="note">preset {escape(preset)}; {len(records)} samples with a reference '
        f"({escape(against)}); made by rea2seg report.</p>",
    ]
    if is_random:
        parts.append(
            '<p class="warn">RANDOM WEIGHTS: this run used random-init models; these numbers '
            "are noise, not a result.</p>"
        )
    parts += [_eval_section(res, ev), _plots(res), _failure_section(res)]
    if compare_with is not None:
        other = run_records(store, compare_with, against=against)  # type: ignore[arg-type]
        cmp = compare_records(records, other, n_boot=n_boot, seed=seed)
        cmp.update(run_a=int(run_id), run_b=int(compare_with))
        parts.append(_compare_section(cmp))
    if worst > 0 and records:
        parts.append(_worst_section(store, run_id, records, against, worst))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>rea2seg report: run {run_id}</title><style>{CSS}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )
