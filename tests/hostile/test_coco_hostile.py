"""COCO import under hostile input: structure, geometry, duplicate ids, escaping paths, broken
text and size. Each bad item is one line naming it; the others land; no process dies by a
signal; nothing ambiguous lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.masks import encode_rle
from core.store import open_store
from core.store.models import InstanceGroup, Target
from tests.hostile.conftest import ROOT, cli
from tests.unit.conftest import make_image, pg_server  # noqa: F401 - the fixture

HW = (20, 30)
SQUARE = [[2, 2, 12, 2, 12, 12, 2, 12]]


def ann(i, image_id=1, category_id=1, seg=None, **extra):
    return (
        {"id": i, "image_id": image_id, "category_id": category_id, "iscrowd": 0}
        | {"segmentation": SQUARE if seg is None else seg}
        | extra
    )


def write_coco(tmp_path, annotations, images=None, categories=None, groups=None, raw=None):
    """A COCO file in ``tmp_path/c.json`` with ``img/a.png`` and ``img/b.png`` (20x30)."""
    (tmp_path / "img").mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        if not (tmp_path / "img" / name).exists():
            make_image(tmp_path / "img" / name, HW)
    data = {
        "images": images
        if images is not None
        else [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "annotations": annotations,
        "categories": categories if categories is not None else [{"id": 1, "name": "cup"}],
    }
    if groups is not None:
        data["groups"] = groups
    text = json.dumps(data)
    if raw is not None:  # splice raw JSON text in place of the string "@RAW@"
        text = text.replace('"@RAW@"', raw)
    (tmp_path / "c.json").write_text(text)
    return tmp_path / "c.json"


def run_import(tmp_path, *extra, db="s.sqlite", timeout=120):
    r = cli(
        "import",
        "coco",
        str(tmp_path / "c.json"),
        "--images",
        str(tmp_path / "img"),
        "--db",
        str(tmp_path / db),
        *extra,
        timeout=timeout,
    )
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert "Traceback" not in r.stderr, r.stderr
    return r


def skipped(stdout: str) -> dict[str, str]:
    """'annotation 7' -> reason, from the report's 'skipped NAME: reason' lines."""
    out = {}
    for line in stdout.splitlines()[1:]:
        assert line.startswith("  skipped "), line
        name, reason = line[len("  skipped ") :].split(": ", 1)
        out.setdefault(name, reason)
    return out


def landed(db) -> list[str]:
    st = open_store(db)
    try:
        return sorted(st.run(lambda s: list(s.scalars(select(Target.external_id))), write=False))
    finally:
        st.close()


# -- 1. structure ----------------------------------------------------------------------------


