"""Turning an operation's geometry into pixels.

Two paths share the same MLS solve:
- :func:`apply_exact`: the paper's procedure (coarse grid, bilinear maps at full size,
  remap, blend with the blurred hull mask, uint8 truncation) for reproducing its data;
- :func:`geometry_field`: the same motion as a :class:`~mirrorppr.warp.Field` with the
  mask folded into the displacement, so several ops compose into one remap that keeps
  16-bit, alpha and untouched pixels exactly.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..warp.field import Field, remap, working_shape
from ..warp.mls import mls_grid_displacement
from .base import Geometry

GRID_STEP = 30


def spec_blur(size: tuple[int, int]) -> int:
    """The LLW spec's mask blur kernel: int(0.05 * min(H, W)), made odd."""
    k = int(0.05 * min(size))
    return k + 1 if k % 2 == 0 else k


def _odd(k: float) -> int:
    k = max(3, int(round(k)))
    return k + 1 if k % 2 == 0 else k


def blend_mask(geom: Geometry, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Blurred union of the region hulls, float32 in [0, 1], at ``size`` * ``scale``."""
    W, H = size
    w, h = max(1, int(round(W * scale))), max(1, int(round(H * scale)))
    m = np.zeros((h, w), np.float32)
    for poly in geom.regions:
        hull = cv2.convexHull(np.round(np.asarray(poly) * scale).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 1.0)
    k = geom.blur if geom.blur is not None else spec_blur(size)
    k = _odd(k * scale) if scale != 1.0 else _odd(k)
    return cv2.GaussianBlur(m, (k, k), 0)


def _controls(geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    dst = np.vstack([geom.targets, geom.anchors])
    src = np.vstack([geom.moving, geom.anchors])
    return dst, src


def grid_displacement(geom: Geometry, size: tuple[int, int], step: int = GRID_STEP) -> np.ndarray:
    dst, src = _controls(geom)
    return mls_grid_displacement(dst, src, size[0], size[1], step=step)


def displacement(geom: Geometry, size: tuple[int, int], work: tuple[int, int]) -> np.ndarray:
    """The op's unmasked backward displacement (h, w, 2) at working size ``work``.

    Spec-grid ops reproduce the paper's upsampling: ``cv2.resize`` of the absolute grid
    map (pixel-centre alignment on nodes that span [0, W]), which shifts content inside
    the mask a little depending on position; other ops sample nodes where they lie.
    """
    W, H = size
    w, h = work
    g = grid_displacement(geom, size, step=max(GRID_STEP, int(np.ceil(max(W, H) / 200))))
    gh, gw = g.shape[:2]
    X = (np.arange(w) + 0.5) * W / w - 0.5
    Y = (np.arange(h) + 0.5) * H / h - 0.5
    if geom.spec_grid:
        cx = np.clip((X + 0.5) * gw / W - 0.5, 0, gw - 1)
        cy = np.clip((Y + 0.5) * gh / H - 0.5, 0, gh - 1)
    else:
        cx = np.clip(X * (gw - 1) / W, 0, gw - 1)
        cy = np.clip(Y * (gh - 1) / H, 0, gh - 1)
    mx, my = np.meshgrid(cx.astype(np.float32), cy.astype(np.float32))
    d = cv2.remap(g.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if geom.spec_grid:
        d[..., 0] += (mx * (W / (gw - 1)) - X[None, :]).astype(np.float32)
        d[..., 1] += (my * (H / (gh - 1)) - Y[:, None]).astype(np.float32)
    return d


def apply_exact(pixels: np.ndarray, geom: Geometry) -> np.ndarray:
    """The paper's pixel procedure for one op: warp the whole image, blend with the
    blurred hull mask, truncate to the integer type (as the paper's uint8 cast)."""
    H, W = pixels.shape[:2]
    if geom.is_identity:
        return pixels.copy()
    d = displacement(geom, (W, H), (W, H))
    px, py = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    warped = remap(pixels, px + d[..., 0], py + d[..., 1]).astype(np.float32)
    m = blend_mask(geom, (W, H))[..., None]
    out = warped * m + pixels.astype(np.float32) * (1.0 - m)
    limit = 65535 if pixels.dtype == np.uint16 else 255
    return np.clip(out, 0, limit).astype(pixels.dtype)


def geometry_field(geom: Geometry, size: tuple[int, int], working: int = 768) -> Field:
    """The op's backward displacement with the blend mask folded in, as a Field."""
    w, h = working_shape(size, working)
    if geom.is_identity:
        return Field(np.zeros((h, w, 2), np.float32), tuple(size))
    d = displacement(geom, size, (w, h))
    m = blend_mask(geom, size, scale=w / size[0])
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    d *= m[..., None]
    d[np.abs(d) < 1e-3] = 0.0
    return Field(d.astype(np.float32), tuple(size))
