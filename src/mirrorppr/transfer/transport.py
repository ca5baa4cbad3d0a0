"""Carrying an exemplar's motion onto another face.

A retoucher's stroke sits on a feature and has a size in proportion to the face: "push
the jaw in, about this much". So the carried motion is anchored by landmarks and sized
by the faces' overall scale:

- positions: a query point (in its face-normalised frame) is matched to the exemplar
  point that lies the same way from the same features: its own coordinates, shifted by
  the landmarks' offsets between the two faces (the 468 mesh points plus rings around the
  oval, so the map continues past the face), averaged smoothly over a small neighbourhood;
- vectors: the exemplar's motion at that point, in normalised units, is turned into
  query pixels by the query's frame (a similarity: the query's eye line and eye distance).

Averaging the offsets keeps the map smooth, so the carried field has no seams, and keeps
its local scale near the faces' overall ratio, so a round brush stays round instead of
being stretched by the local shape of the other face. When the two faces look in
opposite directions (one turned left, the other right), the exemplar is mirrored first,
so that an edit of the near side of the face lands on the near side of the query.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..analyze.normalize import Frame, remap_points, sample_grid
from ..landmarks.topology import FACE_OVAL, MIRROR, yaw
from ..warp.field import Field, working_shape

#: Rings around the face oval, at these distances outside it (inter-ocular units): a
#: point beside the face (temple, neck, hairline) corresponds to the point as far beside
#: the other face, whatever that face's proportions.
RINGS = (0.25, 0.6, 1.0, 1.6, 2.5)
#: Landmark offsets are averaged over this radius (inter-ocular units): smooth, yet
#: close to the features.
SMOOTH = 0.15
#: The offset lattice: its step and how far past the motion grid it reaches.
LATTICE = 0.04
MARGIN = 0.6
#: Faces count as turned when their estimated yaw exceeds this (degrees).
TURNED = 12.0


def _with_rings(points: np.ndarray) -> np.ndarray:
    """Mesh points (468) plus rings offset outward from the face oval (normalised
    coordinates: offsets in inter-ocular units)."""
    mesh = points[:468]
    oval = points[FACE_OVAL]
    tangent = np.roll(oval, -1, axis=0) - np.roll(oval, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    if np.mean(np.sum(normal * (oval - oval.mean(0)), axis=1)) < 0:
        normal = -normal                  # outward, whichever way the oval runs
    return np.vstack([mesh] + [oval + normal * k for k in RINGS])


def mirrored(grid: np.ndarray, norm_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exemplar as if photographed in a mirror: landmarks relabelled left<->right
    and reflected across the face's vertical axis (normalised u -> -u), and its motion
    grid reflected the same way (the grid is symmetric about u = 0)."""
    pts = np.asarray(norm_points, float)[MIRROR] * np.array([-1.0, 1.0])
    g = grid[:, ::-1].copy()
    g[..., 0] *= -1.0
    return g, pts


def opposite_yaw(exemplar_norm: np.ndarray, query_points: np.ndarray) -> bool:
    """Whether the two faces are turned clearly to opposite sides."""
    a, b = yaw(exemplar_norm), yaw(query_points)
    return abs(a) > TURNED and abs(b) > TURNED and a * b < 0


class Correspondence:
    """Query-normalised position -> exemplar-normalised position, smooth."""

    def __init__(self, query_norm: np.ndarray, exemplar_norm: np.ndarray, extent) -> None:
        q, e = _with_rings(query_norm), _with_rings(exemplar_norm)
        (u0, u1), (v0, v1) = extent
        self.u0, self.v0 = u0 - MARGIN, v0 - MARGIN
        nu = int(np.ceil((u1 - u0 + 2 * MARGIN) / LATTICE)) + 1
        nv = int(np.ceil((v1 - v0 + 2 * MARGIN) / LATTICE)) + 1
        # Normalised convolution: splat each landmark's offset onto the lattice, blur
        # offsets and weights alike, divide. Where no landmark is near, the widest blur
        # level fills in, so the map stays defined (and smooth) everywhere.
        num = np.zeros((nv, nu, 2), np.float32)
        den = np.zeros((nv, nu), np.float32)
        fx = (q[:, 0] - self.u0) / LATTICE
        fy = (q[:, 1] - self.v0) / LATTICE
        ix, iy = np.floor(fx).astype(int), np.floor(fy).astype(int)
        ax, ay = fx - ix, fy - iy
        off = (e - q).astype(np.float32)
        for dx, dy, w in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)), (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
            x, y = ix + dx, iy + dy
            ok = (x >= 0) & (x < nu) & (y >= 0) & (y < nv)
            np.add.at(num, (y[ok], x[ok]), off[ok] * w[ok, None])
            np.add.at(den, (y[ok], x[ok]), w[ok])
        shift = np.zeros_like(num)
        filled = np.zeros_like(den, bool)
        for k in (1.0, 3.0, 9.0):
            s = SMOOTH * k / LATTICE
            n = cv2.GaussianBlur(num, (0, 0), s)
            d = cv2.GaussianBlur(den, (0, 0), s)
            ok = (d > 1e-3 * d.max()) & ~filled
            shift[ok] = n[ok] / d[ok, None]
            filled |= ok
        self.shift = shift

    def __call__(self, uv: np.ndarray) -> np.ndarray:
        s = remap_points(self.shift, (uv[:, 0] - self.u0) / LATTICE, (uv[:, 1] - self.v0) / LATTICE)
        return uv + s


def transport(grid: np.ndarray, exemplar_norm: np.ndarray, query_points: np.ndarray,
              size: tuple[int, int], working: int = 1024) -> Field:
    """A normalised-grid motion (exemplar) as a Field on a query image of ``size``.

    ``exemplar_norm`` are the exemplar's landmarks in its normalised frame; the query's
    are in pixels. The result is zero where the carried grid is zero.
    """
    from ..analyze.normalize import U_RANGE, V_RANGE

    W, H = size
    w, h = working_shape(size, working)
    field = np.zeros((h, w, 2), np.float32)
    if not np.abs(grid).max(initial=0) > 0:
        return Field(field, (W, H))
    query_points = np.asarray(query_points, float)
    exemplar_norm = np.asarray(exemplar_norm, float)
    if opposite_yaw(exemplar_norm, query_points):
        grid, exemplar_norm = mirrored(grid, exemplar_norm)
    fq = Frame.of(query_points)
    corr = Correspondence(fq.to_norm(query_points), exemplar_norm, (U_RANGE, V_RANGE))
    # Only cells whose normalised position falls near the motion grid can move.
    ux, uy = W / w, H / h
    corners = fq.to_pixels(np.array([[u, v] for u in U_RANGE for v in V_RANGE], float))
    pad = MARGIN * fq.scale
    x0, y0 = np.floor((corners.min(0) - pad) / [ux, uy]).astype(int)
    x1, y1 = np.ceil((corners.max(0) + pad) / [ux, uy]).astype(int)
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
    if cx1 <= cx0 or cy1 <= cy0:
        return Field(field, (W, H))
    gx, gy = np.meshgrid((np.arange(cx0, cx1) + 0.5) * ux - 0.5, (np.arange(cy0, cy1) + 0.5) * uy - 0.5)
    uv = fq.to_norm(np.stack([gx.ravel(), gy.ravel()], 1))
    d = fq.vec_to_pixels(sample_grid(grid, corr(uv)))
    field[cy0:cy1, cx0:cx1] = d.reshape(cy1 - cy0, cx1 - cx0, 2).astype(np.float32)
    field[np.abs(field) < 1e-3] = 0
    return Field(field, (W, H))
