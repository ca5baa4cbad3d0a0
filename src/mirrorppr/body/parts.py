"""The body as parts, each with its own frame: where a point lies relative to the
skeleton and to the silhouette's edge.

A part is a bone of the pose skeleton (shoulder to elbow, shoulder to hip...). A point
near the body belongs to its nearest part, on one of the bone's two sides, and gets
part coordinates:

- ``s``: how far along the bone (0 at its first joint, 1 at its second);
- ``q``: how far across, relative to the silhouette: -1 on the bone, 0 on the part's
  outline (found in the person mask along the side's normal), and beyond the outline in
  units of the body's scale (so a stroke just outside the waist lands just outside the
  other person's waist, whatever their build).

Vectors are expressed along the bone and across it (towards that side), in body units.
The same coordinates on another person, in another pose, are the same place on the
body: that is how body edits are carried.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import detect as K
from .detect import Body


@dataclass(frozen=True)
class Part:
    name: str
    a: int          # first joint (pose keypoint id)
    b: int          # second joint
    width: float    # largest half-width searched, in body units


#: The parts, by anatomy (MediaPipe's left and right are the person's own).
PARTS: tuple[Part, ...] = (
    Part("neck", -1, K.NOSE, 0.35),              # -1: the shoulders' midpoint
    Part("shoulders", K.R_SHOULDER, K.L_SHOULDER, 0.45),
    Part("left upper arm", K.L_SHOULDER, K.L_ELBOW, 0.35),
    Part("right upper arm", K.R_SHOULDER, K.R_ELBOW, 0.35),
    Part("left forearm", K.L_ELBOW, K.L_WRIST, 0.3),
    Part("right forearm", K.R_ELBOW, K.R_WRIST, 0.3),
    Part("left side", K.L_SHOULDER, K.L_HIP, 0.7),
    Part("right side", K.R_SHOULDER, K.R_HIP, 0.7),
    Part("left thigh", K.L_HIP, K.L_KNEE, 0.45),
    Part("right thigh", K.R_HIP, K.R_KNEE, 0.45),
    Part("left shin", K.L_KNEE, K.L_ANKLE, 0.35),
    Part("right shin", K.R_KNEE, K.R_ANKLE, 0.35),
)
PART_INDEX = {p.name: i for i, p in enumerate(PARTS)}
#: The torso's front as one 2-D part: the quadrilateral of the shoulders and hips, where
#: a point has ``u`` across (0 on the person's left side's bone, 1 on the right's) and
#: ``v`` down (0 on the shoulder line, 1 on the hip line). A retoucher's pinch inside
#: the waist lies between the two sides, far from any bone's outline, and is the same
#: place on another torso by these coordinates whatever the arms do in front of it.
TORSO = "torso"
#: Along-bone samples of each side's outline, and how far past the joints a part reaches.
PROFILE = 24
S_RANGE = (-0.25, 1.25)
Q_RANGE = (-1.0, 1.0)
#: Points farther than this past the outline (body units) belong to no part.
REACH = 0.6


def _joint(body: Body, i: int) -> np.ndarray:
    k = body.keypoints
    return (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2 if i < 0 else k[i]


def _joint_visible(body: Body, i: int) -> bool:
    return body.visible(K.L_SHOULDER, K.R_SHOULDER) if i < 0 else body.visible(i)


@dataclass
class Skeleton:
    """One body's parts: bones, their frames, and each side's outline profile."""

    body: Body
    a: np.ndarray           # (P, 2) first joints
    b: np.ndarray           # (P, 2) second joints
    visible: np.ndarray     # (P,) both joints seen
    outline: np.ndarray     # (P, 2, PROFILE) half-width of each side along the bone (pixels)
    unit: float
    _outside: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, body: Body) -> "Skeleton":
        a = np.array([_joint(body, p.a) for p in PARTS])
        b = np.array([_joint(body, p.b) for p in PARTS])
        vis = np.array([_joint_visible(body, p.a) and _joint_visible(body, p.b) for p in PARTS])
        sk = cls(body, a, b, vis, np.zeros((len(PARTS), 2, PROFILE)), body.unit)
        sk.outline = sk._outlines()
        return sk

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per part: unit direction along the bone, its left normal, and its length."""
        v = self.b - self.a
        length = np.maximum(np.linalg.norm(v, axis=1), 1e-6)
        t = v / length[:, None]
        n = np.stack([-t[:, 1], t[:, 0]], 1)
        return t, n, length

    def _outlines(self) -> np.ndarray:
        """Half-widths: from each point along the bone, out along each side's normal,
        the distance to where the person mask ends (capped at the part's width)."""
        t, n, length = self.axes()
        out = np.zeros((len(PARTS), 2, PROFILE))
        s = np.linspace(0.0, 1.0, PROFILE)
        steps = np.linspace(0.0, 1.0, 64)
        for i, p in enumerate(PARTS):
            base = self.a[i] + np.outer(s, self.b[i] - self.a[i])            # (PROFILE, 2)
            cap = p.width * self.unit
            for j, sign in enumerate((1.0, -1.0)):
                r = steps * cap
                pts = base[:, None, :] + sign * n[i] * r[None, :, None]      # (PROFILE, 64, 2)
                inside = self.body.mask_at(pts.reshape(-1, 2)).reshape(PROFILE, len(r)) > 0.5
                # The first step out of the mask; a side that never leaves it is capped.
                first = np.where(~inside, np.arange(len(r))[None, :], len(r) - 1).min(axis=1)
                hw = r[first]
                hw = np.maximum(hw, 0.04 * self.unit)
                out[i, j] = cv2.GaussianBlur(hw.reshape(1, -1), (1, 5), 0).ravel()
        return out

    def _part_coords(self, i: int, pts: np.ndarray, axes) -> tuple[np.ndarray, ...]:
        """Part ``i``'s coordinates of photo points (N, 2), given the bones' ``axes()``:
        side, s, q, the distance to the bone (pixels) and whether the point belongs
        within the part's reach."""
        t, n, length = axes
        rel = pts - self.a[i]
        along = rel @ t[i] / length[i]
        across = rel @ n[i]
        dist = np.hypot((along - np.clip(along, 0.0, 1.0)) * length[i], across)
        side = np.where(across >= 0, 0, 1)
        hw = self._half_width(i, side, along)
        r = np.abs(across)
        q = np.where(r <= hw, r / hw - 1.0, (r - hw) / self.unit)
        ok = (along >= S_RANGE[0]) & (along <= S_RANGE[1]) & (q <= REACH)
        return side, along, q, dist, ok

    def coords(self, pts: np.ndarray, parts: np.ndarray | None = None):
        """Part coordinates of photo points (N, 2): (part, side, s, q), with part -1 for
        points that belong to none (too far, or only near parts not seen)."""
        pts = np.asarray(pts, np.float64)
        use = np.nonzero(self.visible if parts is None else (self.visible & parts))[0]
        best = np.full(len(pts), np.inf)
        out = np.full((len(pts), 4), np.nan)
        out[:, 0] = -1
        axes = self.axes()
        for i in use:
            side, along, q, dist, ok = self._part_coords(i, pts, axes)
            ok &= dist < best
            best = np.where(ok, dist, best)
            out[ok] = np.stack([np.full(ok.sum(), i), side[ok], along[ok], q[ok]], 1)
        return out

    def near(self, pt: np.ndarray) -> list[tuple[int, int, float, float, float]]:
        """Every seen part within reach of photo point ``pt``: (part, side, s, q,
        distance to its bone in pixels), nearest first."""
        found, axes = [], self.axes()
        p = np.asarray(pt, np.float64)[None]
        for i in np.nonzero(self.visible)[0]:
            side, along, q, dist, ok = self._part_coords(i, p, axes)
            if ok[0]:
                found.append((int(i), int(side[0]), float(along[0]), float(q[0]), float(dist[0])))
        return sorted(found, key=lambda x: x[4])

    def _half_width(self, i: int, side: np.ndarray, along: np.ndarray) -> np.ndarray:
        f = np.clip(along, 0.0, 1.0) * (PROFILE - 1)
        k0 = np.floor(f).astype(int)
        k1 = np.minimum(k0 + 1, PROFILE - 1)
        w = f - k0
        prof = self.outline[i]
        return prof[side, k0] * (1 - w) + prof[side, k1] * w

    def up(self) -> np.ndarray:
        """The body's own up: across the shoulder line, towards the head."""
        k = self.body.keypoints
        mid = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
        _, n, _ = self.axes()
        i = PART_INDEX["shoulders"]
        return n[i] if float(n[i] @ (k[K.NOSE] - mid)) >= 0 else -n[i]

    def frame(self, part: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per point: the unit vectors along the bone and across it towards its side."""
        t, n, _ = self.axes()
        part = part.astype(int)
        sign = np.where(side.astype(int) == 0, 1.0, -1.0)[:, None]
        return t[part], n[part] * sign

    def outside_distance(self, pts: np.ndarray) -> np.ndarray:
        """How far photo points (N, 2) lie outside the person's silhouette (photo
        pixels; 0 on the person)."""
        if self._outside is None:
            m = (self.body.mask <= 0.5).astype(np.uint8)
            self._outside = cv2.distanceTransform(m, cv2.DIST_L2, 5).astype(np.float32)
        return self.body.sample(self._outside, pts) / self.body.mask_scale

    def torso_corners(self) -> np.ndarray | None:
        """The torso quadrilateral (left shoulder, right shoulder, left hip, right hip),
        None unless both sides are seen."""
        i, j = PART_INDEX["left side"], PART_INDEX["right side"]
        if not (self.visible[i] and self.visible[j]):
            return None
        return np.array([self.a[i], self.a[j], self.b[i], self.b[j]], np.float64)

    def torso_point(self, u: float, v: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The photo point at torso coordinates (u, v) and the map's Jacobian there
        (2x2: columns d/du, d/dv), None when the torso is not seen."""
        c = self.torso_corners()
        if c is None:
            return None
        ls, rs, lh, rh = c
        top, bottom = ls + u * (rs - ls), lh + u * (rh - lh)
        jac = np.stack([(1 - v) * (rs - ls) + v * (rh - lh), bottom - top], 1)
        return top + v * (bottom - top), jac

    def torso_coords(self, pt: np.ndarray) -> tuple[float, float] | None:
        """Torso coordinates (u, v) of photo point ``pt`` (inverse of :meth:`torso_point`
        by Newton's method), None when the torso is not seen or is degenerate."""
        u, v = 0.5, 0.5
        for _ in range(8):
            at = self.torso_point(u, v)
            if at is None:
                return None
            p, jac = at
            if abs(np.linalg.det(jac)) < 1e-6:
                return None
            du, dv = np.linalg.solve(jac, np.asarray(pt, np.float64) - p)
            u, v = u + du, v + dv
            if abs(du) + abs(dv) < 1e-7:
                break
        return float(u), float(v)

    def shows(self, part: str) -> bool:
        """Whether this body shows ``part`` (a bone's name, or :data:`TORSO`)."""
        return self.torso_corners() is not None if part == TORSO else bool(self.visible[PART_INDEX[part]])

    def visible_parts(self) -> list[str]:
        return [p.name for p, v in zip(PARTS, self.visible) if v]
