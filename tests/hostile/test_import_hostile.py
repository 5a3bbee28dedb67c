"""Imports under hostile input: bombs, huge RLE, broken text, deep nesting, escaping paths."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.masks import MAX_PIXELS, MAX_RLE_CHARS, MaskError, decode_rle, encode_rle
from tests.hostile.conftest import ROOT, cli
from tests.unit.conftest import make_image


def png_bomb(path, side: int = 30000) -> int:
    """A valid 1-bit PNG of side x side pixels, all black: ~110 KB on disk, 0.9 G pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return len(data)


_MEASURE = """
import sys, json
from pathlib import Path
from core.store import open_store
from core.importers.sgdr import import_sgdr
from core.importers.reasonseg import import_reasonseg
import cv2, PIL.Image, pycocotools.mask  # loaded before the baseline

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

st = open_store(sys.argv[1])
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
before = kb("VmRSS")
r1 = import_sgdr(st, sys.argv[2])
r2 = import_reasonseg(st, sys.argv[3])
peak = kb("VmHWM")
print(json.dumps({"peak_delta_mb": (peak - before) / 1024, "errors": r1.errors + r2.errors,
                  "added": r1.added + r2.added}))
"""


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    (tmp_path / "sg").mkdir()
    (tmp_path / "rs").mkdir()
    size = png_bomb(tmp_path / "sg" / "bomb.png")
    assert size < 200_000
    os.link(tmp_path / "sg" / "bomb.png", tmp_path / "rs" / "bomb.png")
    make_image(tmp_path / "sg" / "ok.png", (8, 8))
    m = encode_rle(np.ones((8, 8), bool))
    (tmp_path / "sg" / "d.json").write_text(
        json.dumps(
            {
                "version": 1,
                "samples": [
                    {"id": "bomb", "image": "bomb.png", "question": "q", "mask": m},
                    {"id": "fine", "image": "ok.png", "question": "q", "mask": m},
                ],
            }
        )
    )
    (tmp_path / "rs" / "bomb.json").write_text(json.dumps({"text": ["q"], "shapes": []}))
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            str(tmp_path / "s.sqlite"),
            str(tmp_path / "sg" / "d.json"),
            str(tmp_path / "rs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(
        f"bomb: {size} bytes declaring 30000x30000; peak RSS delta {out['peak_delta_mb']:.1f} MB; {seconds:.2f} s"
    )
    assert out["peak_delta_mb"] < 300
    assert out["added"] == 1 and len(out["errors"]) == 2
    assert all("pixel limit (not decoded)" in reason for _, reason in out["errors"])


def test_10_mb_rle_is_refused_without_decoding(monkeypatch):
    import pycocotools.mask as mask_utils

    def no_decode(*_a, **_k):
        raise AssertionError("decoded")

    monkeypatch.setattr(mask_utils, "decode", no_decode)
    with pytest.raises(MaskError, match="character limit"):  # its time: bench/deadlines.py
        decode_rle({"size": [4000, 4000], "counts": "0" * (10 * 1024 * 1024)})
    with pytest.raises(MaskError, match="pixel limit"):
        decode_rle({"size": [MAX_PIXELS, 2], "counts": "0"})
    assert MAX_RLE_CHARS < 10 * 1024 * 1024


def test_mask_and_image_limits_agree():
    from core.images import MAX_IMAGE_PIXELS

    assert MAX_PIXELS == MAX_IMAGE_PIXELS


def _dataset(tmp_path, entries):
    make_image(tmp_path / "ok.png", (8, 8))
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"version": 1, "samples": entries}))
    return f


GOOD = encode_rle(np.eye(8, dtype=bool))


def test_broken_text_in_one_entry_never_aborts_the_import(tmp_path):
    deep = GOOD | {"extra": json.loads("[" * 50 + "]" * 50)}
    entries = [
        {"id": "surrogate", "image": "ok.png", "question": "bad \ud800 text", "mask": GOOD},
        {"id": "nul", "image": "ok.png", "question": "a\x00b", "mask": GOOD},
        {"id": "id-\udfff", "image": "ok.png", "question": "q", "mask": GOOD},
        {"id": "nested", "image": "ok.png", "question": "q", "mask": deep},
        {
            "id": "nested-size",
            "image": "ok.png",
            "question": "q",
            "mask": {"size": [[[[8]]]], "counts": "0"},
        },
        {"id": "cat", "image": "ok.png", "question": "q", "category": ["x"], "mask": GOOD},
        {"id": "fine", "image": "ok.png", "question": "q", "mask": GOOD},
    ]
    r = cli("import", "sgdr", str(_dataset(tmp_path, entries)), "--db", str(tmp_path / "s.sqlite"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert (
        "added 2," in r.stdout
    )  # "fine", and "nested" (deep nesting in an unused key is harmless)
    for needle in (
        "id='surrogate'",
        "unpaired surrogate",
        "id='nul'",
        "NUL",
        "id-\\udfff",
        "id='cat'",
    ):
        assert needle in r.stdout, needle
    assert r.stdout.count("skipped d.json") == 5


def test_unparseable_files_exit_2_with_one_line(tmp_path):
    cases = {
        "deep.json": '{"version": 1, "samples": [' + "[" * 100_000 + "]" * 100_000 + "]}",
        "binary.json": b"\xff\xfe\x00garbage",
        "top.json": "[1, 2]",
    }
    for name, text in cases.items():
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        r = cli("import", "sgdr", str(p), "--db", str(tmp_path / "s.sqlite"))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stdout == "", (
            name,
            r.stderr,
        )
        assert "Traceback" not in r.stderr


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "id",
                            "image",
                            "question",
                            "mask",
                            "size",
                            "counts",
                            "category",
                            "status",
                            "source",
                            "ignore",
                        ]
                    ),
                    c,
                    max_size=5,
                )
            ),
            max_leaves=12,
        ),
        max_size=6,
    )
)
def test_read_sgdr_reports_every_entry_and_never_raises(tmp_path_factory, entries):
    from core.formats.sgdr import read_sgdr

    p = tmp_path_factory.mktemp("h") / "f.json"
    p.write_text(json.dumps({"version": 1, "samples": entries}))
    samples, errors = read_sgdr(p)
    assert len(samples) + len(errors) == len(entries)
    for _name, reason in errors:
        assert "\n" not in reason and reason.encode("utf-8")


