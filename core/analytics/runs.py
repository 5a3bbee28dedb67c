"""Analyses of stored runs: everything ``rea2seg eval --json`` carries beyond the table, and the
comparison of two existing runs (``rea2seg compare``). Both only read the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.analytics import bootstrap, failures
from core.analytics.records import METHODS, SampleRecord, run_records
from core.evaluator.evaluate import LABELS


def intervals(
    records: Sequence[SampleRecord],
    methods: Sequence[str] = METHODS,
    *,
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
) -> dict[str, dict[str, Any]]:
    """``{method: {"overall": interval, "per_category": {cat: interval}}}`` with
    :func:`core.analytics.bootstrap.interval` of each method's per-sample counts."""
    cats = sorted({r.category for r in records})
    out: dict[str, dict[str, Any]] = {}
    for m in methods:

        def one(rs: Sequence[SampleRecord], m: str = m) -> dict[str, Any]:
            return bootstrap.interval(
                [r.counts[m] for r in rs], n_boot=n_boot, seed=seed, giou_average=giou_average
            )

        out[m] = {
            "overall": one(records),
            "per_category": {c: one([r for r in records if r.category == c]) for c in cats},
        }
    return out


def ablation_intervals(
    records: Sequence[SampleRecord],
    *,
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
) -> dict[str, dict[str, Any]]:
    """``{origin: {"top1": interval, "oracle": interval}}`` (overall) of the stored-candidate
    ablations (:func:`core.analytics.failures.without_origin`)."""
    out: dict[str, dict[str, Any]] = {}
    for origin in failures.origin_names(records):
        rows = [failures.without_origin(r, origin) for r in records]
        out[origin] = {
            m: bootstrap.interval(
                [x[m] for x in rows], n_boot=n_boot, seed=seed, giou_average=giou_average
            )
            for m in ("top1", "oracle")
        }
    return out


def analyse_records(
    records: Sequence[SampleRecord],
    *,
    threshold: float = failures.FAILURE_IOU,
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
    max_n: int = 15,
) -> dict[str, Any]:
    """``classification``, ``origins``, ``ablations`` (with an ``intervals`` entry per origin),
    ``coverage`` and ``intervals`` of ``records`` (one run)."""
    abl = failures.ablations(records, giou_average)
    for origin, ci in ablation_intervals(
        records, n_boot=n_boot, seed=seed, giou_average=giou_average
    ).items():
        abl[origin]["intervals"] = ci
    return {
        "classification": failures.classification(records, threshold),
        "origins": failures.origins(records),
        "ablations": abl,
        "ablation_top1_rule": "best-scored remaining candidate (no re-run)",
        "coverage": failures.coverage(records, max_n),
        "intervals": intervals(records, n_boot=n_boot, seed=seed, giou_average=giou_average),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": bootstrap.LEVEL},
    }


def analyse_run(
    store,
    run_id: int,
    *,
    against: str = "gt",
    ignore_mode: str = "exclude",
    threshold: float = failures.FAILURE_IOU,
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
) -> tuple[dict[str, Any], list[SampleRecord]]:
    """:func:`analyse_records` of run ``run_id`` in ``store`` and the records it used."""
    records = run_records(store, run_id, against=against, ignore_mode=ignore_mode)  # type: ignore[arg-type]
    res = analyse_records(
        records, threshold=threshold, n_boot=n_boot, seed=seed, giou_average=giou_average
    )
    return res, records


