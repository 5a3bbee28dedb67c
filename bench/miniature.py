"""The paper's claims in miniature (Tables 2–3): the shipped ``mini-geometric`` models on held-out
geometric samples, with bootstrap 95% intervals.

Data: ``--n`` questions (default 200) of the geometric split generated with an **evaluation**
seed (``--seed``, default 2026, in :data:`core.training.splits.EVALUATION_SEEDS`, so no scene
was seen in training) at 256 × 192, the miniature's training size, imported into a store of
its own under ``--work`` (a temporary folder by default).

Runs, as ``rea2seg run --preset mini-geometric --evaluator mini-geometric --no-cot`` does (the
evaluator scores without chain of thought, as it was trained):

- the full method: initial mask M, stage-2 top-1, best of top-3, oracle;
- three real ablations, each a new run with one origin left out of the candidate set through the
  stage-1 setting ``disabled_origins`` (stage 2 re-run on what is left): without AMG masks,
  without semantic masks, without multimask outputs — top-1 and oracle;
- beside them, the same ablations recomputed from the full run's stored candidates
  (:mod:`core.analytics.failures`; top-1 = best-scored remaining candidate), which should agree on
  the oracle.

Every figure is gIoU / cIoU (LISA's, :mod:`core.metrics`) with a percentile bootstrap 95%
interval over samples (:mod:`core.analytics.bootstrap`). It runs whatever evaluator is shipped in
``resources/models/mini-geometric``; a better one changes the numbers, not the script.

    OMP_NUM_THREADS=1 python bench/miniature.py [--n 200] [--markdown] [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ABLATIONS = (
    ("amg", "w/o AMG masks"),
    ("semantic", "w/o semantic masks"),
    ("multimask", "w/o multimask outputs"),
)
PRESET = "mini-geometric"


def _run(store, engine, overrides: dict[str, Any], name: str) -> tuple[int, float]:
    from core.pipeline.plan import RunRequest, plan_run
    from core.pipeline.settings import Stage2Settings

    t0 = time.perf_counter()
    req = RunRequest(
        PRESET, stage2=Stage2Settings(PRESET, cot=False), overrides=overrides, name=name
    )
    plan = plan_run(store, req, engine)
    report = engine.run(store, plan)
    if not report.ok:
        print(
            f"run {name}: {len(report.skipped)} skipped, {len(report.failed)} failed",
            file=sys.stderr,
        )
    return plan.run_id, time.perf_counter() - t0


def _fmt(d: dict[str, Any], key: str) -> str:
    ci = d[key + "_ci"]
    f = "+" if d.get("paired") else ""
    return f"{d[key]:{f}.3f} [{ci[0]:{f}.3f}, {ci[1]:{f}.3f}]"


def _existing_runs(store) -> dict[str, int]:
    """The bench's runs already in ``store`` (by name), newest of each name."""
    from core.store import repo

    names = {"bench miniature: full": "full"}
    names.update({f"bench miniature: w/o {o}": o for o, _ in ABLATIONS})
    runs = store.run(lambda s: [(r.id, r.name) for r in repo.list_runs(s)], write=False)
    return {names[name]: rid for rid, name in sorted(runs) if name in names}


def _paired(a: list, b: list, n_boot: int) -> dict[str, Any]:
    """Paired bootstrap of A − B over the same samples, in :func:`_fmt`'s shape."""
    from core.analytics import bootstrap

    d = bootstrap.paired_difference(a, b, n_boot=n_boot)
    return {
        "giou": d["giou_diff"],
        "ciou": d["ciou_diff"],
        "giou_ci": d["giou_ci"],
        "ciou_ci": d["ciou_ci"],
        "paired": True,
    }