# -- image paths stay inside the dataset ------------------------------------------------------


def test_paths_leaving_the_dataset_are_refused_alike(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    make_image(tmp_path / "secret.png", (8, 8))  # exists, outside
    (data / "link.png").symlink_to(tmp_path / "secret.png")
    (data / "dangling.png").symlink_to(tmp_path / "no-such.png")
    entries = [
        {"id": "dotdot", "image": "../secret.png", "question": "q", "mask": GOOD},
        {"id": "dotdot-missing", "image": "../no-such.png", "question": "q", "mask": GOOD},
        {"id": "absolute", "image": str(tmp_path / "secret.png"), "question": "q", "mask": GOOD},
        {
            "id": "absolute-missing",
            "image": str(tmp_path / "nope.png"),
            "question": "q",
            "mask": GOOD,
        },
        {"id": "symlink", "image": "link.png", "question": "q", "mask": GOOD},
        {"id": "symlink-dangling", "image": "dangling.png", "question": "q", "mask": GOOD},
        {"id": "inside-missing", "image": "sub/../nope.png", "question": "q", "mask": GOOD},
        {"id": "inside", "image": "sub/../ok.png", "question": "q", "mask": GOOD},
    ]
    f = _dataset(data, entries)
    r = cli("import", "sgdr", str(f), "--db", str(tmp_path / "s.sqlite"))
    assert r.returncode == 1 and "added 1," in r.stdout
    lines = {ln.split(":")[0].replace("  skipped ", ""): ln for ln in r.stdout.splitlines()[1:]}
    refused = [k for k in lines if "refused" in lines[k]]
    assert sorted(refused) == sorted(
        ["dotdot", "dotdot-missing", "absolute", "absolute-missing", "symlink", "symlink-dangling"]
    )
    # the refusal reads the same whether the target exists or not, and never names the target
    entries_by_id = {e["id"]: e for e in entries}

    def reason(k):
        return lines[k].split(": ", 1)[1].replace(entries_by_id[k]["image"], "<path>")

    for a, b in (
        ("dotdot", "dotdot-missing"),
        ("absolute", "absolute-missing"),
        ("symlink", "symlink-dangling"),
    ):
        assert reason(a) == reason(b)
    assert "secret" not in lines["symlink"] and "no-such" not in lines["symlink-dangling"]
    assert "not found" in r.stdout.split("inside-missing", 1)[1].splitlines()[0]
    r = cli("import", "sgdr", str(f), "--db", str(tmp_path / "s.sqlite"), "--allow-outside")
    assert "added 3," in r.stdout  # dotdot, absolute and symlink now land


def test_reasonseg_symlinked_image_is_refused(tmp_path):
    d = tmp_path / "rs"
    d.mkdir()
    make_image(tmp_path / "outside.jpg", (8, 8))
    (d / "a.jpg").symlink_to(tmp_path / "outside.jpg")
    (d / "a.json").write_text(
        json.dumps(
            {"text": ["what?"], "shapes": [{"label": "target", "points": [[1, 1], [5, 1], [5, 5]]}]}
        )
    )
    r = cli("import", "reasonseg", str(d), "--db", str(tmp_path / "s.sqlite"))
    assert r.returncode == 1 and "refused" in r.stdout and "outside.jpg" not in r.stdout
    r = cli("import", "reasonseg", str(d), "--db", str(tmp_path / "s.sqlite"), "--allow-outside")
    assert r.returncode == 0 and "added 1," in r.stdout


def test_sgdr_version_must_be_the_integer_1(tmp_path):
    from core.formats.sgdr import SgdrError, read_sgdr

    f = tmp_path / "v.json"
    for version in ("true", "1.0", '"1"', "[1]", "null", "1e0", "2", "-1"):
        f.write_text('{"version": ' + version + ', "samples": []}')
        with pytest.raises(SgdrError, match="unsupported version"):
            read_sgdr(f)
    f.write_text('{"version": 1, "samples": []}')
    assert read_sgdr(f) == ([], [])
    f.write_text('{"version": true, "samples": []}')
    r = cli("import", "sgdr", str(f), "--db", str(tmp_path / "s.sqlite"))
    assert r.returncode == 2 and "unsupported version True" in r.stderr, r.stderr
