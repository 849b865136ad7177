"""The shared pinhole camera and the ray-cast primitives, against hand-computed geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unimrseg_core.data.camera import Camera
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.primitives import Box, Cone, Ellipsoid, ray_box, ray_cone, ray_ellipsoid
from unimrseg_core.data.render import rasterize
from unimrseg_core.modalities import class_id

GROUND = class_id("ground")
POSES = [
    {},
    {"pitch_rad": 0.12},
    {"pitch_rad": -0.03, "yaw_rad": 0.2},
    {"pitch_rad": 0.17, "yaw_rad": -0.21, "x_m": 1.5, "z_m": -2.0},
]
PIXELS = [(0, 0), (0, 159), (119, 0), (119, 159), (60, 80), (31, 117), (95, 12)]  # (v, u)


def _camera(**pose: float) -> Camera:
    return Camera.from_fov(160, 120, 70.0, 1.2, **pose)


# -------------------------------------------------------------------------------- camera


def test_from_fov_intrinsics():
    cam = _camera()
    assert cam.fx == pytest.approx(80.0 / math.tan(math.radians(35.0)))
    assert cam.fy == cam.fx
    assert (cam.cx, cam.cy) == (79.5, 59.5)
    assert cam.dirs.shape == (120, 160, 3)
    assert cam.dirs.dtype == np.float32
    assert cam.ground_y == 1.2
    intr = json.loads(json.dumps(cam.intrinsics()))
    assert intr["width"] == 160
    assert intr["height"] == 120
    assert intr["mount_height_m"] == 1.2
    with pytest.raises(ValueError, match="positive"):
        Camera(0, 10, 1.0, 1.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("pose", POSES)
def test_camera_frame_ray_is_pinhole_with_unit_z(pose):
    """dirs[v, u] in the camera frame is [(u-cx)/fx, (v-cy)/fy, 1]: depth along the ray is t."""
    cam = _camera(**pose)
    for v, u in PIXELS:
        c = cam.world_to_camera((cam.origin + cam.dirs[v, u])[None])[0]
        np.testing.assert_allclose(c, [(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0], atol=1e-5)


@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize("t", [0.3, 2.0, 17.5])
def test_point_on_pixel_ray_projects_back_to_that_pixel_at_depth_t(pose, t):
    cam = _camera(**pose)
    vu = np.array(PIXELS)
    points = cam.origin[None] + t * cam.dirs[vu[:, 0], vu[:, 1]].astype(np.float64)
    uv, z = cam.project(points)
    np.testing.assert_allclose(z, t, rtol=1e-5)  # REP 118: z-depth, not distance along the ray
    np.testing.assert_allclose(uv[:, 0], vu[:, 1], atol=1e-3)
    np.testing.assert_allclose(uv[:, 1], vu[:, 0], atol=1e-3)
    # the Euclidean distance is longer than the depth off the optical axis
    dist = np.linalg.norm(points - cam.origin, axis=1)
    assert np.all(dist >= t * (1 - 1e-6))
    assert np.all(dist[:4] > t * 1.1)  # image corners


def test_world_point_projects_to_the_pixel_whose_ray_hits_it():
    cam = _camera(pitch_rad=0.1, yaw_rad=0.15, x_m=-0.7, z_m=1.0)
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(-3, 3, 50), rng.uniform(-1, 1.2, 50), rng.uniform(4, 30, 50)], axis=1)
    uv, z = cam.project(points)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= 159) & (uv[:, 1] >= 0) & (uv[:, 1] <= 119) & (z > 0)
    assert inside.sum() >= 20
    for (u, v), depth, p in zip(uv[inside], z[inside], points[inside], strict=True):
        iu, iv = round(u), round(v)
        # the pixel's ray at t = depth passes within half a pixel's footprint of the point
        hit = cam.origin + depth * cam.dirs[iv, iu].astype(np.float64)
        assert np.linalg.norm(hit - p) <= depth * 0.75 / cam.fx + 1e-4


@pytest.mark.parametrize("pose", POSES)
def test_ground_depth_below_horizon_is_mount_height_over_ray_y(pose):
    cam = _camera(**pose)
    dy = cam.dirs[..., 1].astype(np.float64)
    below = dy > 1e-3
    assert below.any()
    assert (~below).any() or pose.get("pitch_rad", 0) > 0.6  # the horizon is in view
    t = cam.mount_height_m / dy[below]
    points = cam.origin[None] + t[:, None] * cam.dirs[below].astype(np.float64)
    np.testing.assert_allclose(points[:, 1], cam.ground_y, rtol=1e-5)  # on the plane Y = ground_y
    _, z = cam.project(points)
    np.testing.assert_allclose(z, t, rtol=1e-5)
    # the bottom row sees the ground, nearer than rows above it (same column)
    col = dy[:, 80]
    rows = np.flatnonzero(col > 1e-3)
    assert rows[-1] == cam.height - 1
    assert np.all(np.diff(cam.mount_height_m / col[rows]) < 0)


def test_level_camera_horizon_at_principal_row():
    cam = _camera()
    rows = np.broadcast_to(((np.arange(120) - 59.5) / cam.fy)[:, None], (120, 160))
    np.testing.assert_allclose(cam.dirs[..., 1], rows, atol=1e-6)
    np.testing.assert_allclose(cam.dirs[..., 2], 1.0)


def test_pitch_looks_down_and_yaw_turns_right():
    axis = np.array([0.0, 0.0, 1.0])
    down = _camera(pitch_rad=0.2).camera_to_world_dir(*axis)
    assert down[1] == pytest.approx(math.sin(0.2))
    assert down[2] == pytest.approx(math.cos(0.2))
    right = _camera(yaw_rad=0.3).camera_to_world_dir(*axis)
    assert right[0] == pytest.approx(math.sin(0.3))
    assert right[1] == pytest.approx(0.0)


@pytest.mark.parametrize("pose", POSES)
def test_world_to_camera_round_trips_through_camera_to_world_dir(pose):
    cam = _camera(**pose)
    rng = np.random.default_rng(1)
    points = rng.uniform(-20, 20, (100, 3))
    c = cam.world_to_camera(points)
    back = np.stack(cam.camera_to_world_dir(c[:, 0], c[:, 1], c[:, 2]), axis=1) + cam.origin
    np.testing.assert_allclose(back, points, atol=1e-9)
    # a rotation: distances from the optical centre are kept
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), np.linalg.norm(points - cam.origin, axis=1))


def test_rendered_ground_depth_matches_the_camera_model():
    """The renderer's ground pixels carry exactly mount_height / dirs_y as depth."""
    gen = SceneGenerator((48, 64), seed=2)
    checked = 0
    for i in range(3):
        scene = gen.scene(i, ["day"])
        g = rasterize(scene)
        ground = g.cls == GROUND
        assert ground.sum() > 100
        dy = scene.camera.dirs[..., 1]
        np.testing.assert_allclose(g.t[ground], scene.camera.ground_y / dy[ground], rtol=1e-6)
        checked += int(ground.sum())
    assert checked > 1000