def test_structurally_hostile_items_are_one_line_each_and_the_rest_lands(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    anns = [
        ann(1),
        ann([1, 2]),  # id a list
        ann({"x": 1}),  # id an object
        ann(True),  # id a boolean
        ann(4.5),  # id a float
        ann(6, image_id=[1]),
        ann(7, category_id={"id": 1}),
        ann(8, seg="@RAW@"),  # 200 000 levels deep
        ann(9, seg=[[1, 2, "x", 4, 5, 6]]),
        ann(10, seg={"size": [[[20]]], "counts": "0"}),
        "not an object",
        ann(12, iscrowd=[1]),
        ann(13, image_id=2),
    ]
    write_coco(tmp_path, anns, raw=deep)
    r = run_import(tmp_path)
    assert r.returncode == 1
    assert "targets added 2," in r.stdout, r.stdout  # annotations 1 and 13
    got = skipped(r.stdout)
    assert got.keys() == {
        "annotation #1",
        "annotation #2",
        "annotation #3",
        "annotation #4",
        "annotation 6",
        "annotation 7",
        "annotation 8",
        "annotation 9",
        "annotation 10",
        "annotation #10",
        "annotation 12",
    }, got
    assert "an integer or a string, not a list" in got["annotation #1"]
    assert "not an object" in got["annotation #10"] or "not a JSON object" in got["annotation #10"]
    assert landed(tmp_path / "s.sqlite") == ["image1/cup/ann1", "image2/cup/ann13"]


def test_deep_nesting_outside_the_lists_costs_little_and_whole_file_problems_are_one_line(
    tmp_path,
):
    write_coco(tmp_path, [ann(1)])
    data = (tmp_path / "c.json").read_text()
    depth = 2_000_000
    (tmp_path / "c.json").write_text(data[:-1] + ', "info": ' + "[" * depth + "]" * depth + "}")
    r = run_import(tmp_path)
    assert r.returncode == 0 and "targets added 1," in r.stdout
    cases = {
        "top.json": "[1, 2]",
        "missing.json": '{"images": [], "annotations": {}}',
        "truncated.json": '{"images": [], "annotations": [{"id": 1',
        "binary.json": b"\xff\xfe\x00garbage",
        "deep-top.json": "[" * 300_000 + "]" * 300_000,
        "empty.json": "",
        "bigint.json": '{"images": [], "categories": [], "annotations": [{"id": 1'
        + "0" * 5000
        + "}]}",
    }
    for name, text in cases.items():
        f = tmp_path / name
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        r = cli(
            "import",
            "coco",
            str(f),
            "--images",
            str(tmp_path / "img"),
            "--db",
            str(tmp_path / "t.sqlite"),
        )
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr, name


_ID = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
_KEYS = [
    "id",
    "image_id",
    "category_id",
    "segmentation",
    "iscrowd",
    "file_name",
    "name",
    "height",
    "width",
    "ann_ids",
    "description",
    "size",
    "counts",
]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(["images", "annotations", "categories", "groups"]),
        st.lists(
            st.recursive(
                _ID,
                lambda c: (
                    st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), c, max_size=6)
                ),
                max_leaves=16,
            ),
            max_size=6,
        ),
    )
)
def test_read_coco_accounts_for_every_item_and_never_raises(tmp_path_factory, lists):
    """Whatever the items, the reader returns (or refuses the file for a missing list), and
    every message is one printable line."""
    from core.importers.coco_json import CocoError, read_coco

    p = tmp_path_factory.mktemp("h") / "c.json"
    p.write_text(json.dumps(lists))
    try:
        got = read_coco(p)
    except CocoError as exc:
        assert not all(k in lists for k in ("images", "annotations", "categories"))
        assert "\n" not in str(exc)
        return
    n_items = sum(len(v) for v in lists.values())
    assert len(got.annotations) + len(got.images) + len(got.categories) + len(got.groups) <= n_items
    for name, reason in got.errors:
        assert "\n" not in name + reason and (name + reason).encode("utf-8")


# -- 2. geometry -----------------------------------------------------------------------------


def test_absurd_polygons_never_reach_pycocotools(tmp_path):
    """Each of these crashed the interpreter (SIGSEGV) or took gigabytes inside pycocotools."""
    zigzag = [v for i in range(60_000) for v in ((0, 0) if i % 2 else (30, 20))]
    bad = {
        101: [[0, 0, 1e30, 0, 0, 1e30]],
        102: [[0, 0, 3e9, 0, 0, 3e9]],
        103: [[0, 0, -1e30, 5, 5, 5]],
        104: [[0, 0, 2e8, 0, 0, 2e8]],
        105: [[0, 0, 31.5, 0, 0, 10]],  # 1.5 px outside a 30 px wide image
        106: [[0, 0, 1e400, 0, 0, 5]],  # parses as infinity
        107: [[0, 0, 5, 0, 0, 5]] * 1_001,  # too many polygons
        108: [[1.0, 1.0] * 200_001],  # too many points
        109: [zigzag],  # 60 000 points crossing the image: an outline over the limit
        110: {"size": [20, 30], "counts": [600, 2**40]},
        111: {"size": [2**31, 2**31], "counts": "0"},
    }
    anns = [ann(i, seg=s) for i, s in bad.items()] + [ann(1)]
    write_coco(tmp_path, anns)
    text = (tmp_path / "c.json").read_text().replace("Infinity", "1e400")
    (tmp_path / "c.json").write_text(text)
    assert (tmp_path / "c.json").stat().st_size < 4_000_000
    r = run_import(tmp_path)
    assert r.returncode == 1 and "targets added 1," in r.stdout, (r.stdout, r.stderr)
    got = skipped(r.stdout)
    assert sorted(got) == sorted(f"annotation {i}" for i in bad), got
    assert "outside the 30x20 image" in got["annotation 101"]
    assert "outline" in got["annotation 109"] and "limit" in got["annotation 109"]


