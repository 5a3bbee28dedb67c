"""CLEVR-like scene graphs: objects on a ground plane seen by a fixed perspective camera.

World frame: ``X`` to the camera's right, ``Z`` away from the camera (depth), ground at
``Y = 0``; the camera sits at height ``CAMERA_HEIGHT`` looking along ``+Z``. So "left" means
smaller ``X`` and "in front of" means smaller ``Z`` (closer to the camera), in the camera's frame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SHAPES = ("cube", "sphere", "cylinder")
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
MATERIALS = ("rubber", "metal")
SIZES = ("small", "large")
RGB = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
RADIUS = {"small": 0.35, "large": 0.7}  # world units: half the footprint
CAMERA_HEIGHT = 3.2
FOCAL = 1.05  # in units of image width
HORIZON = 0.16  # horizon row as a fraction of image height
X_RANGE = (-3.0, 3.0)
Z_RANGE = (4.0, 10.5)


@dataclass
class SceneObject:
    """One object. ``x``/``z`` are its footprint centre on the ground (world units)."""

    id: int
    shape: str
    color: str
    material: str
    size: str
    x: float
    z: float
    # filled by the renderer: pixel box (x0, y0, x1, y1) and visible pixel count
    bbox_xyxy: tuple[int, int, int, int] | None = None
    visible_pixels: int = 0

    def __post_init__(self) -> None:
        if (
            self.shape not in SHAPES
            or self.color not in COLORS
            or self.material not in MATERIALS
            or self.size not in SIZES
        ):
            raise ValueError(
                f"bad object attributes: {self.shape} {self.color} {self.material} {self.size}"
            )

    @property
    def radius(self) -> float:
        return RADIUS[self.size]

    def attr(self, name: str) -> str:
        return getattr(self, name)


@dataclass
class Scene:
    id: str
    width: int
    height: int
    objects: list[SceneObject] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "width": self.width,
            "height": self.height,
            "objects": [asdict(o) for o in self.objects],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        objs = []
        for o in d["objects"]:
            o = dict(o)
            if o.get("bbox_xyxy") is not None:
                o["bbox_xyxy"] = tuple(o["bbox_xyxy"])
            objs.append(SceneObject(**o))
        return cls(d["id"], int(d["width"]), int(d["height"]), objs)


def sample_scene(
    rng: np.random.Generator, scene_id: str, size_wh: tuple[int, int], n_objects: int | None = None
) -> Scene:
    """Random 3–10 objects with footprints that keep a gap (no interpenetration)."""
    n = int(n_objects if n_objects is not None else rng.integers(3, 11))
    objs: list[SceneObject] = []
    tries = 0
    while len(objs) < n and tries < 2000:
        tries += 1
        size = SIZES[int(rng.integers(2))]
        r = RADIUS[size]
        x = float(rng.uniform(*X_RANGE))
        z = float(rng.uniform(*Z_RANGE))
        if any(np.hypot(x - o.x, z - o.z) < r + o.radius + 0.25 for o in objs):
            continue
        objs.append(
            SceneObject(
                id=len(objs),
                shape=SHAPES[int(rng.integers(3))],
                color=COLORS[int(rng.integers(8))],
                material=MATERIALS[int(rng.integers(2))],
                size=size,
                x=round(x, 4),
                z=round(z, 4),
            )
        )
    return Scene(scene_id, size_wh[0], size_wh[1], objs)
