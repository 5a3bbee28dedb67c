from __future__ import annotations

import numpy as np
import pytest

from core.formats.sgdr import read_sgdr
from core.geometric.generate import generate
from core.geometric.program import Desc, Program, check, execute, phrase
from core.geometric.render import depth_order, render, silhouettes
from core.geometric.scene import Scene, SceneObject
from core.masks import decode_rle


def _scene(with_far_left=True) -> Scene:
    objs = [
        SceneObject(0, "cube", "red", "rubber", "large", -2.0, 5.0),
        SceneObject(1, "sphere", "blue", "metal", "small", 0.0, 6.0),
        SceneObject(2, "cube", "red", "metal", "small", 2.0, 7.0),
        SceneObject(3, "cylinder", "green", "rubber", "large", 1.0, 4.0),
    ]
    if with_far_left:
        objs.append(SceneObject(4, "sphere", "yellow", "rubber", "small", -2.8, 9.0))
    return Scene("hand", 320, 240, objs)


RED_CUBE = Desc(color="red", shape="cube")
BLUE_SPHERE = Desc(color="blue", shape="sphere")


def test_accepted_relative_position():
    v = check(_scene(), Program(RED_CUBE, "left", BLUE_SPHERE))
    assert v.ok and v.target == 0


def test_trivial_when_target_is_leftmost_overall():
    v = check(_scene(with_far_left=False), Program(RED_CUBE, "left", BLUE_SPHERE))
    assert (v.ok, v.reason, v.target) == (False, "trivial", 0)


def test_ambiguous_target_and_ambiguous_reference():
    sc = _scene()
    assert execute(sc, Program(Desc(shape="cube"), "behind", Desc(color="green"))) == [0, 2]
    assert (
        check(sc, Program(Desc(shape="cube"), "behind", Desc(color="green"))).reason == "ambiguous"
    )
    assert check(sc, Program(Desc(color="blue"), "right", Desc(shape="cube"))).reason == "ambiguous"
    assert check(sc, Program(RED_CUBE, "front", Desc(color="purple"))).reason == "ambiguous"


def test_shortcut_when_own_attributes_are_unique():
    v = check(_scene(), Program(Desc(color="green", shape="cylinder"), "front", BLUE_SPHERE))
    assert (v.reason, v.target) == ("shortcut", 3)


def test_ordinal_shared_attribute_and_size():
    sc = _scene()
    v = check(sc, Program(Desc(shape="cube"), ordinal=2, side="left"))
    assert v.ok and v.target == 2
    # first cube from the left is the 2nd object overall from the left (the yellow sphere is 1st): accepted
    assert check(sc, Program(Desc(shape="cube"), ordinal=1, side="left")).target == 0
    # spheres from the front: blue (z 6) then yellow (z 9); the nearest object overall is the cylinder
    assert check(sc, Program(Desc(shape="sphere"), ordinal=1, side="front")).target == 1
    v = check(sc, Program(Desc(shape="cube"), "same_material", Desc(color="blue")))
    assert v.ok and v.target == 2
    v = check(sc, Program(Desc(shape="cube"), "smaller", Desc(color="green")))
    assert v.ok and v.target == 2
    assert "bigger" not in phrase(
        Program(Desc(shape="cube"), "smaller", Desc(color="green")), np.random.default_rng(0)
    )


def test_relation_margin_makes_near_ties_fail():
    sc = _scene()
    sc.objects[2].x = 0.1  # red metal cube almost level with the blue sphere
    assert execute(sc, Program(Desc(shape="cube", color="red"), "right", BLUE_SPHERE)) == []


def test_visible_masks_are_silhouettes_minus_nearer_objects():
    sc = _scene()
    img, masks = render(sc)
    sil = silhouettes(sc)
    by_id = {o.id: o for o in sc.objects}
    order = depth_order(sc)  # far to near
    assert [by_id[i].z for i in order] == sorted((o.z for o in sc.objects), reverse=True)
    union = np.zeros(img.shape[:2], bool)
    for oid in reversed(order):  # near to far
        expected = sil[oid] & ~union
        assert np.array_equal(masks[oid], expected)
        union |= sil[oid]
    # disjoint, and every object is partly visible
    stack = np.stack(list(masks.values()))
    assert stack.sum(0).max() == 1
    assert all(m.any() for m in masks.values())
    assert img.dtype == np.uint8 and img.shape == (240, 320, 3)


def test_generation_is_deterministic_and_every_question_checks(tmp_path):
    r1 = generate(tmp_path / "a", 6, seed=3, size_wh=(200, 150))
    r2 = generate(tmp_path / "b", 6, seed=3, size_wh=(200, 150))
    assert r1.samples == 6 and r1.rejected == r2.rejected
    assert (tmp_path / "a" / "sgdr.json").read_bytes() == (
        tmp_path / "b" / "sgdr.json"
    ).read_bytes()
    for f in (tmp_path / "a" / "images").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / "images" / f.name).read_bytes()
    samples, errors = read_sgdr(tmp_path / "a" / "sgdr.json")
    assert not errors and len(samples) == 6
    import json

    for s in samples:
        scene_id = s.id.split("-")[0]
        graph = json.loads((tmp_path / "a" / "scenes" / f"{scene_id}.json").read_text())
        sc = Scene.from_dict(graph)
        q = next(q for q in graph["questions"] if q["id"] == s.id)
        v = check(sc, Program.from_dict(q["program"]))
        assert v.ok and v.target == q["target"]
        _, masks = render(sc)
        assert np.array_equal(decode_rle(s.mask, (150, 200)), masks[v.target])
        assert s.category == "geometric" and s.question.endswith(("?", "."))


def test_cli_size_validation():
    import argparse

    from core.cli.generate import _size

    assert _size("960x720") == (960, 720)
    with pytest.raises(argparse.ArgumentTypeError):
        _size("big")
