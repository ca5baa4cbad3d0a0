"""Dense backward displacement fields and the remap that applies them.

A :class:`Field` stores, for an image of size (W, H), the displacement ``d`` such that
output pixel x samples the input at ``x + d(x)``. It is kept at a working resolution
(a downscaled "image" of the displacement, pixel-centre aligned like ``cv2.resize``)
and upsampled only where it is non-zero, so a 24 MP photo costs what its edited region
costs.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Displacements below this (pixels) count as "nothing moved".
STILL = 1e-3


def moving(v: np.ndarray, still: float = STILL) -> np.ndarray:
    """Which displacement vectors (last axis x, y) move by more than ``still`` in either
    component (two plain compares are several times faster than a reduction over the
    last axis)."""
    return (np.abs(v[..., 0]) > still) | (np.abs(v[..., 1]) > still)
#: Kernel of the final full-resolution remap of clean edits (:meth:`Field.apply`):
#: Lanczos (8x8). Interpolating (exact at whole-pixel positions), so the edit's border
#: stays seamless; ``benchmarks/bench_render.py`` measures the fine texture it keeps
#: (bilinear loses a third of it, bicubic a tenth on the demo's transfer).
RENDER_INTERPOLATION = cv2.INTER_LANCZOS4
#: :meth:`Field.apply` resamples in tiles this many pixels square.
TILE = 512


@dataclass
class Field:
    """Backward displacement ``d`` (h, w, 2) float32 for an image of ``size`` (W, H)."""

    d: np.ndarray
    size: tuple[int, int]

    @classmethod
    def zeros(cls, size: tuple[int, int], working: int = 512) -> "Field":
        w, h = _working_shape(size, working)
        return cls(np.zeros((h, w, 2), np.float32), tuple(size))

    @property
    def shape(self) -> tuple[int, int]:
        return self.d.shape[1], self.d.shape[0]

    @property
    def unit(self) -> np.ndarray:
        """Image pixels per working cell along (x, y)."""
        return np.array([self.size[0] / self.d.shape[1], self.size[1] / self.d.shape[0]])

    def magnitude(self) -> np.ndarray:
        return np.hypot(self.d[..., 0], self.d[..., 1])

    def is_zero(self) -> bool:
        return not bool((np.abs(self.d) > STILL).any())

    def scaled(self, k: float) -> "Field":
        return Field((self.d * np.float32(k)).astype(np.float32), self.size)

    def resampled(self, working: tuple[int, int]) -> "Field":
        """Same field at another working resolution (w, h)."""
        if working == self.shape:
            return self
        return Field(cv2.resize(self.d, working, interpolation=cv2.INTER_LINEAR), self.size)

    def for_size(self, size: tuple[int, int]) -> "Field":
        """The field for the same content at another image size (vectors rescaled)."""
        k = np.array([size[0] / self.size[0], size[1] / self.size[1]], np.float32)
        return Field(self.d * k, tuple(size))

    def sample(self, pts: np.ndarray) -> np.ndarray:
        """Displacement at image points (N, 2), bilinear."""
        pts = np.asarray(pts, np.float64)
        g = (pts + 0.5) / self.unit - 0.5
        gx = np.clip(g[:, 0], 0, self.d.shape[1] - 1)
        gy = np.clip(g[:, 1], 0, self.d.shape[0] - 1)
        x0 = np.clip(np.floor(gx).astype(int), 0, self.d.shape[1] - 2 if self.d.shape[1] > 1 else 0)
        y0 = np.clip(np.floor(gy).astype(int), 0, self.d.shape[0] - 2 if self.d.shape[0] > 1 else 0)
        x1 = np.minimum(x0 + 1, self.d.shape[1] - 1)
        y1 = np.minimum(y0 + 1, self.d.shape[0] - 1)
        fx = (gx - x0)[:, None]
        fy = (gy - y0)[:, None]
        d = self.d
        return ((d[y0, x0] * (1 - fx) + d[y0, x1] * fx) * (1 - fy)
                + (d[y1, x0] * (1 - fx) + d[y1, x1] * fx) * fy)

    def then(self, other: "Field") -> "Field":
        """The field of applying ``self`` first, then ``other`` (same size and grid).

        out(x) = self_img(x + o(x)) = in(x + o(x) + s(x + o(x))).
        """
        other = other.resampled(self.shape) if other.shape != self.shape else other
        # Where ``other`` is still, the composition is ``self`` itself: only the cells
        # where it moves are resampled (an op is local; the whole grid costs 10 ms).
        out = self.d.astype(np.float32, copy=True)
        cells = other._live_cells(0.0)
        if cells is None:
            return Field(out, self.size)
        x0, y0, x1, y1 = cells
        o = other.d[y0:y1, x0:x1]
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        u = self.unit.astype(np.float32)
        s_at = cv2.remap(self.d, gx + o[..., 0] / u[0], gy + o[..., 1] / u[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        out[y0:y1, x0:x1] = o + s_at
        return Field(out, self.size)

    def inverted(self, iterations: int = 20) -> "Field":
        """Approximate inverse by fixed-point iteration: e(x) = -d(x + e(x))."""
        h, w = self.d.shape[:2]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        u = self.unit.astype(np.float32)
        e = -self.d.copy()
        for _ in range(iterations):
            at = cv2.remap(self.d, gx + e[..., 0] / u[0], gy + e[..., 1] / u[1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
            e = -at
        return Field(e.astype(np.float32), self.size)

    def forward_points(self, pts: np.ndarray, iterations: int = 10) -> np.ndarray:
        """Where points of the input image land in the output: solve y + d(y) = x."""
        pts = np.asarray(pts, np.float64)
        y = pts.copy()
        for _ in range(iterations):
            y = pts - self.sample(y)
        return y

    def _live_cells(self, still: float = STILL) -> tuple[int, int, int, int] | None:
        """Working-cell box (x0, y0, x1, y1), end exclusive, of the cells moving by more
        than ``still``; None when none does."""
        live = moving(self.d, still)
        rows, cols = np.flatnonzero(live.any(axis=1)), np.flatnonzero(live.any(axis=0))
        if not len(rows):
            return None
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

    def bbox(self, pad: int = 2) -> tuple[int, int, int, int] | None:
        """Image-pixel box (x0, y0, x1, y1) holding every non-zero displacement."""
        cells = self._live_cells()
        if cells is None:
            return None
        cx0, cy0, cx1, cy1 = cells
        u = self.unit
        x0 = int(max(0, np.floor((cx0 - 1) * u[0]) - pad))
        y0 = int(max(0, np.floor((cy0 - 1) * u[1]) - pad))
        x1 = int(min(self.size[0], np.ceil((cx1 + 1) * u[0]) + pad))
        y1 = int(min(self.size[1], np.ceil((cy1 + 1) * u[1]) + pad))
        return x0, y0, x1, y1

    def dense(self, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Per-pixel displacement (H, W, 2) float32, or just the part inside ``box``."""
        W, H = self.size
        if box is None:
            box = (0, 0, W, H)
        x0, y0, x1, y1 = box
        u = self.unit.astype(np.float32)
        xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) / u[0] - 0.5
        ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) / u[1] - 0.5
        mx, my = np.meshgrid(xs, ys)
        return cv2.remap(self.d, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def apply(self, pixels: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """Warp ``pixels`` (H, W, C; uint8/uint16; any channels) by this field.

        Pixels outside the moving region are copied, so they stay bit-identical. The
        resampling kernel is :data:`RENDER_INTERPOLATION` (Lanczos) unless given: bilinear
        blurs fine texture (pores, freckles) in every moved pixel, a higher-order kernel
        keeps most of it. Results are rounded and clipped to the dtype's range, alpha too.
        """
        interpolation = RENDER_INTERPOLATION if interpolation is None else interpolation
        box = self.bbox()
        out = pixels.copy()
        if box is None:
            return out
        x0, y0, x1, y1 = box
        if (x1 - x0) * (y1 - y0) <= 4 * TILE * TILE:
            self._apply_box(pixels, out, box, interpolation)
            return out
        # Tile by tile, skipping tiles nothing moves in: a face and a body edit far apart
        # on a 24 MP photo leave most of the box between them still.
        live = cv2.dilate(moving(self.d).astype(np.uint8), np.ones((3, 3), np.uint8))
        u = self.unit
        for ty in range(y0, y1, TILE):
            for tx in range(x0, x1, TILE):
                bx1, by1 = min(tx + TILE, x1), min(ty + TILE, y1)
                cx0, cy0 = max(0, int(tx / u[0]) - 1), max(0, int(ty / u[1]) - 1)
                cx1, cy1 = int(np.ceil(bx1 / u[0])) + 1, int(np.ceil(by1 / u[1])) + 1
                if not live[cy0:cy1, cx0:cx1].any():
                    continue
                self._apply_box(pixels, out, (tx, ty, bx1, by1), interpolation)
        return out

    def _apply_box(self, pixels: np.ndarray, out: np.ndarray, box: tuple[int, int, int, int],
                   interpolation: int) -> None:
        x0, y0, x1, y1 = box
        d = self.dense(box)
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        region = remap(pixels, gx + d[..., 0], gy + d[..., 1], interpolation)
        moved = (np.abs(d[..., 0]) > STILL) | (np.abs(d[..., 1]) > STILL)
        sub = out[y0:y1, x0:x1]
        np.copyto(sub, region.reshape(sub.shape), where=moved.reshape(moved.shape + (1,) * (sub.ndim - 2)))


def _working_shape(size: tuple[int, int], working: int) -> tuple[int, int]:
    W, H = size
    k = min(1.0, working / max(W, H))
    return max(2, int(round(W * k))), max(2, int(round(H * k)))


def remap(pixels: np.ndarray, mapx: np.ndarray, mapy: np.ndarray,
          interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``cv2.remap`` for (H, W, C) arrays of any dtype/channel count, keeping the layout.

    Bilinear by default (the paper's procedure relies on it). For uint8/uint16 OpenCV
    rounds and saturates, so the overshoot of a higher-order kernel at hard edges is
    clipped to the valid range instead of wrapping."""
    c = pixels.shape[2]
    src = pixels[..., 0] if c == 1 else pixels
    if c > 4:
        parts = [remap(pixels[..., i:i + 1], mapx, mapy, interpolation) for i in range(c)]
        return np.concatenate(parts, axis=2)
    out = cv2.remap(src, mapx.astype(np.float32), mapy.astype(np.float32), interpolation,
                    borderMode=cv2.BORDER_REPLICATE)
    return out[..., None] if out.ndim == 2 else out


def cells_within(lo: np.ndarray, hi: np.ndarray, size: tuple[int, int], shape: tuple[int, int]):
    """The working cells (grid of ``shape`` (w, h) over an image of ``size``) whose
    centres can lie in the photo box ``lo``..``hi``: their box (x0, y0, x1, y1) in cells
    and their centres in photo pixels (N, 2), or None when there are none."""
    (W, H), (w, h) = size, shape
    ux, uy = W / w, H / h
    x0, y0 = max(0, int(lo[0] / ux)), max(0, int(lo[1] / uy))
    x1, y1 = min(w, int(np.ceil(hi[0] / ux)) + 1), min(h, int(np.ceil(hi[1] / uy)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = np.meshgrid((np.arange(x0, x1) + 0.5) * ux - 0.5, (np.arange(y0, y1) + 0.5) * uy - 0.5)
    return (x0, y0, x1, y1), np.stack([gx.ravel(), gy.ravel()], 1)


def working_shape(size: tuple[int, int], working: int) -> tuple[int, int]:
    """(w, h) of a working grid whose long side is at most ``working``."""
    return _working_shape(size, working)