def compare_records(
    a: Sequence[SampleRecord],
    b: Sequence[SampleRecord],
    *,
    method: str = "top1",
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
    most_changed: int = 10,
) -> dict[str, Any]:
    """Run A − run B of ``method`` over the samples both have: ``overall`` and ``per_category``
    (:func:`core.analytics.bootstrap.paired_difference`), ``changed`` (the ``most_changed``
    samples whose per-sample IoU changed most: ``{sample_id, category, a, b, diff}``),
    ``shared``, ``only_a``, ``only_b`` (sample counts)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {list(METHODS)}")
    by_b = {r.sample_id: r for r in b}
    pairs = [(r, by_b[r.sample_id]) for r in a if r.sample_id in by_b]
    cats = sorted({ra.category for ra, _ in pairs})

    def diff(ps: Sequence[tuple[SampleRecord, SampleRecord]]) -> dict[str, Any]:
        return bootstrap.paired_difference(
            [x.counts[method] for x, _ in ps],
            [y.counts[method] for _, y in ps],
            n_boot=n_boot,
            seed=seed,
            giou_average=giou_average,
        )

    changed = sorted(
        (
            {
                "sample_id": ra.sample_id,
                "category": ra.category,
                "a": ra.iou(method),
                "b": rb.iou(method),
                "diff": ra.iou(method) - rb.iou(method),
            }
            for ra, rb in pairs
        ),
        key=lambda d: (-abs(d["diff"]), d["sample_id"]),
    )
    ids_a = {r.sample_id for r in a}
    return {
        "method": method,
        "overall": diff(pairs),
        "per_category": {c: diff([p for p in pairs if p[0].category == c]) for c in cats},
        "changed": changed[:most_changed],
        "shared": len(pairs),
        "only_a": len(ids_a - set(by_b)),
        "only_b": len(set(by_b) - ids_a),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": bootstrap.LEVEL},
    }


def compare_runs(
    store,
    run_a: int,
    run_b: int,
    *,
    method: str = "top1",
    against: str = "gt",
    ignore_mode: str = "exclude",
    n_boot: int = bootstrap.N_BOOT,
    seed: int = bootstrap.BOOT_SEED,
    giou_average: str = "mean",
    most_changed: int = 10,
) -> dict[str, Any]:
    """:func:`compare_records` of two stored runs (reads only), plus ``run_a`` / ``run_b``."""
    ra = run_records(store, run_a, against=against, ignore_mode=ignore_mode)  # type: ignore[arg-type]
    rb = run_records(store, run_b, against=against, ignore_mode=ignore_mode)  # type: ignore[arg-type]
    out = compare_records(
        ra,
        rb,
        method=method,
        n_boot=n_boot,
        seed=seed,
        giou_average=giou_average,
        most_changed=most_changed,
    )
    out.update(run_a=int(run_a), run_b=int(run_b), against=against)
    return out


def _ci(ci: Sequence[float] | None, digits: int = 3, signed: bool = True) -> str:
    if ci is None:
        return "—"
    f = "+" if signed else ""
    return f"[{ci[0]:{f}.{digits}f}, {ci[1]:{f}.{digits}f}]"


def _v(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def format_compare(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`compare_runs`' result."""
    a, b = res.get("run_a", "A"), res.get("run_b", "B")
    lines = [
        f"run {a} − run {b}, {res['method']}, over {res['shared']} shared samples "
        f"({res['only_a']} only in run {a}, {res['only_b']} only in run {b}); "
        f"paired bootstrap 95% intervals ({res['bootstrap']['n_boot']} resamples, seed {res['bootstrap']['seed']})",
        f"{'category':<16}{'n':>5}{'gIoU A':>9}{'gIoU B':>9}{'Δ gIoU':>9}{'95% CI':>20}"
        f"{'cIoU A':>9}{'cIoU B':>9}{'Δ cIoU':>9}{'95% CI':>20}",
    ]
    rows = [*res["per_category"].items(), ("overall", res["overall"])]
    for cat, d in rows:
        mark_g = " *" if bootstrap.excludes_zero(d["giou_ci"]) else "  "
        mark_c = " *" if bootstrap.excludes_zero(d["ciou_ci"]) else "  "
        gd = "—" if d["giou_diff"] is None else f"{d['giou_diff']:+.4f}"
        cd = "—" if d["ciou_diff"] is None else f"{d['ciou_diff']:+.4f}"
        lines.append(
            f"{cat:<16}{d['n']:>5}{_v(d['a']['giou']):>9}{_v(d['b']['giou']):>9}{gd:>9}"
            f"{_ci(d['giou_ci']):>18}{mark_g}{_v(d['a']['ciou']):>9}{_v(d['b']['ciou']):>9}"
            f"{cd:>9}{_ci(d['ciou_ci']):>18}{mark_c}"
        )
    lines.append("* the interval excludes 0")
    if res["changed"]:
        lines.append("samples that changed most (per-sample IoU, A − B):")
        for c in res["changed"]:
            lines.append(
                f"  sample {c['sample_id']:>6}  {c['category']:<14} {c['a']:.3f} → "
                f"{c['b']:.3f}  ({c['diff']:+.3f})"
            )
    return "\n".join(lines)


def format_analytics(res: dict[str, Any]) -> str:
    """Plain-text lines for :func:`analyse_records`' result (appended to ``rea2seg eval``'s table)."""
    cl = res["classification"]
    lines = [
        f"failures (IoU threshold {cl['threshold']:g}): "
        + ", ".join(f"{failures.CLASS_LABELS[k]} {cl['overall'][k]}" for k in failures.CLASSES),
        "best candidate found by: "
        + ", ".join(f"{k} {v}" for k, v in res["origins"]["overall"].items()),
    ]
    for origin, d in res["ablations"].items():
        ci = d.get("intervals", {})
        lines.append(
            f"without {origin} ({d['removed']} candidates): top-1 gIoU "
            f"{_v(d['top1']['overall']['giou'])} {_ci(ci.get('top1', {}).get('giou_ci'), signed=False)}, "
            f"oracle gIoU {_v(d['oracle']['overall']['giou'])} "
            f"{_ci(ci.get('oracle', {}).get('giou_ci'), signed=False)}"
        )
    lines.append(
        "  (top-1 without an origin: the best-scored remaining candidate, from the stored "
        "candidates; nothing re-run)"
    )
    iv = res["intervals"]
    lines.append(
        "95% bootstrap intervals, overall: "
        + "; ".join(
            f"{LABELS.get(m, m)} gIoU {_ci(iv[m]['overall']['giou_ci'], signed=False)} "
            f"cIoU {_ci(iv[m]['overall']['ciou_ci'], signed=False)}"
            for m in iv
        )
    )
    cov = res["coverage"]
    if cov:
        lines.append("coverage (best IoU in the first n): " + " ".join(f"{v:.3f}" for v in cov))
    return "\n".join(lines)