def measure(n: int, seed: int, work: Path, n_boot: int) -> dict[str, Any]:
    """Generate, import, run and analyse; returns the table rows and timings."""
    from core.analytics import bootstrap, failures
    from core.analytics.records import run_records
    from core.geometric.generate import generate
    from core.importers.sgdr import import_sgdr
    from core.pipeline.cache import ModelCache
    from core.pipeline.engine import LocalEngine
    from core.store import open_store
    from core.training.splits import EVALUATION_SEEDS

    if seed not in EVALUATION_SEEDS:
        raise SystemExit(f"--seed {seed} is not an evaluation seed ({EVALUATION_SEEDS})")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    reuse = (work / "store.sqlite").is_file()
    if not reuse:
        generate(work / "split", n, seed=seed, size_wh=(256, 192), per_scene=3)
    store = open_store(work / "store.sqlite")
    runs = _existing_runs(store) if reuse else {}
    if len(runs) == 1 + len(ABLATIONS):
        print(f"reusing the runs {runs} of {work / 'store.sqlite'}", file=sys.stderr)
    else:
        if not reuse:
            import_sgdr(store, work / "split" / "sgdr.json", dataset="miniature-heldout")
            times["generate + import"] = time.perf_counter() - t0
        engine = LocalEngine(ModelCache(device="cpu"))
        try:
            runs["full"], times["full run"] = _run(store, engine, {}, "bench miniature: full")
            for origin, _label in ABLATIONS:
                runs[origin], times[f"run w/o {origin}"] = _run(
                    store,
                    engine,
                    {"disabled_origins": [origin]},
                    f"bench miniature: w/o {origin}",
                )
        finally:
            engine.close()
    t0 = time.perf_counter()
    recs = {k: run_records(store, rid) for k, rid in runs.items()}
    store.close()

    def ci(rows):
        return bootstrap.interval(rows, n_boot=n_boot)

    full = recs["full"]
    rows = [
        ("initial mask M", ci([r.counts["initial"] for r in full])),
        ("stage-2 top-1", ci([r.counts["top1"] for r in full])),
        ("best of top-3", ci([r.counts["best_of_top3"] for r in full])),
        ("oracle", ci([r.counts["oracle"] for r in full])),
    ]
    for origin, label in ABLATIONS:
        rs = recs[origin]
        stored = [failures.without_origin(r, origin) for r in full]
        rows += [
            (f"{label}: top-1 (re-run)", ci([r.counts["top1"] for r in rs])),
            (f"{label}: oracle (re-run)", ci([r.counts["oracle"] for r in rs])),
            (f"{label}: top-1 (stored)", ci([s["top1"] for s in stored])),
            (f"{label}: oracle (stored)", ci([s["oracle"] for s in stored])),
        ]
    # paired differences (same samples resampled together): is each gap more than noise?
    by_id = {k: {r.sample_id: r for r in v} for k, v in recs.items()}
    ids = sorted(set.intersection(*(set(d) for d in by_id.values())))
    f = by_id["full"]
    rows += [
        (
            "Δ stage-2 top-1 − M (paired)",
            _paired(
                [f[i].counts["top1"] for i in ids], [f[i].counts["initial"] for i in ids], n_boot
            ),
        ),
        (
            "Δ oracle − M (paired)",
            _paired(
                [f[i].counts["oracle"] for i in ids], [f[i].counts["initial"] for i in ids], n_boot
            ),
        ),
    ]
    for origin, label in ABLATIONS:
        rows.append(
            (
                f"Δ oracle, all − {label} (paired, re-run)",
                _paired(
                    [f[i].counts["oracle"] for i in ids],
                    [by_id[origin][i].counts["oracle"] for i in ids],
                    n_boot,
                ),
            )
        )
    cls = failures.classification(full)["overall"]
    orig = failures.origins(full)["overall"]
    times["analysis"] = time.perf_counter() - t0
    return {"rows": rows, "n": len(full), "classes": cls, "origins": orig, "times": times}


def render(res: dict[str, Any], markdown: bool) -> str:
    rows = res["rows"]
    if markdown:
        out = ["| | gIoU [95% CI] | cIoU [95% CI] |", "|---|---|---|"]
        out += [f"| {name} | {_fmt(d, 'giou')} | {_fmt(d, 'ciou')} |" for name, d in rows]
    else:
        out = [f"{'':<54}{'gIoU [95% CI]':>26}{'cIoU [95% CI]':>26}"]
        out += [f"{name:<54}{_fmt(d, 'giou'):>26}{_fmt(d, 'ciou'):>26}" for name, d in rows]
    out.append("")
    out.append(
        f"{res['n']} held-out samples; failure classes (IoU 0.5): "
        + ", ".join(f"{k} {v}" for k, v in res["classes"].items())
        + "; best candidate found by: "
        + ", ".join(f"{k} {v}" for k, v in res["origins"].items())
    )
    out.append(
        "time: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in res["times"].items())
        + f"; total {sum(res['times'].values()):.1f} s"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="held-out questions (default 200)")
    ap.add_argument("--seed", type=int, default=2026, help="evaluation seed of the split")
    ap.add_argument(
        "--work", type=Path, help="folder for the split and the store (default: temporary)"
    )
    ap.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res = measure(args.n, args.seed, work, args.bootstrap)
    print(render(res, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
