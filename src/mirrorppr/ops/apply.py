"""Turning an operation's geometry into pixels.

Two paths share the same MLS solve:
- :func:`apply_exact`: the paper's procedure (coarse grid, bilinear maps at full size,
  remap, blend with the blurred hull mask, truncation to the integer type) for
  reproducing its data;
- :func:`geometry_field`: the same motion as a :class:`~mirrorppr.warp.Field` with the
  mask folded into the displacement, so several ops compose into one remap that keeps
  16-bit, alpha and untouched pixels exactly.
Both solve the MLS only over the blend region's bounding box: a 24 MP photo costs what
its face costs.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..warp.field import Field, remap, working_shape
from ..warp.mls import mls_similarity
from .base import Geometry

#: The LLW spec's grid step (pixels).
GRID_STEP = 30


def spec_blur(size: tuple[int, int]) -> int:
    """The LLW spec's mask blur kernel: int(0.05 * min(H, W)), made odd."""
    k = int(0.05 * min(size))
    return k + 1 if k % 2 == 0 else k


def _odd(k: float) -> int:
    k = max(1, int(round(k)))
    return k + 1 if k % 2 == 0 else k


def _kernel(geom: Geometry, size: tuple[int, int]) -> float:
    return float(geom.blur if geom.blur is not None else spec_blur(size))


def region_box(geom: Geometry, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) outside which the blurred mask is exactly zero."""
    pts = np.vstack([np.asarray(r, float) for r in geom.regions])
    pad = _kernel(geom, size) / 2 + 2
    W, H = size
    x0 = int(max(0, np.floor(pts[:, 0].min() - pad)))
    y0 = int(max(0, np.floor(pts[:, 1].min() - pad)))
    x1 = int(min(W, np.ceil(pts[:, 0].max() + pad) + 1))
    y1 = int(min(H, np.ceil(pts[:, 1].max() + pad) + 1))
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def blend_mask(geom: Geometry, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Blurred union of the region hulls, float32 in [0, 1], at ``size`` * ``scale``."""
    W, H = size
    w, h = max(1, int(round(W * scale))), max(1, int(round(H * scale)))
    m = np.zeros((h, w), np.float32)
    for poly in geom.regions:
        hull = cv2.convexHull(np.round(np.asarray(poly) * scale).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 1.0)
    k = _odd(_kernel(geom, size) * scale)
    return cv2.GaussianBlur(m, (k, k), 0) if k > 1 else m


def _controls(geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([geom.targets, geom.anchors]), np.vstack([geom.moving, geom.anchors])


def _grid_step(geom: Geometry) -> float:
    """Non-spec ops: a grid fine enough for the feature size (small faces)."""
    pts = np.vstack([geom.moving, geom.anchors])
    span = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1.0))
    return float(np.clip(span / 24, 2.0, GRID_STEP))


def _node_coords(geom: Geometry, size: tuple[int, int], x: np.ndarray, y: np.ndarray):
    """Where pixel coordinates ``x`` and ``y`` fall among the solve's grid nodes
    (fractional node indices, each axis on its own), the node spacing, and whether the
    spec's upsampling ramp applies."""
    W, H = size
    ramp = geom.spec_grid and geom.spec_ramp
    if geom.spec_grid:
        gw, gh = W // GRID_STEP + 1, H // GRID_STEP + 1
        gxs, gys = W / (gw - 1), H / (gh - 1)                # node spacing
        if ramp:   # cv2.resize's source coordinate for each pixel
            fx = np.clip((x + 0.5) * gw / W - 0.5, 0, gw - 1)
            fy = np.clip((y + 0.5) * gh / H - 0.5, 0, gh - 1)
        else:      # where the pixel really lies among the nodes
            fx, fy = np.clip(x / gxs, 0, gw - 1), np.clip(y / gys, 0, gh - 1)
    else:
        gxs = gys = _grid_step(geom)
        fx = np.clip(x, 0, W) / gxs
        fy = np.clip(y, 0, H) / gys
    return fx, fy, gxs, gys, ramp


def _node_field(geom: Geometry, fx, fy, gxs: float, gys: float):
    """The MLS displacement on the nodes around ``fx``/``fy``: (field, first x node,
    first y node)."""
    ix0, ix1 = int(np.floor(fx.min())), int(np.floor(fx.max())) + 2
    iy0, iy1 = int(np.floor(fy.min())), int(np.floor(fy.max())) + 2
    nx, ny = np.arange(ix0, ix1) * gxs, np.arange(iy0, iy1) * gys
    gx, gy = np.meshgrid(nx, ny)
    v = np.stack([gx.ravel(), gy.ravel()], 1)
    dst, src = _controls(geom)
    g = (mls_similarity(v, dst, src) - v).reshape(len(ny), len(nx), 2).astype(np.float32)
    return g, ix0, iy0


