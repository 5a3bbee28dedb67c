from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exporters.sgdr import export_sgdr
from core.formats.sgdr import SgdrError, parse_sample, read_sgdr
from core.importers.sgdr import import_sgdr
from core.masks import decode_rle, encode_rle
from core.store import open_store, repo


def test_export_import_export_is_byte_identical(filled_store, sgdr_file, tmp_path):
    out1 = tmp_path / "out1.json"
    export_sgdr(filled_store, out1)
    st2 = open_store(tmp_path / "second.sqlite")
    rep = import_sgdr(st2, out1)
    assert rep.ok and rep.added == 4
    out2 = tmp_path / "out2.json"
    export_sgdr(st2, out2)
    assert out1.read_bytes() == out2.read_bytes()
    # and it is the same content as the original file
    a = json.loads(sgdr_file.read_text())["samples"]
    b = json.loads(out1.read_text())["samples"]
    assert [x["mask"] for x in a] == [x["mask"] for x in b]
    assert [x["image"] for x in b] == ["img/a.png", "img/a.png", "img/b.png", "img/b.png"]


def test_export_filters_by_status_and_uses_edited_mask(filled_store, tmp_path):
    from core.store import review

    m = np.zeros((40, 60), bool)
    m[0, 0] = True
    review.replace_mask(filled_store, 1, m, user="ann")
    review.decide(filled_store, 1, "accept", user="ann")
    out = tmp_path / "v.json"
    assert export_sgdr(filled_store, out, status="verified") == 2
    samples, errs = read_sgdr(out)
    assert not errs and [s.id for s in samples] == ["a0", "b0"]
    assert np.array_equal(decode_rle(samples[0].mask), m)


def test_import_is_idempotent(filled_store, sgdr_file):
    rep = import_sgdr(filled_store, sgdr_file)
    assert rep.added == 0 and rep.existing == 4 and rep.ok


def test_bad_entries_are_reported_and_good_ones_land(tmp_path, store):
    from tests.unit.conftest import box_mask, make_image

    make_image(tmp_path / "ok.png", (20, 20))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = encode_rle(box_mask((20, 20), 0, 5, 0, 5))
    entries = [
        {"id": "good", "image": "ok.png", "question": "q", "category": "other", "mask": good},
        {"id": "corrupt", "image": "corrupt.png", "question": "q", "mask": good},
        {"id": "missing", "image": "nope.png", "question": "q", "mask": good},
        {
            "id": "size",
            "image": "ok.png",
            "question": "q",
            "mask": encode_rle(np.zeros((21, 20), bool)),
        },
        {"id": "cat", "image": "ok.png", "question": "q", "category": "funny", "mask": good},
        {
            "id": "rle",
            "image": "ok.png",
            "question": "q",
            "mask": {"size": [20, 20], "counts": "!!"},
        },
        {"id": "good", "image": "ok.png", "question": "dup", "mask": good},
        "not an object",
    ]
    f = tmp_path / "mixed.json"
    f.write_text(json.dumps({"version": 1, "samples": entries}))
    rep = import_sgdr(store, f)
    assert rep.added == 1 and not rep.ok
    reasons = dict(rep.errors)
    text = "\n".join(f"{k}: {v}" for k, v in rep.errors)
    assert "not a readable image" in text and "corrupt.png" in text
    assert "image file not found" in text
    assert "mask size 21x20 != image size 20x20" in reasons["size"]
    assert "unknown category" in text and "duplicate id" in text and "not a JSON object" in text
    assert "bad mask" in text
    with store.session() as s:
        assert [x.external_id for x in repo.list_samples(s)] == ["good"]


@pytest.mark.parametrize(
    "content, msg",
    [
        ("{not json", "not valid JSON"),
        ('{"version": 2, "samples": []}', "unsupported version"),
        ("[]", "samples"),
    ],
)
def test_unreadable_file_is_one_clear_error(tmp_path, store, content, msg):
    f = tmp_path / "x.json"
    f.write_text(content)
    with pytest.raises(SgdrError, match=msg):
        import_sgdr(store, f)
    with store.session() as s:
        assert repo.list_samples(s) == []


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": _json | st.text(min_size=1, max_size=5),
            "image": _json,
            "question": _json | st.text(min_size=1, max_size=5),
            "category": _json | st.sampled_from(["geometric", "other"]),
            "status": _json | st.sampled_from(["pending"]),
            "mask": _json | st.fixed_dictionaries({"size": _json, "counts": _json}),
            "ignore": _json,
        },
    )
)
def test_parse_sample_hostile_entries_raise_value_error_only(entry):
    try:
        s = parse_sample(entry)
    except ValueError:
        return
    decode_rle(s.mask)
