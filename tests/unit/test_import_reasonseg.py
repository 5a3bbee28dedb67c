from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.importers.reasonseg import AnnotationError, import_reasonseg, rasterize, read_annotation
from core.store import repo
from tests.unit.conftest import make_image


def _shape(label, pts):
    return {"label": label, "points": pts, "shape_type": "polygon"}


def test_rasterize_known_answer_square_with_truncation():
    # points are truncated to int32 and the outline is drawn, so the filled square is inclusive
    target, ignore = rasterize(
        [_shape("target", [[1.9, 1.2], [4.7, 1.0], [4.2, 3.99], [1.0, 3.0]])], (6, 7)
    )
    expected = np.zeros((6, 7), bool)
    expected[1:4, 1:5] = True
    assert np.array_equal(target, expected)
    assert not ignore.any()


def test_rasterize_paints_largest_first_ignore_and_flag():
    big = _shape("target", [[0, 0], [9, 0], [9, 9], [0, 9]])
    hole = _shape("Ignore_region", [[2, 2], [4, 2], [4, 4], [2, 4]])  # smaller: painted later, wins
    flag = _shape("FLAG", [[0, 0], [9, 0], [9, 9], [0, 9]])  # skipped entirely
    tiny_target = _shape("t", [[3, 3], [3, 3], [3, 3]])  # single pixel inside the ignore hole
    for order in ([big, hole, flag, tiny_target], [tiny_target, flag, hole, big]):
        target, ignore = rasterize(order, (10, 10))
        exp_ign = np.zeros((10, 10), bool)
        exp_ign[2:5, 2:5] = True
        exp_ign[3, 3] = False
        exp_t = np.ones((10, 10), bool) & ~exp_ign
        assert np.array_equal(ignore, exp_ign)
        assert np.array_equal(target, exp_t)


def test_out_of_bounds_polygon_is_an_error_but_border_slack_is_clipped():
    with pytest.raises(AnnotationError, match="out of bounds"):
        rasterize([_shape("t", [[0, 0], [30, 0], [30, 5]])], (10, 10))
    target, _ = rasterize(
        [_shape("t", [[-0.6, -0.6], [10.4, -0.5], [10.4, 9.9], [-0.6, 9.9]])], (10, 10)
    )
    assert target.all()


def _write_pair(d, stem, anno, hw=(12, 16)):
    make_image(d / f"{stem}.jpg", hw)
    (d / f"{stem}.json").write_text(json.dumps(anno) if not isinstance(anno, str) else anno)


def test_import_directory_every_text_is_a_sample_and_bad_files_are_named(tmp_path, store):
    d = tmp_path / "val"
    d.mkdir()
    sq = [[2, 2], [8, 2], [8, 8], [2, 8]]
    _write_pair(
        d,
        "a",
        {
            "text": ["What can hold water?", "Which part is sharp?"],
            "is_sentence": True,
            "shapes": [_shape("target", sq)],
        },
    )
    _write_pair(d, "b", "{broken")
    _write_pair(
        d,
        "c",
        {
            "text": ["x"],
            "is_sentence": False,
            "shapes": [_shape("target", [[0, 0], [99, 0], [99, 5]])],
        },
    )
    _write_pair(d, "d", {"text": [], "is_sentence": False, "shapes": []})
    (d / "e.json").write_text(json.dumps({"text": ["q"], "shapes": []}))  # no image
    (d / "f.jpg").write_bytes(b"not a jpeg")
    (d / "f.json").write_text(json.dumps({"text": ["q"], "is_sentence": False, "shapes": []}))
    rep = import_reasonseg(store, d)
    assert rep.added == 2
    names = dict(rep.errors)
    assert set(names) == {"b.json", "c.json", "d.json", "e.json", "f.json"}
    assert "not valid JSON" in names["b.json"] and "out of bounds" in names["c.json"]
    assert "no image" in names["e.json"] and "not a readable image" in names["f.json"]
    with store.session() as s:
        samples = repo.list_samples(s)
        assert [x.external_id for x in samples] == ["a#0", "a#1"]
        assert samples[0].category == "reasonseg" and samples[0].is_sentence is True
        m = repo.gt_mask(s, samples[1].id)
        assert m.sum() == 49 and repo.ignore_mask(s, samples[0].id) is None
    again = import_reasonseg(store, d)
    assert again.added == 0 and again.existing == 2
    assert import_reasonseg(store, d, dataset="first", first_text_only=True).added == 1


def test_cp1252_fallback(tmp_path):
    p = tmp_path / "x.json"
    p.write_bytes(
        '{"text": ["caf\xe9 table"], "is_sentence": false, "shapes": []}'.encode("cp1252")
    )
    assert read_annotation(p)["text"] == ["café table"]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.floats(allow_nan=True)
        | st.integers(-50, 50)
        | st.text(max_size=6),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(["text", "shapes", "label", "points", "is_sentence", "x"]),
                c,
                max_size=4,
            )
        ),
        max_leaves=16,
    )
)
def test_hostile_annotations_raise_annotation_error_only(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("h") / "h.json"
    p.write_text(json.dumps(data))
    try:
        anno = read_annotation(p)
        rasterize(anno["shapes"], (8, 8))
    except AnnotationError:
        pass
