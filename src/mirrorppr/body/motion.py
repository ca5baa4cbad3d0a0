"""Body motion in part coordinates: measured on the exemplar, carried to another body.

The exemplar's measured motion (backward displacements near its body, away from its
face) is expressed per part and side on a grid of part coordinates (``s`` along the bone,
``q`` across relative to the outline; :mod:`.parts`), its vectors along and across the
bone in body units. On the query, every point near its body looks up its own part
coordinates in that grid and turns the vector back with its own part's frame and scale:
the exemplar's waist edit lands on the query's waist whether she stands, sits or lies.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from ..warp.field import Field, cells_within, working_shape
from .parts import PARTS, Q_RANGE, S_RANGE, Skeleton

S_STEP = 0.02
Q_STEP = 0.02
NS = int(round((S_RANGE[1] - S_RANGE[0]) / S_STEP)) + 1
NQ = int(round((Q_RANGE[1] - Q_RANGE[0]) / Q_STEP)) + 1
#: Gaps in the grid are filled from evidence within this many cells.
FILL = 3.0
#: The band about the outline that is read (q: -1 on the bone, 0 on the outline, past it
#: in body units).
Q_BAND = (-0.35, 0.15)
#: The carried field is smoothed over this share of the body unit (no seams between parts).
SMOOTH = 0.02


@dataclass
class BodyMotion:
    """Per part and side, a (NS, NQ, 2) grid of (along, across) backward displacements in
    body units; ``seen`` marks the parts the exemplar showed."""

    grids: np.ndarray           # (P, 2, NS, NQ, 2) float32
    seen: np.ndarray            # (P,) bool

    @classmethod
    def empty(cls) -> "BodyMotion":
        return cls(np.zeros((len(PARTS), 2, NS, NQ, 2), np.float32), np.zeros(len(PARTS), bool))

    def is_zero(self) -> bool:
        return not bool(np.abs(self.grids).max(initial=0) > 0)

    def energy_by_part(self) -> dict[str, float]:
        e = (self.grids.astype(np.float64) ** 2).sum(axis=(1, 2, 3, 4))
        return {p.name: float(v) for p, v in zip(PARTS, e) if v > 0}

    def scaled(self, k: float) -> "BodyMotion":
        return BodyMotion((self.grids * np.float32(k)).astype(np.float32), self.seen.copy())

    def minus(self, other: "BodyMotion") -> "BodyMotion":
        return BodyMotion((self.grids - other.grids).astype(np.float32), self.seen.copy())

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        parts = {}
        for i, p in enumerate(PARTS):
            g = self.grids[i]
            if np.abs(g).max() > 0:
                parts[p.name] = base64.b64encode(g.astype("<f2").tobytes()).decode("ascii")
        return {"grid": {"s": list(S_RANGE), "q": list(Q_RANGE), "step": [S_STEP, Q_STEP]},
                "seen": [p.name for p, v in zip(PARTS, self.seen) if v], "parts": parts}

    @classmethod
    def from_dict(cls, d: dict) -> "BodyMotion":
        out = cls.empty()
        names = {p.name: i for i, p in enumerate(PARTS)}
        for name in d.get("seen", []):
            out.seen[names[name]] = True
        for name, data in d.get("parts", {}).items():
            g = np.frombuffer(base64.b64decode(data), dtype="<f2").astype(np.float32)
            out.grids[names[name]] = g.reshape(2, NS, NQ, 2)
        return out


def _cells(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (c[:, 2] - S_RANGE[0]) / S_STEP, (c[:, 3] - Q_RANGE[0]) / Q_STEP


def measure_body(sk: Skeleton, d: np.ndarray, trust: np.ndarray, where: np.ndarray,
                 origin: np.ndarray, scale: float) -> BodyMotion:
    """The body motion of a measured field ``d`` (h, w, 2: backward displacements in
    working pixels, ``scale`` working pixels per photo pixel, the working grid starting at
    photo point ``origin``), trusted as ``trust`` says, only where ``where`` is true."""
    # Every other cell: the grid is far coarser than the measurement.
    sub = np.zeros_like(where)
    sub[::2, ::2] = where[::2, ::2]
    ys, xs = np.nonzero(sub)
    out = BodyMotion.empty()
    out.seen = sk.visible.copy()
    if not len(ys):
        return out
    pts = np.stack([xs, ys], 1) / scale + origin
    c = sk.coords(pts)
    ok = c[:, 0] >= 0
    c, ys, xs = c[ok], ys[ok], xs[ok]
    if not len(c):
        return out
    # Only the band about the outline, where a liquify stroke moves the silhouette:
    # motion deep inside a part is mostly clothing and texture re-measured.
    keep = (c[:, 3] >= Q_BAND[0]) & (c[:, 3] <= Q_BAND[1])
    c, ys, xs = c[keep], ys[keep], xs[keep]
    if not len(c):
        return out
    vec = d[ys, xs] / scale                       # photo pixels
    t, n = sk.frame(c[:, 0], c[:, 1])
    local = np.stack([(vec * t).sum(1), (vec * n).sum(1)], 1) / sk.unit
    w = trust[ys, xs].astype(np.float64)
    fs, fq = _cells(c)
    num = np.zeros((len(PARTS), 2, NS, NQ, 2))
    den = np.zeros((len(PARTS), 2, NS, NQ))
    part, side = c[:, 0].astype(int), c[:, 1].astype(int)
    i0, j0 = np.floor(fs).astype(int), np.floor(fq).astype(int)
    for di, dj in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wi = (1 - np.abs(fs - (i0 + di))) * (1 - np.abs(fq - (j0 + dj))) * w
        ii, jj = np.clip(i0 + di, 0, NS - 1), np.clip(j0 + dj, 0, NQ - 1)
        np.add.at(num, (part, side, ii, jj), local * wi[:, None])
        np.add.at(den, (part, side, ii, jj), wi)
    for p in range(len(PARTS)):
        for sd in range(2):
            if den[p, sd].max() <= 0:
                continue
            nb = cv2.GaussianBlur(num[p, sd].astype(np.float32), (0, 0), FILL)
            db = cv2.GaussianBlur(den[p, sd].astype(np.float32), (0, 0), FILL)
            exact = den[p, sd] > 1e-6
            g = np.where(exact[..., None], num[p, sd] / np.maximum(den[p, sd], 1e-6)[..., None],
                         nb / np.maximum(db, 1e-6)[..., None])
            g[db < 0.05 * db.max()] = 0.0
            out.grids[p, sd] = g.astype(np.float32)
    return out


def carry(motion: BodyMotion, sk: Skeleton, size: tuple[int, int], working: int,
          keep: np.ndarray | None = None) -> Field:
    """``motion`` placed on the body ``sk`` of an image of ``size``: a Field at the
    working resolution. ``keep`` (h, w) in [0, 1] at that resolution weights it (the
    face's region is left to the face's own transfer)."""
    W, H = size
    w, h = working_shape(size, working)
    field = np.zeros((h, w, 2), np.float32)
    if motion.is_zero():
        return Field(field, (W, H))
    moving = np.abs(motion.grids).max(axis=(1, 2, 3, 4)) > 0
    # Only cells near the parts that carry motion.
    a, b = sk.a[moving & sk.visible], sk.b[moving & sk.visible]
    if not len(a):
        return Field(field, (W, H))
    pad = 1.5 * sk.unit
    cells = cells_within(np.minimum(a.min(0), b.min(0)) - pad, np.maximum(a.max(0), b.max(0)) + pad,
                         (W, H), (w, h))
    if cells is None:
        return Field(field, (W, H))
    (cx0, cy0, cx1, cy1), pts = cells
    # Each point belongs to its nearest part, moving or not (a point nearest a still
    # part must not borrow a farther part's motion).
    c = sk.coords(pts)
    ok = np.nonzero((c[:, 0] >= 0) & moving[np.maximum(c[:, 0], 0).astype(int)])[0]
    d = np.zeros((len(pts), 2))
    if len(ok):
        cc = c[ok]
        fs, fq = _cells(cc)
        part, side = cc[:, 0].astype(int), cc[:, 1].astype(int)
        i0 = np.clip(np.floor(fs).astype(int), 0, NS - 2)
        j0 = np.clip(np.floor(fq).astype(int), 0, NQ - 2)
        ws = np.clip(fs - i0, 0, 1)[:, None]
        wq = np.clip(fq - j0, 0, 1)[:, None]
        g = motion.grids
        local = ((g[part, side, i0, j0] * (1 - ws) + g[part, side, i0 + 1, j0] * ws) * (1 - wq)
                 + (g[part, side, i0, j0 + 1] * (1 - ws) + g[part, side, i0 + 1, j0 + 1] * ws) * wq)
        t, n = sk.frame(cc[:, 0], cc[:, 1])
        d[ok] = (local[:, :1] * t + local[:, 1:] * n) * sk.unit
    sub = d.reshape(cy1 - cy0, cx1 - cx0, 2).astype(np.float32)
    sigma = max(0.5, SMOOTH * sk.unit * w / W)
    sub = cv2.GaussianBlur(sub, (0, 0), sigma)
    field[cy0:cy1, cx0:cx1] = sub
    if keep is not None:
        field *= keep[..., None]
    field[np.abs(field) < 1e-3] = 0
    return Field(field, (W, H))