def test_a_640_byte_file_that_crashed_the_interpreter(tmp_path):
    anns = [ann(i, seg=[[0, 0, v, 0, 0, v]]) for i, v in enumerate((1e30, -1e30, 3e9, 1e18), 1)]
    write_coco(tmp_path, anns)
    assert (tmp_path / "c.json").stat().st_size < 640
    r = run_import(tmp_path)
    assert r.returncode == 1 and len(skipped(r.stdout)) == 4


_PEAK = """
import json, sys
from pathlib import Path
import numpy as np
from core.importers.coco import decode_segmentation
import pycocotools.mask  # loaded before the baseline

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

seg = json.loads(sys.argv[1])
hw = tuple(json.loads(sys.argv[2]))
Path("/proc/self/clear_refs").write_text("5")
before = kb("VmRSS")
mask = decode_segmentation(seg, hw)
print(json.dumps({"peak_delta_mb": (kb("VmHWM") - before) / 1024, "area": int(mask.sum())}))
"""


def test_the_costliest_accepted_polygon_stays_bounded(tmp_path):
    """The largest image and an outline just under the limit: peak memory of one decode."""
    from core.importers.coco import MAX_EDGE_PIXELS

    h = w = 8192
    n = MAX_EDGE_PIXELS // w - 2  # edges that each cross the whole image
    poly = [v for i in range(n) for v in ((i * 8.0, 0.0) if i % 2 else (i * 8.0 + 4, h))]
    r = subprocess.run(
        [sys.executable, "-c", _PEAK, json.dumps([poly]), json.dumps([h, w])],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(
        f"costliest accepted polygon ({n} edges on 8192x8192): peak {out['peak_delta_mb']:.0f} MB"
    )
    assert out["area"] > 0 and out["peak_delta_mb"] < 400


# -- 3. duplicate ids ------------------------------------------------------------------------


def test_duplicate_ids_are_reported_and_nothing_ambiguous_lands(tmp_path):
    cats = [
        {"id": 1, "name": "cup"},
        {"id": 2, "name": "dog"},
        {"id": 2, "name": "cat"},  # id 2 relabelled
        {"id": 3, "name": "bowl"},
        {"id": 4, "name": "bowl"},  # one name, two ids
        {"id": 5, "name": "fork"},
        {"id": "5", "name": "knife"},  # "5" is id 5
    ]
    images = [
        {"id": 1, "file_name": "a.png"},
        {"id": 2, "file_name": "a.png"},
        {"id": 2, "file_name": "b.png"},  # id 2 bound to two files
        {"id": 3, "file_name": "b.png"},
    ]
    anns = [
        ann(1, image_id=1),
        ann(2, image_id=1),
        ann(2, image_id=3),  # annotation id 2 twice: neither instance lands
        ann(3, image_id=2),
        ann(4, image_id=1, category_id=2),
        ann(5, image_id=1, category_id=3),
        ann(6, image_id=1, category_id=5),
        ann(7, image_id=3),
        ann(8, image_id=3, seg="bad"),
        ann(8, image_id=3),  # a bad twin refuses its good twin as well
    ]
    groups = [
        {"id": 1, "image_id": 1, "ann_ids": [1], "description": "x"},
        {"id": 1, "image_id": 3, "ann_ids": [7], "description": "y"},
        {"id": 2, "image_id": 3, "ann_ids": [7], "description": "the cup"},
        {"id": 3, "image_id": 1, "ann_ids": [1, 2]},  # 2 is ambiguous
        {"id": 4, "image_id": 1, "ann_ids": [1, 1]},
    ]
    write_coco(tmp_path, anns, images=images, categories=cats, groups=groups)
    r = run_import(tmp_path)
    assert r.returncode == 1
    got = skipped(r.stdout)
    assert "id listed 2 times" in got["annotation 2"]
    assert "id listed 2 times" in got["image 2"]
    assert "id listed 2 times" in got["category 2"]
    assert "id listed 2 times" in got["category 5"]
    assert "ids 3, 4" in got["category 'bowl'"]
    assert "id listed 2 times" in got["group 1"]
    assert "more than once" in got["annotation 3"]  # its image id 2 is ambiguous
    for a in ("annotation 4", "annotation 5", "annotation 6", "annotation 8", "group 3", "group 4"):
        assert a in got, a
    assert landed(tmp_path / "s.sqlite") == [
        "group2/ann7",
        "image1/cup/ann1",
        "image3/cup/ann7",
    ]


# -- 4. image paths ----------------------------------------------------------------------------


def test_image_paths_stay_inside_images_unless_allowed(tmp_path):
    write_coco(tmp_path, [])
    make_image(tmp_path / "secret.png", HW)
    (tmp_path / "img" / "link.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "img" / "dangling.png").symlink_to(tmp_path / "no-such.png")
    names = {
        1: "a.png",
        2: "../secret.png",
        3: "../no-such.png",
        4: str(tmp_path / "secret.png"),
        5: str(tmp_path / "nope.png"),
        6: "link.png",
        7: "dangling.png",
        8: "sub/../b.png",
        9: "sub/../nope.png",
    }
    images = [{"id": i, "file_name": n} for i, n in names.items()]
    write_coco(tmp_path, [ann(10 + i, image_id=i) for i in names], images=images)
    r = run_import(tmp_path)
    assert r.returncode == 1 and "targets added 2," in r.stdout
    got = skipped(r.stdout)
    refused = sorted(k for k, v in got.items() if "refused" in v)
    assert refused == [f"annotation {10 + i}" for i in (2, 3, 4, 5, 6, 7)]
    assert "secret" not in got["annotation 16"] and "no-such" not in got["annotation 17"]

    def reason(i):
        return got[f"annotation {10 + i}"].replace(names[i], "<path>").split(": ", 1)[1]

    assert reason(2) == reason(3) and reason(4) == reason(5) and reason(6) == reason(7)
    assert "not found" in got["annotation 19"]
    r = run_import(tmp_path, "--allow-outside")
    assert "targets added 3," in r.stdout  # 2, 4 and 6 now land


# -- 5. text no store can hold -----------------------------------------------------------------


def _broken_text_case(tmp_path):
    images = [
        {"id": 1, "file_name": "a.png"},
        {"id": 2, "file_name": "b\x00.png"},
        {"id": 3, "file_name": "b\ud800.png"},
        {"id": 4, "file_name": "b.png"},
    ]
    cats = [
        {"id": 1, "name": "cup"},
        {"id": 2, "name": "nul\x00cat"},
        {"id": 3, "name": "sur\udc80"},
        {"id": 4, "name": ["list"]},
    ]
    anns = [
        ann(1),
        ann(2, image_id=2),
        ann(3, image_id=3),
        ann(4, category_id=2),
        ann(5, category_id=3),
        ann(6, category_id=4),
        ann("id\x00nul"),
        ann("\udfff"),
        ann(9, image_id=4),
    ]
    groups = [
        {"id": 1, "image_id": 1, "ann_ids": [1], "description": "a \x00 b"},
        {"id": 2, "image_id": 1, "ann_ids": [1], "sentences": [{"sent": "x\ud800"}]},
        {"id": 3, "image_id": 4, "ann_ids": [9], "description": "the cup"},
    ]
    # json.dumps escapes the surrogates and NULs, as a hostile file would spell them
    return write_coco(tmp_path, anns, images=images, categories=cats, groups=groups)


def test_broken_text_is_one_line_per_item(tmp_path):
    _broken_text_case(tmp_path)
    r = run_import(tmp_path)
    assert r.returncode == 1 and "targets added 3," in r.stdout, r.stdout
    got = skipped(r.stdout)
    for name in (
        "image 2",
        "image 3",
        "category 2",
        "category 3",
        "category 4",
        "group 1",
        "group 2",
    ):
        assert name in got, (name, got)
    assert "NUL" in got["image 2"] and "surrogate" in got["image 3"]
    assert "annotation id\\x00nul" in got and "annotation \\uffff" in got
    for line in r.stdout.splitlines():
        line.encode("utf-8")  # printable, no lone surrogate reaches the terminal
    assert landed(tmp_path / "s.sqlite") == ["group3/ann9", "image1/cup/ann1", "image4/cup/ann9"]


@pytest.mark.postgres
def test_broken_text_on_postgresql(tmp_path, pg_server):  # noqa: F811
    from core.importers.coco import import_coco

    f = _broken_text_case(tmp_path)
    st = open_store(pg_server.new_database())
    try:
        rep = import_coco(st, f, tmp_path / "img")
        assert rep.added == 3 and len(rep.errors) >= 9
        kinds = st.run(
            lambda s: sorted(s.scalars(select(InstanceGroup.category_name))), write=False
        )
        assert kinds == ["cup", "cup", "cup"]
    finally:
        st.close()


# -- 6. size -----------------------------------------------------------------------------------

_MEMORY = """
import json, sys
from pathlib import Path
from core.store import open_store
from core.importers.coco import import_coco
import cv2, ijson, pycocotools.mask, sqlalchemy  # loaded before the baseline

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

st = open_store(sys.argv[1])
Path("/proc/self/clear_refs").write_text("5")
before = kb("VmRSS")
rep = import_coco(st, sys.argv[2], sys.argv[3])
print(json.dumps({"peak_delta_mb": (kb("VmHWM") - before) / 1024, "added": rep.added,
                  "errors": len(rep.errors)}))
"""


def test_peak_memory_stays_within_twice_the_file(tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench.coco_import_memory import write_coco_file

    f, n_anns = write_coco_file(tmp_path, target_mb=24)
    size_mb = f.stat().st_size / 2**20
    r = subprocess.run(
        [sys.executable, "-c", _MEMORY, str(tmp_path / "s.sqlite"), str(f), str(tmp_path / "img")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(f"COCO import: {size_mb:.1f} MB file, peak RSS delta {out['peak_delta_mb']:.1f} MB")
    assert out["added"] == n_anns and out["errors"] == 0
    assert out["peak_delta_mb"] < 2 * size_mb


def test_one_huge_item_or_unused_key_costs_no_more_than_its_text(tmp_path):
    """A polygon of 3 M numbers and an unused key of 2 M numbers: refused and skipped
    without being built (Python would hold ~32 bytes for each 4-byte number)."""
    huge = ", ".join(["1.5"] * 3_000_000)
    write_coco(tmp_path, [ann(1), ann(2, seg="@RAW@")], raw=f"[[{huge}]]")
    text = (tmp_path / "c.json").read_text()
    filler = "[" + ", ".join(["7"] * 2_000_000) + "]"
    (tmp_path / "c.json").write_text(text[:-1] + f', "licenses": {filler}}}')
    size_mb = (tmp_path / "c.json").stat().st_size / 2**20
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY,
            str(tmp_path / "s.sqlite"),
            str(tmp_path / "c.json"),
            str(tmp_path / "img"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(f"one huge item: {size_mb:.1f} MB file, peak RSS delta {out['peak_delta_mb']:.1f} MB")
    assert out["added"] == 1 and out["errors"] == 1
    assert out["peak_delta_mb"] < 2 * size_mb
    r = run_import(tmp_path)
    assert "skipped annotation 2: more than" in r.stdout


def test_rle_round_trip_still_exact(tmp_path):
    mask = np.zeros(HW, bool)
    mask[3:9, 4:20] = True
    write_coco(tmp_path, [ann(1, seg=encode_rle(mask))])
    r = run_import(tmp_path)
    assert r.returncode == 0 and "targets added 1," in r.stdout
