"""Carrying an exemplar's motion onto another face.

The query face and the exemplar face are put in correspondence by their 468 mesh
landmarks plus rings of points around the face oval (scaled out from the face centre,
so the map continues smoothly past the face and becomes a similarity far away). A
Delaunay triangulation of the query's points gives, for every query pixel, the matching
exemplar position (piecewise affine) and each triangle's linear map, which rotates and
scales the exemplar's motion vectors into the query's geometry.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

from ..analyze.normalize import Frame, sample_grid
from ..landmarks.topology import FACE_OVAL
from ..warp.field import Field, working_shape

#: Rings around the face oval, as multiples of the oval's distance from the face centre.
RINGS = (1.3, 1.7, 2.3, 3.2)
#: A triangle may stretch vectors at most this many times the median stretch.
MAX_STRETCH = 2.0
#: The motion fades out between these multiples of the oval distance (beyond = none).
FADE = (1.6, 2.4)


def _with_rings(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mesh points (468) plus oval rings; also returns each point's radial factor."""
    mesh = points[:468]
    oval = points[FACE_OVAL]
    c = oval.mean(0)
    rings = [c + (oval - c) * k for k in RINGS]
    pts = np.vstack([mesh, *rings])
    factor = np.concatenate([np.ones(len(mesh))] + [np.full(len(oval), k) for k in RINGS])
    return pts, factor


def transport(grid: np.ndarray, exemplar_norm: np.ndarray, query_points: np.ndarray,
              size: tuple[int, int], working: int = 1024) -> Field:
    """A normalised-grid motion (exemplar) as a Field on a query image of ``size``.

    ``exemplar_norm`` are the exemplar's landmarks in its normalised frame; the query's
    are in pixels. The result is zero where the grid is zero and fades out around the face.
    """
    W, H = size
    w, h = working_shape(size, working)
    field = np.zeros((h, w, 2), np.float32)
    if not np.abs(grid).max(initial=0) > 0:
        return Field(field, (W, H))
    qpts, factor = _with_rings(np.asarray(query_points, float))
    epts, _ = _with_rings(np.asarray(exemplar_norm, float))
    tri = Delaunay(qpts)
    # Only cells inside the outermost ring's box can move.
    x0, y0 = np.floor(qpts.min(0)).astype(int)
    x1, y1 = np.ceil(qpts.max(0)).astype(int)
    ux, uy = W / w, H / h
    cx0, cy0 = max(0, int(x0 / ux)), max(0, int(y0 / uy))
    cx1, cy1 = min(w, int(np.ceil(x1 / ux)) + 1), min(h, int(np.ceil(y1 / uy)) + 1)
    if cx1 <= cx0 or cy1 <= cy0:
        return Field(field, (W, H))
    X = (np.arange(cx0, cx1) + 0.5) * ux - 0.5
    Y = (np.arange(cy0, cy1) + 0.5) * uy - 0.5
    gx, gy = np.meshgrid(X, Y)
    p = np.stack([gx.ravel(), gy.ravel()], 1)
    simplex = tri.find_simplex(p)
    ok = simplex >= 0
    p, s = p[ok], simplex[ok]
    T = tri.transform[s]                                   # (N, 3, 2): barycentric transform
    b01 = np.einsum("nij,nj->ni", T[:, :2], p - T[:, 2])
    bary = np.concatenate([b01, 1 - b01.sum(1, keepdims=True)], axis=1)
    verts = tri.simplices[s]                               # (N, 3)
    uv = np.einsum("ni,nij->nj", bary, epts[verts])        # exemplar normalised position
    d_norm = sample_grid(grid, uv)
    # Linear map exemplar-normalised -> query pixels, per triangle.
    q0, q1, q2 = qpts[verts[:, 0]], qpts[verts[:, 1]], qpts[verts[:, 2]]
    e0, e1, e2 = epts[verts[:, 0]], epts[verts[:, 1]], epts[verts[:, 2]]
    Q = np.stack([q1 - q0, q2 - q0], axis=2)               # (N, 2, 2) columns
    E = np.stack([e1 - e0, e2 - e0], axis=2)
    det = E[:, 0, 0] * E[:, 1, 1] - E[:, 0, 1] * E[:, 1, 0]
    good = np.abs(det) > 1e-12
    Einv = np.zeros_like(E)
    Einv[good, 0, 0] = E[good, 1, 1] / det[good]
    Einv[good, 1, 1] = E[good, 0, 0] / det[good]
    Einv[good, 0, 1] = -E[good, 0, 1] / det[good]
    Einv[good, 1, 0] = -E[good, 1, 0] / det[good]
    J = np.einsum("nij,njk->nik", Q, Einv)
    # Folded or degenerate triangles (very different poses) would blow vectors up: cap
    # each local map's stretch at a few times the faces' overall scale ratio.
    scale = float(np.median(np.sqrt(np.abs(np.linalg.det(J[good]))))) if good.any() else 1.0
    norm = np.linalg.norm(J, ord=2, axis=(1, 2))
    J *= np.minimum(1.0, MAX_STRETCH * scale / np.maximum(norm, 1e-9))[:, None, None]
    d = np.einsum("nij,nj->ni", J, d_norm)
    # Fade with the radial factor (interpolated from the vertices).
    k = np.einsum("ni,ni->n", bary, factor[verts])
    fade = np.clip((FADE[1] - k) / (FADE[1] - FADE[0]), 0.0, 1.0)
    d *= fade[:, None]
    d[~good] = 0
    out = np.zeros((len(ok), 2), np.float32)
    out[ok] = d
    field[cy0:cy1, cx0:cx1] = out.reshape(len(Y), len(X), 2)
    field[np.abs(field) < 1e-3] = 0
    return Field(field, (W, H))


def query_frame(points: np.ndarray) -> Frame:
    return Frame.of(points)
