"""A small numpy/OpenCV renderer for CLEVR-like scenes with exact visible-part masks.

Each object is rasterised once into a silhouette (bool, H×W) and a shaded colour layer.
Objects are composited far to near (painter's order by depth ``z``), so the visible mask of an
object is its silhouette minus the silhouettes of every nearer object — the same pixels that
show it in the image. Shading: Lambert diffuse from one key light plus ambient; metal adds a
sharp specular highlight and an environment gradient, rubber stays matte. Soft contact shadows
are painted on the ground before the objects.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.geometric.scene import CAMERA_HEIGHT, FOCAL, HORIZON, RGB, Scene, SceneObject

LIGHT = np.array([-0.5, 0.8, 0.55])
LIGHT = LIGHT / np.linalg.norm(LIGHT)


def project(x: float, y: float, z: float, wh: tuple[int, int]) -> tuple[float, float]:
    """World point → image pixel (u right, v down)."""
    w, h = wh
    f = FOCAL * w
    u = w / 2 + f * x / z
    v = HORIZON * h + f * (CAMERA_HEIGHT - y) / z
    return u, v


def _background(wh: tuple[int, int]) -> np.ndarray:
    w, h = wh
    v = np.linspace(0.0, 1.0, h)[:, None]
    u = np.linspace(-1.0, 1.0, w)[None, :]
    ground = 0.50 + 0.22 * v - 0.05 * u**2
    img = np.repeat((ground * 255)[:, :, None], 3, axis=2) * np.array([1.0, 0.99, 0.97])
    sky = np.arange(h) < HORIZON * h
    img[sky] = img[sky] * 0.93
    return np.broadcast_to(img, (h, w, 3)).astype(np.float32).copy()


def _shade(base: np.ndarray, n: np.ndarray, metal: bool) -> np.ndarray:
    """Colour (..., 3) for unit normals ``n`` (..., 3) in a camera-aligned frame (y up, z to viewer)."""
    diffuse = np.clip(n @ LIGHT, 0.0, 1.0)[..., None]
    if not metal:
        return base * (0.32 + 0.72 * diffuse)
    view = np.array([0.0, 0.0, 1.0])
    half = LIGHT + view
    half = half / np.linalg.norm(half)
    spec = np.clip(n @ half, 0.0, 1.0)[..., None] ** 60
    env = 0.55 + 0.45 * n[..., 1:2]  # brighter where the surface faces up (sky reflection)
    return base * (0.18 + 0.55 * diffuse) * env + 255.0 * (0.9 * spec) + 18.0 * env


def _sphere(
    o: SceneObject, wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    w, h = wh
    cu, cv = project(o.x, o.radius, o.z, wh)
    rad = FOCAL * w * o.radius / o.z
    x0, x1 = int(np.floor(cu - rad)), int(np.ceil(cu + rad)) + 1
    y0, y1 = int(np.floor(cv - rad)), int(np.ceil(cv + rad)) + 1
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx = (xx + 0.5 - cu) / rad
    dy = (yy + 0.5 - cv) / rad
    r2 = dx**2 + dy**2
    sil = r2 <= 1.0
    nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    n = np.stack([dx, -dy, nz], axis=-1)
    col = _shade(np.array(RGB[o.color], np.float32), n, o.material == "metal")
    return sil, col, (x0, y0, x1, y1)


def _poly_mask(pts: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round(pts - [x0, y0]).astype(np.int32)], 1)
    return m.astype(bool)


def _cube(
    o: SceneObject, wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    r = o.radius
    # axis-aligned cube: visible faces are front (z - r), top (y = 2r), and the side facing the centre line
    side = 1 if o.x < 0 else -1  # the face pointing towards the image centre is visible
    P = {}
    for sx in (-1, 1):
        for sy in (0, 1):
            for sz in (-1, 1):
                P[(sx, sy, sz)] = project(o.x + sx * r, 2 * r * sy, o.z + sz * r, wh)
    front = np.array([P[(-1, 0, -1)], P[(1, 0, -1)], P[(1, 1, -1)], P[(-1, 1, -1)]])
    top = np.array([P[(-1, 1, -1)], P[(1, 1, -1)], P[(1, 1, 1)], P[(-1, 1, 1)]])
    sx = side
    sidef = np.array([P[(sx, 0, -1)], P[(sx, 0, 1)], P[(sx, 1, 1)], P[(sx, 1, -1)]])
    allp = np.concatenate([front, top, sidef])
    box = (
        int(np.floor(allp[:, 0].min())),
        int(np.floor(allp[:, 1].min())),
        int(np.ceil(allp[:, 0].max())) + 1,
        int(np.ceil(allp[:, 1].max())) + 1,
    )
    base = np.array(RGB[o.color], np.float32)
    metal = o.material == "metal"
    hh, ww = box[3] - box[1], box[2] - box[0]
    col = np.zeros((hh, ww, 3), np.float32)
    sil = np.zeros((hh, ww), bool)
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    for pts, normal in (
        (sidef, (sx, 0.0, 0.35)),
        (top, (0.0, 1.0, 0.25)),
        (front, (0.0, 0.0, 1.0)),
    ):
        m = _poly_mask(pts, box)
        nrm = np.array(normal, np.float32)
        nrm = nrm / np.linalg.norm(nrm)
        # a slight gradient across the face keeps flat faces from looking like stickers
        grad = 1.0 + 0.08 * ((yy / max(hh, 1)) - 0.5) * (-1 if normal[1] else 1)
        n = np.broadcast_to(nrm, (hh, ww, 3))
        c = _shade(base, n, metal) * grad[..., None]
        col[m] = c[m]
        sil |= m
    edge = cv2.morphologyEx(
        sil.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8)
    ).astype(bool)
    col[edge & sil] *= 0.85
    return sil, col, box


def _cylinder(
    o: SceneObject, wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    r = o.radius
    hgt = 2 * r
    cu_b, cv_b = project(o.x, 0.0, o.z, wh)
    cu_t, cv_t = project(o.x, hgt, o.z, wh)
    rx = FOCAL * wh[0] * r / o.z
    # ellipse minor axis from the foreshortening of the circular cap seen from above
    ry_t = abs(project(o.x, hgt, o.z - r, wh)[1] - project(o.x, hgt, o.z + r, wh)[1]) / 2
    ry_b = abs(project(o.x, 0.0, o.z - r, wh)[1] - project(o.x, 0.0, o.z + r, wh)[1]) / 2
    x0, x1 = int(np.floor(cu_b - rx)), int(np.ceil(cu_b + rx)) + 1
    y0, y1 = int(np.floor(cv_t - ry_t)), int(np.ceil(cv_b + ry_b)) + 1
    hh, ww = y1 - y0, x1 - x0
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    px, py = xx + x0 + 0.5, yy + y0 + 0.5
    u = (px - cu_b) / rx
    body = (np.abs(u) <= 1.0) & (py >= cv_t) & (py <= cv_b)
    bottom = (u**2 + ((py - cv_b) / max(ry_b, 1e-3)) ** 2) <= 1.0
    top = (((px - cu_t) / rx) ** 2 + ((py - cv_t) / max(ry_t, 1e-3)) ** 2) <= 1.0
    sil = body | bottom | top
    base = np.array(RGB[o.color], np.float32)
    metal = o.material == "metal"
    uc = np.clip(u, -1, 1)
    n_body = np.stack([uc, np.zeros_like(uc), np.sqrt(1 - uc**2)], axis=-1)
    col = _shade(base, n_body, metal)
    n_top = np.broadcast_to(np.array([0.0, 0.97, 0.24], np.float32), (hh, ww, 3))
    col_top = _shade(base, n_top, metal)
    col[top] = col_top[top]
    return sil, col, (x0, y0, x1, y1)


_DRAW = {"sphere": _sphere, "cube": _cube, "cylinder": _cylinder}


def _paste(canvas_shape: tuple[int, int], box: tuple[int, int, int, int]):
    """Clip a patch drawn at ``box`` (x0, y0, x1, y1) to the canvas; returns (canvas slices, patch
    slices), or ``None`` when nothing of it is on the canvas."""
    h, w = canvas_shape
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return (slice(cy0, cy1), slice(cx0, cx1)), (
        slice(cy0 - y0, cy1 - y0),
        slice(cx0 - x0, cx1 - x0),
    )


def silhouettes(scene: Scene) -> dict[int, np.ndarray]:
    """Full (unoccluded) bool (H, W) silhouette of each object."""
    wh = (scene.width, scene.height)
    out = {}
    for o in scene.objects:
        sil, _, box = _DRAW[o.shape](o, wh)
        full = np.zeros((scene.height, scene.width), bool)
        sl = _paste(full.shape, box)
        if sl is not None:
            full[sl[0]] = sil[sl[1]]
        out[o.id] = full
    return out


def depth_order(scene: Scene) -> list[int]:
    """Object ids far to near (painter's order)."""
    return [o.id for o in sorted(scene.objects, key=lambda o: (-o.z, o.id))]


def render(scene: Scene) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(uint8 RGB image (H, W, 3), {object id: bool visible mask}). Fills bbox/visible counts."""
    wh = (scene.width, scene.height)
    h, w = scene.height, scene.width
    img = _background(wh)
    # soft contact shadows, offset away from the light
    shadow = np.zeros((h, w), np.float32)
    for o in scene.objects:
        u, v = project(o.x + 0.35 * o.radius, 0.0, o.z + 0.2 * o.radius, wh)
        ax = FOCAL * w * o.radius / o.z * 1.25
        ay = max(ax * CAMERA_HEIGHT / o.z * 0.55, 2.0)
        cv2.ellipse(shadow, (int(u), int(v)), (int(ax), int(ay)), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), sigmaX=max(w / 160, 1.5))
    img *= (1.0 - 0.45 * np.clip(shadow, 0, 1))[..., None]
    owner = np.full((h, w), -1, np.int32)
    by_id = {o.id: o for o in scene.objects}
    for oid in depth_order(scene):
        o = by_id[oid]
        sil, col, box = _DRAW[o.shape](o, wh)
        sl = _paste((h, w), box)
        if sl is None:
            continue
        m = sil[sl[1]]
        region = img[sl[0]]
        region[m] = col[sl[1]][m]
        owner[sl[0]][m] = oid
    masks = {o.id: owner == o.id for o in scene.objects}
    for o in scene.objects:
        m = masks[o.id]
        o.visible_pixels = int(m.sum())
        ys, xs = np.nonzero(m)
        o.bbox_xyxy = (
            (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            if ys.size
            else None
        )
    # a touch of blur so edges are not aliased stickers (masks stay the exact pixel owners)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.6)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, masks
