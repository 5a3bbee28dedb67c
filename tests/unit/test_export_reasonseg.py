"""``rea2seg export reasonseg``: a store back to LISA's folder layout. The round trip through the
real importer (same questions, masks within the reported IoU, ignore regions kept), how samples
of one image map to files, the filters, and bad inputs (one line, nothing half-written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.cli import build_parser, main
from core.exporters import ReasonSegSettings, export_dataset
from core.exporters.reasonseg import export_reasonseg
from core.fileio import WriteError
from core.formats.sgdr import SgdrSample, write_sgdr
from core.importers import import_dataset
from core.masks import encode_rle, mask_iou
from core.store import open_store, repo, review
from tests.export_data import fill_two_datasets
from tests.unit.conftest import box_mask, make_image

HW = (16, 20)


def _ring() -> np.ndarray:
    m = box_mask(HW, 2, 12, 2, 12)
    m[5:9, 5:9] = False  # a 4x4 hole in a 10x10 square: 84 pixels of ring, IoU 84/100 once filled
    return m


@pytest.fixture
def src(tmp_path, sqlite_store):
    """A store of 5 samples on 2 images (a.jpg, b.png), imported from SGDR:

    q0, q1: a.jpg, the same square and ignore band  -> one JSON, a.json, text [q0, q1]
    q2:     a.jpg, a ring (its hole is lost)        -> a__1.json (+ a__1.jpg)
    q3:     b.png, a box, later edited by a reviewer -> b.json
    q4:     b.png, empty ground truth, verified     -> b__1.json
    """
    d = tmp_path / "src"
    d.mkdir()
    make_image(d / "a.jpg", HW, 0)
    make_image(d / "b.png", HW, 1)
    square, band = box_mask(HW, 3, 9, 4, 10), box_mask(HW, 13, 16, 0, 20)
    samples = [
        SgdrSample(
            "q0",
            "a.jpg",
            "Which square is red?",
            "other",
            "t",
            "pending",
            encode_rle(square),
            encode_rle(band),
        ),
        SgdrSample(
            "q1",
            "a.jpg",
            "What could hold a card?",
            "other",
            "t",
            "pending",
            encode_rle(square),
            encode_rle(band),
        ),
        SgdrSample("q2", "a.jpg", "Which ring?", "other", "t", "pending", encode_rle(_ring())),
        SgdrSample(
            "q3", "b.png", "The box?", "other", "t", "pending", encode_rle(box_mask(HW, 0, 4, 0, 4))
        ),
        SgdrSample(
            "q4",
            "b.png",
            "Nothing there?",
            "other",
            "t",
            "verified",
            encode_rle(np.zeros(HW, bool)),
        ),
    ]
    write_sgdr(d / "set.json", samples)
    assert import_dataset(sqlite_store, "sgdr", d / "set.json", dataset="set").added == 5
    q3 = sqlite_store.run(lambda s: repo.find_sample(s, "q3").id, write=False)
    review.replace_mask(sqlite_store, q3, box_mask(HW, 0, 6, 0, 6), user="ann")
    return sqlite_store


def test_parser_defaults_are_the_settings_defaults():
    args = build_parser().parse_args(["export", "reasonseg", "out", "--db", "x"])
    want = ReasonSegSettings()
    assert (args.mask, args.images, args.min_iou) == (want.mask, want.images, want.min_iou)


def test_round_trip_through_the_importer(src, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "reasonseg", str(out), "--db", src.url]) == 1  # the ring is below 0.99
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "a.jpg",
        "a.json",
        "a__1.jpg",
        "a__1.json",
        "b.json",
        "b.png",
        "b__1.json",
        "b__1.png",
    ]
    assert (
        (out / "a.jpg").read_bytes()
        == (tmp_path / "src" / "a.jpg").read_bytes()
        == (out / "a__1.jpg").read_bytes()
    )
    a = json.loads((out / "a.json").read_text())
    assert (
        a["text"] == ["Which square is red?", "What could hold a card?"]
        and a["is_sentence"] is True
    )
    assert sorted(s["label"] for s in a["shapes"]) == ["ignore", "target"]
    assert "lowest IoU 0.8400" in printed and "1 below --min-iou 0.99" in printed
    assert (
        "below 0.99: set/q2 (sample 3) -> a__1.json: IoU 0.8400, 16 px of holes filled" in printed
    )
    assert "note: 2 images are PNG" in printed

    fresh = open_store(tmp_path / "fresh.sqlite")
    rep = import_dataset(fresh, "reasonseg", out, dataset="back")
    assert rep.ok and rep.added == 5
    ids = fresh.run(lambda s: sorted(r.external_id for r in repo.list_samples(s)), write=False)
    assert ids == ["a#0", "a#1", "a__1#0", "b#0", "b__1#0"]

    def masks(store, dataset):
        def read(s):
            got = {}
            for r in repo.list_samples(s, dataset=dataset):
                mid = r.edited_mask_id or r.gt_mask_id
                got[r.question] = (repo.get_mask(s, mid), repo.get_mask(s, r.ignore_mask_id))
            return got

        return store.run(read, write=False)

    before, after = masks(src, "set"), masks(fresh, "back")
    assert sorted(before) == sorted(after)  # the same questions
    for q, (m, ign) in before.items():
        m2, ign2 = after[q]
        iou = mask_iou(m, m2)
        assert iou == (0.84 if q == "Which ring?" else 1.0), (
            q
        )  # the reviewer's edit of q3 is what went out
        assert (ign is None and ign2 is None) or np.array_equal(ign, ign2), (
            q
        )  # the ignore band is kept
    fresh.close()


def test_mask_gt_writes_the_imported_ground_truth(src, tmp_path, capsys):
    out = tmp_path / "gt"
    main(["export", "reasonseg", str(out), "--db", src.url, "--mask", "gt", "--min-iou", "0.8"])
    assert "(0 with a reviewed mask, 5 with the imported ground truth)" in capsys.readouterr().out
    fresh = open_store(tmp_path / "fresh.sqlite")
    import_dataset(fresh, "reasonseg", out)
    box = fresh.run(lambda s: repo.get_mask(s, repo.find_sample(s, "b#0").gt_mask_id), write=False)
    assert np.array_equal(box, box_mask(HW, 0, 4, 0, 4))  # not the edit (0:6)
    fresh.close()


def test_a_threshold_met_exits_0(src, tmp_path, capsys):
    assert (
        main(["export", "reasonseg", str(tmp_path / "o"), "--db", src.url, "--min-iou", "0.84"])
        == 0
    )
    assert "0 below --min-iou 0.84" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["export", "reasonseg", str(tmp_path / "p"), "--db", src.url, "--min-iou", "1.5"])
    assert (
        exited.value.code == 2
        and "--min-iou: 1.5 is not between 0 and 1" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (
            [],
            {
                "Which thing a_ok?",
                "Which thing a_no?",
                "Which thing b_ok?",
                "Which thing b_no?",
                "Which thing b_new?",
            },
        ),
        (["--status", "verified"], {"Which thing a_ok?", "Which thing b_ok?"}),
        (["--dataset", "beta", "--status", "rejected"], {"Which thing b_no?"}),
        (["--dataset", "alpha", "--status", "pending"], set()),
    ],
)
def test_cli_filters_select_exactly_the_named_samples(sqlite_store, tmp_path, argv, want, capsys):
    fill_two_datasets(sqlite_store, tmp_path / "src")
    out = tmp_path / "out"
    assert main(["export", "reasonseg", str(out), "--db", sqlite_store.url, *argv]) == 0
    texts = [t for p in sorted(out.glob("*.json")) for t in json.loads(p.read_text())["text"]]
    assert sorted(texts) == sorted(want)  # each once
    assert (
        f"wrote {len(want)} samples in {len(list(out.glob('*.json')))} JSON files"
        in capsys.readouterr().out
    )


def test_a_missing_image_is_reported_and_the_rest_written(src, tmp_path, capsys):
    (tmp_path / "src" / "b.png").unlink()
    out = tmp_path / "out"
    assert main(["export", "reasonseg", str(out), "--db", src.url, "--min-iou", "0.8"]) == 1
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "a__1.json"]
    gone = tmp_path / "src" / "b.png"
    assert f"  skipped set/q3 (sample 4): image {gone} no longer exists" in printed.splitlines()
    assert "wrote 3 samples in 2 JSON files" in printed and "skipped 2" in printed


def test_a_changed_image_is_reported(src, tmp_path):
    make_image(tmp_path / "src" / "a.jpg", HW, 7)  # other pixels, same name
    rep = export_reasonseg(src, tmp_path / "out")
    assert [r for _, r in rep.skipped] == [
        f"image {tmp_path / 'src' / 'a.jpg'} changed on disk since it was imported"
    ] * 3
    assert rep.written == 2 and not rep.ok


@pytest.mark.parametrize("case", ["file", "not_empty", "inside_a_file"])
def test_an_output_that_cannot_take_the_folder_is_one_line_and_writes_nothing(
    src, tmp_path, capsys, case
):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    out = {"file": blocker, "not_empty": tmp_path / "full", "inside_a_file": blocker / "sub"}[case]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["export", "reasonseg", str(out), "--db", src.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert {
        "file": "is a file; give a folder",
        "not_empty": "folder is not empty; give a new or empty folder",
        "inside_a_file": f"cannot create folder {blocker} ({blocker} is a file)",
    }[case] in err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before and blocker.read_text() == "keep"


def test_an_unwritable_parent_is_refused_before_anything_is_read(src, tmp_path, monkeypatch):
    import core.fileio

    monkeypatch.setattr(
        core.fileio.os, "access", lambda path, mode: False
    )  # as a user without rights there
    with pytest.raises(
        WriteError, match=rf"^{tmp_path / 'out'}: cannot write in {tmp_path} \(Permission denied\)$"
    ):
        export_dataset(src, "reasonseg", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_is_taken_and_a_cancel_or_failure_leaves_nothing(
    src, tmp_path, monkeypatch
):
    out = tmp_path / "empty"
    out.mkdir()
    rep = export_dataset(src, "reasonseg", out, settings=ReasonSegSettings(min_iou=0.5))
    assert rep.ok and rep.files == 4 and len(list(out.iterdir())) == 8
    before = sorted(p.name for p in tmp_path.iterdir())
    calls = []
    rep = export_reasonseg(
        src, tmp_path / "c", should_cancel=lambda: bool(calls.append(1)) or len(calls) > 2
    )
    assert (
        rep.cancelled
        and not rep.ok
        and rep.summary() == f"cancelled: nothing written to {tmp_path / 'c'}"
    )
    import shutil

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(WriteError, match="No space left on device.*nothing was written"):
        export_reasonseg(src, tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no leftovers


def test_symlinked_images_point_at_the_sources(src, tmp_path):
    out = tmp_path / "links"
    export_reasonseg(src, out, settings=ReasonSegSettings(images="symlink"))
    assert os.readlink(out / "a__1.jpg") == str((tmp_path / "src" / "a.jpg").resolve())
    fresh = open_store(tmp_path / "fresh.sqlite")
    assert (
        import_dataset(fresh, "reasonseg", out).added == 0
    )  # links lead outside the folder: refused
    assert import_dataset(fresh, "reasonseg", out, allow_outside=True).added == 5
    fresh.close()


def test_bad_settings_and_filters_are_refused(src, tmp_path):
    with pytest.raises(ValueError, match="min_iou must be a number from 0 to 1"):
        ReasonSegSettings(min_iou=2)
    with pytest.raises(ValueError, match="unknown mask choice 'edited'"):
        ReasonSegSettings(mask="edited")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no dataset named 'nope'"):
        export_dataset(src, "reasonseg", tmp_path / "o", dataset="nope")
    with pytest.raises(ValueError, match="settings apply to the reasonseg export"):
        export_dataset(src, "sgdr", tmp_path / "o.json", settings=ReasonSegSettings())
    assert not (tmp_path / "o").exists()


def test_same_stem_images_get_their_own_names(sqlite_store, tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        make_image(tmp_path / sub / "img.jpg", HW, 3 if sub == "x" else 4)
        write_sgdr(
            tmp_path / sub / "s.json",
            [
                SgdrSample(
                    "s",
                    "img.jpg",
                    f"From {sub}?",
                    "other",
                    "t",
                    "pending",
                    encode_rle(box_mask(HW, 1, 3, 1, 3)),
                )
            ],
        )
        import_dataset(sqlite_store, "sgdr", tmp_path / sub / "s.json", dataset=sub)
    out = tmp_path / "out"
    export_reasonseg(sqlite_store, out)
    assert json.loads((out / "img.json").read_text())["text"] == ["From x?"]
    assert json.loads((out / "img__1.json").read_text())["text"] == ["From y?"]
    assert (out / "img__1.jpg").read_bytes() == (tmp_path / "y" / "img.jpg").read_bytes()


def test_summary_lists_the_losses(src, tmp_path):
    rep = export_reasonseg(src, tmp_path / "o")
    assert rep.lowest_iou == 0.84 and [f.sample for f in rep.below] == ["set/q2 (sample 3)"]
    assert rep.written == 5 and rep.files == 4 and rep.reviewed == 1 and rep.png == 2
    assert Path(rep.out) == (tmp_path / "o").resolve()


def test_export_import_export_is_byte_identical(src, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    export_reasonseg(src, first)
    fresh = open_store(tmp_path / "fresh.sqlite")
    import_dataset(fresh, "reasonseg", first)
    export_reasonseg(fresh, second)  # the ring's hole is already filled: its polygon is the same
    files = {p.name: p.read_bytes() for p in first.iterdir()}
    assert files == {p.name: p.read_bytes() for p in second.iterdir()} and len(files) == 8
    fresh.close()


def test_a_rotated_jpeg_keeps_its_upright_frame_and_is_sentence(tmp_path, sqlite_store):
    from tests.unit.test_image_orientation import _rotated_jpeg

    d = tmp_path / "rs"
    d.mkdir()
    _rotated_jpeg(d / "r.jpg")  # stored 20x40, shown (and read by LISA) 40 high, 20 wide
    shapes = [
        {"label": "target", "points": [[2, 25], [18, 25], [18, 38], [2, 38]]},
        {"label": "ignore", "points": [[0, 0], [5, 0], [5, 5], [0, 5]]},
    ]
    (d / "r.json").write_text(
        json.dumps({"text": ["the thing", "that one"], "is_sentence": False, "shapes": shapes})
    )
    assert import_dataset(sqlite_store, "reasonseg", d).added == 2
    out = tmp_path / "out"
    rep = export_reasonseg(sqlite_store, out)
    assert rep.ok and rep.files == 1 and rep.lowest_iou == 1.0
    doc = json.loads((out / "r.json").read_text())
    assert doc["text"] == ["the thing", "that one"] and doc["is_sentence"] is False
    assert (doc["imageHeight"], doc["imageWidth"]) == (40, 20)
    assert (out / "r.jpg").read_bytes() == (d / "r.jpg").read_bytes()  # EXIF and all


def test_folder_problem_names_the_reason_and_creates_nothing(tmp_path):
    from core.fileio import folder_problem

    assert folder_problem("  ") == "no folder name given"
    assert folder_problem(tmp_path / "new" / "deeper") is None and not (tmp_path / "new").exists()
    assert folder_problem(tmp_path) is None  # empty
    (tmp_path / "f").write_text("x")
    assert (
        folder_problem(tmp_path) == f"{tmp_path}: folder is not empty; give a new or empty folder"
    )
    assert folder_problem(tmp_path / "f") == f"{tmp_path / 'f'}: is a file; give a folder"
