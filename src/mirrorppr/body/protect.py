"""Keeping straight background lines straight next to a reshaped body.

The classic liquify give-away is a door frame, horizon or table edge that bends where a
waist was pulled in. The straight edges near the person are found (Canny, probabilistic
Hough, outside the person mask, within reach of the body), and the body field is
measured along each: its component across the line, less the best straight-line fit
(a line moved or tilted as a whole still looks straight), is the line's bend. A bend
above :data:`BEND_LIMIT` of the photo's long side (about 1 pixel on a 1000-pixel view,
where a kink in a straight edge starts to show) is removed by fading the field out
along that line, and measured again.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..warp.field import Field
from .parts import Skeleton

#: Largest bend kept, as a share of the photo's long side.
BEND_LIMIT = 0.001
#: Edges are looked for at this long side (pixels).
SIDE = 768
#: Lines shorter than this (body units) are texture, not a straight edge.
MIN_LENGTH = 0.25
#: Lines farther than this past the silhouette (body units) are out of the field's reach.
REACH = 0.6


@dataclass(frozen=True)
class Protection:
    """What the protection found: the lines checked, and the worst bend (photo pixels)
    before and after."""

    lines: int
    bend_before: float
    bend_after: float


def straight_edges(rgb: np.ndarray, sk: Skeleton) -> np.ndarray:
    """Straight background edges near the body: (N, 4) segments x0, y0, x1, y1 (photo px)."""
    H, W = rgb.shape[:2]
    k = min(1.0, SIDE / max(H, W))
    small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else rgb
    gray = cv2.cvtColor(np.ascontiguousarray(small[..., :3]), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150)
    min_len = max(12, int(MIN_LENGTH * sk.unit * k))
    found = cv2.HoughLinesP(edges, 1, np.pi / 360, threshold=max(10, min_len // 2),
                            minLineLength=min_len, maxLineGap=max(6, min_len // 8))
    if found is None:
        return np.zeros((0, 4))
    seg = found.reshape(-1, 4).astype(np.float64) / k
    # Keep lines whose points lie off the person (but within the field's reach).
    t = np.linspace(0.0, 1.0, 9)
    pts = seg[:, None, :2] + t[None, :, None] * (seg[:, None, 2:] - seg[:, None, :2])
    dist = sk.outside_distance(pts.reshape(-1, 2)).reshape(len(seg), len(t))
    off = (dist > 0.02 * sk.unit).all(axis=1) & (dist.min(axis=1) < REACH * sk.unit)
    return seg[off]


def bends(field: Field, segments: np.ndarray, samples: int = 32) -> np.ndarray:
    """Each segment's bend under ``field`` (photo pixels)."""
    if not len(segments):
        return np.zeros(0)
    t = np.linspace(0.0, 1.0, samples)
    a, b = segments[:, :2], segments[:, 2:]
    pts = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]
    d = field.sample(pts.reshape(-1, 2)).reshape(len(segments), samples, 2)
    along = (b - a) / np.maximum(np.linalg.norm(b - a, axis=1), 1e-9)[:, None]
    normal = np.stack([-along[:, 1], along[:, 0]], 1)
    across = (d * normal[:, None, :]).sum(axis=2)                    # (N, samples)
    # Less the best line through it: a shifted or tilted line is still straight.
    X = np.stack([np.ones_like(t), t], 1)
    coef, *_ = np.linalg.lstsq(X, across.T, rcond=None)
    return np.abs(across - (X @ coef).T).max(axis=1)


def protect(field: Field, rgb: np.ndarray, sk: Skeleton) -> tuple[Field, Protection]:
    """``field`` with the bend of every straight background edge near the body brought
    under :data:`BEND_LIMIT` (the field faded along the lines that bend too much)."""
    segs = straight_edges(rgb, sk)
    before = bends(field, segs)
    worst = float(before.max(initial=0.0))
    limit = BEND_LIMIT * max(field.size)
    if worst <= limit:
        return field, Protection(len(segs), worst, worst)
    d = field.d.copy()
    u = field.unit
    h, w = d.shape[:2]
    bad = segs[before > limit]
    for sigma_units in (0.04, 0.08, 0.16):
        line = np.zeros((h, w), np.uint8)
        for x0, y0, x1, y1 in bad:
            cv2.line(line, (int(x0 / u[0]), int(y0 / u[1])), (int(x1 / u[0]), int(y1 / u[1])), 1, 2)
        sigma = max(1.0, sigma_units * sk.unit / u[0])
        fade = cv2.GaussianBlur(line.astype(np.float32), (0, 0), sigma)
        fade = np.clip(fade / max(float(fade.max()), 1e-6) * 1.5, 0.0, 1.0)
        d = d * (1.0 - fade)[..., None]
        now = bends(Field(d, field.size), segs)
        bad = segs[now > limit]
        if not len(bad):
            break
    out = Field(d.astype(np.float32), field.size)
    return out, Protection(len(segs), worst, float(bends(out, segs).max(initial=0.0)))
