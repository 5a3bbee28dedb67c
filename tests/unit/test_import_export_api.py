"""The one import / export entry point that the CLI and the app share: reports, progress and
cancellation, and the CLI going through it."""

from __future__ import annotations

import numpy as np
import pytest

from core.cli import main
from core.exporters import export_dataset
from core.formats.sgdr import SgdrError, read_sgdr
from core.importers import import_dataset
from core.store import review


def test_import_reports_progress_and_stops_on_cancel(sqlite_store, sgdr_file):
    seen: list[tuple[int, int, str]] = []
    rep = import_dataset(
        sqlite_store,
        "sgdr",
        sgdr_file,
        progress=lambda d, t, lab: seen.append((d, t, lab)),
        should_cancel=lambda: len(seen) >= 2,
    )
    assert rep.cancelled and not rep.ok and rep.added == 2 and rep.skipped == 0
    assert [s[:2] for s in seen] == [(0, 4), (1, 4)] and seen[0][2] == "a0"
    assert "cancelled" in rep.summary()
    seen.clear()
    again = import_dataset(
        sqlite_store, "sgdr", sgdr_file, progress=lambda d, t, lab: seen.append((d, t, lab))
    )
    assert again.ok and (again.added, again.existing) == (2, 2) and seen[-1][:2] == (4, 4)


def test_import_reports_each_skipped_item_with_its_reason(sqlite_store, sgdr_file):
    (sgdr_file.parent / "img" / "b.png").write_bytes(b"not an image")
    rep = import_dataset(sqlite_store, "sgdr", sgdr_file)
    assert rep.added == 2 and rep.skipped == 2 and not rep.ok
    assert {name.split(" ")[0] for name, _ in rep.errors} == {"b0", "b1"}
    with pytest.raises(SgdrError):
        bad = sgdr_file.parent / "bad.json"
        bad.write_text("{not json")
        import_dataset(sqlite_store, "sgdr", bad)
    with pytest.raises(ValueError, match="unknown import format"):
        import_dataset(sqlite_store, "coco", sgdr_file)  # type: ignore[arg-type]


def test_export_report_says_which_masks_were_written(filled_sqlite, tmp_path):
    review.replace_mask(filled_sqlite, 1, np.ones((40, 60), bool), user="ann")
    rep = export_dataset(filled_sqlite, "sgdr", tmp_path / "out.json")
    assert (rep.written, rep.reviewed, rep.without_mask) == (4, 1, 0)
    assert rep.out == (tmp_path / "out.json").resolve()
    assert "1 with a reviewed mask, 3 with the imported ground truth" in rep.summary()
    samples, errors = read_sgdr(rep.out)
    assert not errors and samples[0].mask["size"] == [40, 60]
    rep = export_dataset(filled_sqlite, "sgdr", tmp_path / "v.json", status="verified")
    assert (rep.written, rep.reviewed) == (1, 0)


def test_cli_import_and_export_go_through_the_shared_functions(
    tmp_path, sgdr_file, monkeypatch, capsys
):
    import core.exporters
    import core.importers

    calls = []
    real_imp, real_exp = core.importers.import_dataset, core.exporters.export_dataset
    monkeypatch.setattr(
        core.importers, "import_dataset", lambda *a, **k: calls.append(a[1]) or real_imp(*a, **k)
    )
    monkeypatch.setattr(
        core.exporters, "export_dataset", lambda *a, **k: calls.append(a[1]) or real_exp(*a, **k)
    )
    db = str(tmp_path / "s.sqlite")
    assert main(["import", "sgdr", str(sgdr_file), "--db", db]) == 0
    assert main(["export", "sgdr", "--db", db, "--out", str(tmp_path / "e.json")]) == 0
    assert calls == ["sgdr", "sgdr"]
    assert "wrote 4 samples" in capsys.readouterr().out