def displacement_at(geom: Geometry, size: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Unmasked backward displacement (N, 2) at image points ``pts`` (N, 2).

    Spec-grid ops reproduce the paper's upsampling: ``cv2.resize`` of the absolute map
    from the grid ``linspace(0, W, W // 30 + 1)`` (pixel-centre alignment on nodes that
    span [0, W]), which shifts content inside the mask slightly depending on position.
    Other ops evaluate the MLS on a face-scaled grid, nodes where they lie.
    """
    x, y = pts[:, 0], pts[:, 1]
    fx, fy, gxs, gys, ramp = _node_coords(geom, size, x, y)
    g, ix0, iy0 = _node_field(geom, fx, fy, gxs, gys)
    d = _bilinear(g, fx - ix0, fy - iy0)
    if ramp:  # the absolute map interpolates node positions, not the pixel's own
        d[:, 0] += fx * gxs - x
        d[:, 1] += fy * gys - y
    return d


def _bilinear(g: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    h, w = g.shape[:2]
    x0 = np.clip(np.floor(fx).astype(int), 0, w - 1)
    y0 = np.clip(np.floor(fy).astype(int), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[:, None], (fy - y0)[:, None]
    return ((g[y0, x0] * (1 - ax) + g[y0, x1] * ax) * (1 - ay)
            + (g[y1, x0] * (1 - ax) + g[y1, x1] * ax) * ay).astype(np.float64)


def _axis_nodes(f: np.ndarray, n: int):
    """Bracketing node indices and weight of fractional node indices ``f`` (as
    :func:`_bilinear` clamps them)."""
    k0 = np.clip(np.floor(f).astype(int), 0, n - 1)
    return k0, np.minimum(k0 + 1, n - 1), f - k0


def displacement(geom: Geometry, size: tuple[int, int], work: tuple[int, int],
                 box: tuple[int, int, int, int]) -> np.ndarray:
    """:func:`displacement_at` for the working cells whose centres fall in ``box``:
    an array (cells_y, cells_x, 2). The cells form a grid, so the bilinear lookup
    gathers node rows and columns once per axis instead of four nodes per cell."""
    W, H = size
    w, h = work
    ux, uy = W / w, H / h
    cx0, cy0 = int(box[0] / ux), int(box[1] / uy)
    cx1, cy1 = int(np.ceil(box[2] / ux)), int(np.ceil(box[3] / uy))
    X = (np.arange(cx0, cx1) + 0.5) * ux - 0.5
    Y = (np.arange(cy0, cy1) + 0.5) * uy - 0.5
    fx, fy, gxs, gys, ramp = _node_coords(geom, size, X, Y)
    g, ix0, iy0 = _node_field(geom, fx, fy, gxs, gys)
    x0, x1, ax = _axis_nodes(fx - ix0, g.shape[1])
    y0, y1, ay = _axis_nodes(fy - iy0, g.shape[0])
    ax, ay = ax[None, :, None], ay[:, None, None]
    # The same sums as _bilinear, row by row: along x on the node rows, then along y.
    r0, r1 = g[y0], g[y1]
    d = (r0[:, x0] * (1 - ax) + r0[:, x1] * ax) * (1 - ay) + (r1[:, x0] * (1 - ax) + r1[:, x1] * ax) * ay
    if ramp:
        d[..., 0] += (fx * gxs - X)[None, :]
        d[..., 1] += (fy * gys - Y)[:, None]
    return d.astype(np.float32)


def translated(geom: Geometry, dx: float, dy: float) -> Geometry:
    """The same geometry shifted by (dx, dy) pixels."""
    o = np.array([dx, dy], np.float64)
    return replace(geom, moving=geom.moving + o, targets=geom.targets + o, anchors=geom.anchors + o,
                   regions=tuple(np.asarray(r, np.float64) + o for r in geom.regions))


def apply_exact(pixels: np.ndarray, geom: Geometry,
                canvas: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The paper's pixel procedure for one op: warp, blend with the blurred hull mask,
    truncate to the integer type (as the paper's uint8 cast).

    ``canvas`` (x, y, w, h) is the picture the procedure ran on, in this image's pixels,
    when that was not the whole photo (a square crop pasted back; it may reach past the
    borders): its size sets the grid, the resampling ramp and the mask blur."""
    H, W = pixels.shape[:2]
    cx, cy, cw, ch = canvas if canvas is not None else (0, 0, W, H)
    g = geom if (cx, cy) == (0, 0) else translated(geom, -cx, -cy)
    box = region_box(g, (cw, ch))
    if geom.is_identity or box is None:
        return pixels.copy()
    # The op's box in canvas coordinates, clipped to what the image holds.
    x0, y0 = max(box[0], -cx), max(box[1], -cy)
    x1, y1 = min(box[2], W - cx), min(box[3], H - cy)
    if x1 <= x0 or y1 <= y0:
        return pixels.copy()
    d = displacement(g, (cw, ch), (cw, ch), (x0, y0, x1, y1))
    px, py = np.meshgrid(np.arange(x0 + cx, x1 + cx, dtype=np.float32),
                         np.arange(y0 + cy, y1 + cy, dtype=np.float32))
    warped = remap(pixels, px + d[..., 0], py + d[..., 1]).astype(np.float32)
    # The mask over the op's whole box in the canvas, blurred as over the whole canvas
    # (reflected at its borders), then cut to what the image holds.
    m, _ = mask_in_box(g, (cw, ch), box, 1 << 30, border=cv2.BORDER_REFLECT_101)
    m = m[y0 - box[1]:y1 - box[1], x0 - box[0]:x1 - box[0], None]
    ix0, iy0, ix1, iy1 = x0 + cx, y0 + cy, x1 + cx, y1 + cy
    out = pixels.copy()
    blend = warped * m + pixels[iy0:iy1, ix0:ix1].astype(np.float32) * (1.0 - m)
    limit = 65535 if pixels.dtype == np.uint16 else 255
    out[iy0:iy1, ix0:ix1] = np.clip(blend, 0, limit).astype(pixels.dtype)
    return out


def geometry_field(geom: Geometry, size: tuple[int, int], working: int = 1024,
                   spec: bool = False) -> Field:
    """The op's backward displacement with the blend mask folded in, as a Field.

    Unless ``spec``, LLW ops are solved on a face-scaled grid without the spec's
    upsampling shift: that shift is an artifact of the paper's procedure (several pixels
    on small photos, where its 30 px grid also blurs the op away), not part of the edit."""
    if geom.spec_grid and not spec:
        geom = replace(geom, spec_grid=False)   # a clean warp on a face-scaled grid
    w, h = working_shape(size, working)
    field = np.zeros((h, w, 2), np.float32)
    box = region_box(geom, size)
    if geom.is_identity or box is None:
        return Field(field, tuple(size))
    ux, uy = size[0] / w, size[1] / h
    cx0, cy0 = int(box[0] / ux), int(box[1] / uy)
    d = displacement(geom, size, (w, h), box)
    m = _mask_cells(geom, size, (w, h), box)
    d *= m[..., None]
    d[np.abs(d) < 1e-3] = 0.0
    field[cy0:cy0 + d.shape[0], cx0:cx0 + d.shape[1]] = d[: h - cy0, : w - cx0]
    return Field(field, tuple(size))


def _mask_cells(geom: Geometry, size, work, box) -> np.ndarray:
    """The blend mask averaged onto the working cells inside ``box``."""
    W, H = size
    w, h = work
    ux, uy = W / w, H / h
    cx0, cy0 = int(box[0] / ux), int(box[1] / uy)
    cx1, cy1 = int(np.ceil(box[2] / ux)), int(np.ceil(box[3] / uy))
    # Rasterise at (up to) full resolution inside the box, then area-average to cells.
    px0, py0 = int(cx0 * ux), int(cy0 * uy)
    px1, py1 = min(W, int(np.ceil(cx1 * ux))), min(H, int(np.ceil(cy1 * uy)))
    m, _ = mask_in_box(geom, size, (px0, py0, px1, py1), 1024)
    return cv2.resize(m, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_AREA)


def mask_in_box(geom: Geometry, size: tuple[int, int], box, max_side: int,
                border: int = cv2.BORDER_CONSTANT) -> tuple[np.ndarray, float]:
    """The blend mask rasterised over a pixel box at scale k (at most ``max_side`` px
    across), zero outside the hulls' blur; returns (mask, k). ``border``: how the blur
    sees past the box (only matters where the box was cut by the picture's edge)."""
    x0, y0, x1, y1 = box
    k = min(1.0, max_side / max(x1 - x0, y1 - y0, 1))
    m = np.zeros((max(1, int(round((y1 - y0) * k))), max(1, int(round((x1 - x0) * k)))), np.float32)
    for poly in geom.regions:
        hull = cv2.convexHull(np.round((np.asarray(poly) - [x0, y0]) * k).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 1.0)
    kk = _odd(_kernel(geom, size) * k)
    if kk > 1:
        m = cv2.GaussianBlur(m, (kk, kk), 0, borderType=border)
    return m, k
