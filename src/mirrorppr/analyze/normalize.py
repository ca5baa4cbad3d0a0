"""Face-normalised coordinates: the common ground between two people's faces.

A face's frame (origin between the irises, x along the eye line, y down the face, unit
= inter-ocular distance) maps its photo to normalised (u, v). An exemplar's measured
motion is stored on a fixed normalised grid, with vectors in normalised units, so it
does not depend on the exemplar photo's size or framing.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..landmarks.topology import face_frame
from ..warp.field import Field

#: The normalised grid: u across, v down, in inter-ocular units.
U_RANGE = (-2.6, 2.6)
V_RANGE = (-2.4, 3.8)
STEP = 0.025


@dataclass(frozen=True)
class Frame:
    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    scale: float

    @classmethod
    def of(cls, points: np.ndarray) -> "Frame":
        o, ex, ey, s = face_frame(np.asarray(points, float))
        return cls(o, ex, ey, s)

    @property
    def basis(self) -> np.ndarray:
        """2x2 matrix whose columns are ex, ey (normalised -> pixel directions)."""
        return np.stack([self.ex, self.ey], axis=1)

    def to_norm(self, pts: np.ndarray) -> np.ndarray:
        return self.vec_to_norm(np.asarray(pts, float) - self.origin)

    def to_pixels(self, uv: np.ndarray) -> np.ndarray:
        return self.vec_to_pixels(uv) + self.origin

    def vec_to_norm(self, d: np.ndarray) -> np.ndarray:
        # Written out: a (N, 2) @ (2, 2) product is slow in numpy for large N.
        d = np.asarray(d, float)
        x, y = d[..., 0], d[..., 1]
        k = 1.0 / self.scale
        return np.stack([(x * self.ex[0] + y * self.ex[1]) * k, (x * self.ey[0] + y * self.ey[1]) * k], -1)

    def vec_to_pixels(self, dn: np.ndarray) -> np.ndarray:
        dn = np.asarray(dn, float)
        u, v = dn[..., 0] * self.scale, dn[..., 1] * self.scale
        return np.stack([u * self.ex[0] + v * self.ey[0], u * self.ex[1] + v * self.ey[1]], -1)


def grid_axes() -> tuple[np.ndarray, np.ndarray]:
    us = np.arange(U_RANGE[0], U_RANGE[1] + 1e-9, STEP)
    vs = np.arange(V_RANGE[0], V_RANGE[1] + 1e-9, STEP)
    return us, vs


def grid_points() -> np.ndarray:
    """(Nv, Nu, 2) normalised coordinates of the grid cells."""
    us, vs = grid_axes()
    gu, gv = np.meshgrid(us, vs)
    return np.stack([gu, gv], axis=2)


def field_to_grid(field: Field, frame: Frame) -> np.ndarray:
    """Sample an image Field onto the normalised grid; vectors in normalised units."""
    uv = grid_points()
    px = frame.to_pixels(uv.reshape(-1, 2))
    inside = ((px[:, 0] >= 0) & (px[:, 0] <= field.size[0] - 1)
              & (px[:, 1] >= 0) & (px[:, 1] <= field.size[1] - 1))
    d = np.zeros_like(px)
    if inside.any():
        d[inside] = field.sample(px[inside])
    return frame.vec_to_norm(d).reshape(uv.shape).astype(np.float32)


def sample_grid(grid: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear sample of a normalised-grid field at points uv (N, 2); zero outside."""
    us, vs = grid_axes()
    return remap_points(grid, (uv[:, 0] - us[0]) / STEP, (uv[:, 1] - vs[0]) / STEP)


def remap_points(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` (h, w, C) at many points (zero outside), in chunks
    shaped for ``cv2.remap`` (whose maps must stay below 32767 per side)."""
    n = len(x)
    cols = 1024
    rows = -(-n // cols)
    mx = np.full(rows * cols, -10.0, np.float32)
    my = np.full(rows * cols, -10.0, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(img.astype(np.float32), mx.reshape(rows, cols), my.reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(rows * cols, -1)[:n]


#: The face region kept by the analysis: the face oval scaled by this about its centre,
#: with a soft edge of this width (inter-ocular units).
FACE_REGION = 1.9
FACE_EDGE = 0.35


def face_weight(norm_points: np.ndarray) -> np.ndarray:
    """Weights on the grid: 1 on and around the face, fading to 0 beyond it."""
    from ..landmarks.topology import FACE_OVAL

    us, vs = grid_axes()
    oval = norm_points[FACE_OVAL]
    c = oval.mean(0)
    poly = (c + (oval - c) * FACE_REGION - [us[0], vs[0]]) / STEP
    m = np.zeros((len(vs), len(us)), np.float32)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1.0)
    k = int(FACE_EDGE / STEP) | 1
    return cv2.GaussianBlur(m, (k, k), 0)


def face_region_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The face region the analysis keeps (where :func:`face_weight` is above about a
    half), as a pixel mask of ``shape`` (h, w) for a face's landmarks in those pixels."""
    from ..landmarks.topology import FACE_OVAL

    pts = np.asarray(points, float)
    oval = pts[FACE_OVAL]
    c = oval.mean(0)
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(c + (oval - c) * FACE_REGION).astype(np.int32)], 1)
    return m > 0