# ---------------------------------------------------------------------------- primitives

ORIGIN = np.zeros(3, np.float32)


def _d(*rows: tuple[float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32)


def test_ray_box_unit_box_straight_ahead():
    lo, hi = np.array([-0.5, -0.5, 2.0], np.float32), np.array([0.5, 0.5, 3.0], np.float32)
    dirs = _d((0, 0, 1), (0.2, -0.1, 1), (0.24, 0, 1), (0.26, 0, 1), (1, 0, 1), (0, 0, -1), (0, 1, 0))
    t, normal = ray_box(ORIGIN, dirs, lo, hi)
    np.testing.assert_allclose(t[:3], [2.0, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(normal[:3], [[0, 0, -1]] * 3)
    # (0.26, 0, 1) passes x = 0.5 at z = 1.92, in front of the box, then stays beside it
    assert np.all(np.isinf(t[3:]))  # just beside, far beside, behind, straight down
    # seen from beside (origin outside the x slab) the ray enters the side face x = 0.5
    t_side, n_side = ray_box(np.array([2.0, 0, 0], np.float32), _d((-0.6, 0, 1)), lo, hi)
    assert t_side[0] == pytest.approx(1.5 / 0.6, rel=1e-6)  # x = 0.5 at z = 2.5
    np.testing.assert_allclose(n_side[0], [1, 0, 0])


def test_ray_box_side_and_top_faces_and_per_ray_boxes():
    lo = _d((2.0, -1.0, 3.0), (-1.0, 1.0, 3.0))
    hi = _d((3.0, 1.0, 6.0), (1.0, 2.0, 8.0))
    dirs = _d((0.5, 0.0, 1.0), (0.0, 0.25, 1.0))  # ray 0 hits box 0's -x face, ray 1 box 1's top
    t, normal = ray_box(ORIGIN, dirs, lo, hi)
    np.testing.assert_allclose(t, [4.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(normal, [[-1, 0, 0], [0, -1, 0]])
    # seen from inside the box: no hit (boxes are only seen from outside)
    t_in, _ = ray_box(ORIGIN, _d((0, 0, 1)), np.full(3, -1, np.float32), np.ones(3, np.float32))
    assert np.isinf(t_in[0])


def test_ray_ellipsoid_sphere():
    center, radii = np.array([0, 0, 5], np.float32), np.ones(3, np.float32)
    s = 0.6 / math.sqrt(25 - 0.36)  # tan of an off-axis ray at impact parameter 0.6 (approx)
    dirs = _d((0, 0, 1), (0, 0, 2), (0.5, 0, 1), (0, 0, -1), (s, 0, 1))
    t, normal, edge = ray_ellipsoid(ORIGIN, dirs, center, radii)
    assert t[0] == pytest.approx(4.0, rel=1e-6)
    assert t[1] == pytest.approx(2.0, rel=1e-6)  # t is in units of the (unnormalised) direction
    np.testing.assert_allclose(normal[0], [0, 0, -1], atol=1e-6)
    assert edge[0] == pytest.approx(1.0)
    assert np.isinf(t[2])
    assert np.isinf(t[3])
    # off-axis hit: on the sphere, normal = radial unit vector, facing the camera
    p = t[4] * dirs[4]
    assert np.linalg.norm(p - center) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(normal[4], (p - center) / np.linalg.norm(p - center), atol=1e-5)
    assert 0 < edge[4] < 1


def test_ray_ellipsoid_stretched():
    center, radii = np.array([0, 0, 10], np.float32), np.array([2, 0.5, 1], np.float32)
    dirs = _d((0, 0, 1), (0.19, 0, 1), (0, 0.04, 1), (0, 0.06, 1))
    t, normal, _ = ray_ellipsoid(ORIGIN, dirs, center, radii)
    assert t[0] == pytest.approx(9.0, rel=1e-6)
    for k in (1, 2):  # hit points satisfy the ellipsoid equation
        p = t[k] * dirs[k] - center
        assert np.sum((p / radii) ** 2) == pytest.approx(1.0, abs=1e-4)
        grad = p / radii**2
        np.testing.assert_allclose(normal[k], grad / np.linalg.norm(grad), atol=1e-4)
    assert np.isinf(t[3])  # (0.06 t / 0.5)^2 + (t - 10)^2 = 1 has no real root


def test_ray_cone_from_the_side():
    # apex at y = 0, base (radius 0.5) on the plane y = 1, centred at z = 5; eye at mid height
    cone = Cone(base_x=0.0, base_z=5.0, base_y=1.0, radius=0.5, height=1.0)
    origin = np.array([0, 0.5, 0], np.float32)
    dirs = _d((0, 0, 1), (0, 0, -1), (0.3, 0, 1))
    t, normal = ray_cone(origin, dirs, cone)
    # the cone's radius at half height is 0.25: the front surface is at z = 4.75
    assert t[0] == pytest.approx(4.75, rel=1e-5)
    np.testing.assert_allclose(normal[0], np.array([0, -1, -2]) / math.sqrt(5), atol=1e-5)  # up and out
    assert np.isinf(t[1])
    assert np.isinf(t[2])


def test_ray_cone_ignores_the_mirror_nappe_and_below_the_base():
    cone = Cone(base_x=0.0, base_z=5.0, base_y=1.0, radius=0.5, height=1.0)
    above = ray_cone(np.array([0, -0.5, 0], np.float32), _d((0, 0, 1)), cone)[0]
    below = ray_cone(np.array([0, 1.5, 0], np.float32), _d((0, 0, 1)), cone)[0]
    assert np.isinf(above[0])  # the quadric's upper nappe is not part of the cone
    assert np.isinf(below[0])
    # looking down onto the apex region from above: hits the surface on the near side
    t, _ = ray_cone(np.array([0, -1.0, 0], np.float32), _d((0, 0.25, 1)), cone)
    p = np.array([0, -1.0, 0]) + t[0] * np.array([0, 0.25, 1])
    assert 0 <= p[1] <= 1
    r = math.hypot(p[0], p[2] - 5)
    assert r == pytest.approx(0.5 * p[1], abs=1e-4)


@pytest.mark.parametrize("kind", ["box", "ellipsoid", "cone"])
def test_normals_are_unit_and_face_the_camera(kind):
    rng = np.random.default_rng(3)
    dirs = np.stack([rng.uniform(-0.5, 0.5, 400), rng.uniform(-0.4, 0.4, 400), np.ones(400)], 1)
    dirs = dirs.astype(np.float32)
    a, b = np.array([-1, -0.5, 4], np.float32), np.array([1.5, 1.0, 6], np.float32)
    if kind == "box":
        t, n = ray_box(ORIGIN, dirs, a, b)  # lo, hi
    elif kind == "ellipsoid":
        t, n, _ = ray_ellipsoid(
            ORIGIN, dirs, np.array([0.2, 0, 6], np.float32), np.array([1.5, 1, 1], np.float32)
        )
    else:
        t, n = ray_cone(ORIGIN, dirs, Cone(0.0, 6.0, 1.5, 1.2, 2.5))
    hit = np.isfinite(t)
    assert 40 < hit.sum() < 400  # some hits, some misses
    assert np.all(t[hit] > 0)
    np.testing.assert_allclose(np.linalg.norm(n[hit], axis=1), 1.0, atol=1e-4)
    assert np.all(np.einsum("ij,ij->i", n[hit], dirs[hit]) < 0)


def test_primitive_bounds_and_corners():
    box = Box((0, -1, 2), (1, 0, 3))
    lo, hi = box.bounds()
    np.testing.assert_array_equal(lo, [0, -1, 2])
    corners = box.corners()
    assert corners.shape == (8, 3)
    assert len({tuple(c) for c in corners}) == 8
    lo, hi = Ellipsoid((0, 0, 5), (1, 2, 3)).bounds()
    np.testing.assert_allclose([lo, hi], [[-1, -2, 2], [1, 2, 8]])
    lo, hi = Cone(1.0, 5.0, 1.5, 0.3, 0.8).bounds()
    np.testing.assert_allclose([lo, hi], [[0.7, 0.7, 4.7], [1.3, 1.5, 5.3]], atol=1e-6)
