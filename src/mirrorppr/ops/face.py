"""This project's professional face operations (the paper publishes none).

Each op moves a few landmark groups in the face's own frame (x across the eyes, y down
the face, unit = inter-ocular distance), holds the neighbouring features with anchors, and
limits the change to a region around what moved, so strength 100 reads like a
retoucher's liquify and 0 changes nothing. Magnitudes are fractions of the inter-ocular
distance at |strength| 100.
"""
from __future__ import annotations

import numpy as np

from ..landmarks import topology as T
from .base import Geometry, Op, register

#: Blend blur as a fraction of the inter-ocular distance (face-relative, so small faces
#: in large photos get the same look as large ones).
BLUR = 0.30


class Frame:
    """Face frame helpers for one set of landmarks."""

    def __init__(self, P: np.ndarray) -> None:
        self.P = P
        self.o, self.ex, self.ey, self.s = T.face_frame(P)
        self.centre = P[T.FACE_OVAL].mean(0)

    def ids(self, ids) -> np.ndarray:
        return self.P[list(ids)]

    def vec(self, x: float, y: float) -> np.ndarray:
        """A displacement of (x, y) inter-ocular units in the face frame, as pixels."""
        return (self.ex * x + self.ey * y) * self.s

    def side(self, pts: np.ndarray) -> np.ndarray:
        """+1 for points on the image-right half of the face, -1 on the left."""
        return np.sign((pts - self.o) @ self.ex + 1e-9)

    def outward(self, pts: np.ndarray, k: float) -> np.ndarray:
        """Points pushed away from the face centre by ``k`` inter-ocular units."""
        v = pts - self.centre
        n = np.linalg.norm(v, axis=1, keepdims=True) + 1e-9
        return pts + v / n * (k * self.s)

    def ring(self, k: float, ids=T.FACE_OVAL) -> np.ndarray:
        return self.outward(self.ids(ids), k)


def _geometry(fr: Frame, moving: np.ndarray, targets: np.ndarray, anchors: list[np.ndarray],
              regions: list[np.ndarray]) -> Geometry:
    return Geometry(moving=moving, targets=targets, anchors=np.vstack(anchors),
                    regions=tuple(regions), blur=BLUR * fr.s)


INNER = [1, 4, 168, 6, 13, 14, 0, 17, 468, 473, 33, 133, 362, 263, 61, 291, 2]


def _inner(fr: Frame) -> np.ndarray:
    return fr.ids(INNER)


# ---------------------------------------------------------------- face shape

def _contour_shift(P, f, ids, weights, mag_x, mag_y=0.0, far=0.9, region_ids=None):
    """Move contour points horizontally toward/away from the centre line (and along y)."""
    fr = Frame(P)
    pts = fr.ids(ids)
    side = fr.side(pts)[:, None]
    w = np.asarray(weights, float)[:, None]
    shift = (side * fr.ex * (mag_x * f) + fr.ey * (mag_y * f)) * fr.s * w
    region = fr.ring(0.45, region_ids or ids)
    inner = fr.outward(fr.ids(region_ids or ids), -0.45)
    return _geometry(fr, pts, pts + shift, [_inner(fr), fr.ring(far)], _halves(fr, region, inner))


def _halves(fr: Frame, region: np.ndarray, inner: np.ndarray) -> list[np.ndarray]:
    allp = np.vstack([region, inner])
    side = fr.side(allp)
    return [allp[side < 0], allp[side > 0]]


def face_width(P, f):
    ids = T.RIGHT_CHEEKBONE[1:] + T.RIGHT_CHEEK[1:] + T.RIGHT_JAW + T.LEFT_CHEEKBONE[1:] + T.LEFT_CHEEK[1:] + T.LEFT_JAW
    w = [0.5, 0.8, 1.0, 1.0, 0.9, 0.7, 0.45, 0.25] * 2
    return _contour_shift(P, f, ids, w, 0.16)


def jawline(P, f):
    ids = T.RIGHT_CHEEK[2:] + T.RIGHT_JAW + T.LEFT_CHEEK[2:] + T.LEFT_JAW
    w = [0.7, 1.0, 0.9, 0.6, 0.3] * 2
    return _contour_shift(P, f, ids, w, 0.16, mag_y=-0.05)


def temples(P, f):
    ids = T.RIGHT_TEMPLE + T.LEFT_TEMPLE
    return _contour_shift(P, f, ids, [0.6, 1.0, 0.8] * 2, 0.12)


def cheekbones(P, f):
    ids = T.RIGHT_CHEEKBONE + T.LEFT_CHEEKBONE
    return _contour_shift(P, f, ids, [0.6, 1.0, 0.7] * 2, 0.12)


def chin_length(P, f):
    fr = Frame(P)
    pts = fr.ids(T.CHIN_ARC)
    w = np.array([0.35, 0.7, 1.0, 0.7, 0.35])[:, None]
    t = pts + fr.vec(0, 0.22 * f) * w
    jaw = fr.ids([172, 397, 136, 365])
    region = np.vstack([fr.outward(pts, 0.5), fr.ids([61, 291, 17, 18, 200]), fr.outward(jaw, 0.3)])
    return _geometry(fr, pts, t, [_inner(fr), jaw, fr.ring(0.9)], [region])


def forehead_height(P, f):
    fr = Frame(P)
    pts = fr.ids(T.FOREHEAD_ARC)
    w = np.array([0.4, 0.75, 0.95, 1.0, 0.95, 0.75, 0.4])[:, None]
    t = pts + fr.vec(0, -0.25 * f) * w
    brows = fr.ids(T.RIGHT_BROW_UPPER + T.LEFT_BROW_UPPER)
    region = np.vstack([fr.outward(pts, 0.5), brows, fr.ids([54, 284])])
    return _geometry(fr, pts, t, [_inner(fr), brows, fr.ids([21, 251, 162, 389]), fr.ring(1.0)], [region])


# ---------------------------------------------------------------- brows

def _brows(P, f, move):
    fr = Frame(P)
    ids = T.RIGHT_BROW + T.LEFT_BROW
    pts = fr.ids(ids)
    t = move(fr, pts, ids)
    eyes = fr.ids(T.RIGHT_EYE_RING + T.LEFT_EYE_RING)
    regions = [fr.outward(fr.ids(T.RIGHT_BROW), 0.22), fr.outward(fr.ids(T.LEFT_BROW), 0.22)]
    regions = [np.vstack([r, fr.outward(fr.ids(b), -0.05)]) for r, b in zip(regions, (T.RIGHT_BROW, T.LEFT_BROW))]
    return _geometry(fr, pts, t, [eyes, fr.ids([10, 168, 6, 1]), fr.ring(0.6, T.FOREHEAD_ARC)], regions)


def brow_height(P, f):
    return _brows(P, f, lambda fr, pts, ids: pts + fr.vec(0, -0.10 * f))


def brow_distance(P, f):
    return _brows(P, f, lambda fr, pts, ids: pts + fr.side(pts)[:, None] * fr.vec(0.10 * f, 0))


def brow_size(P, f):
    def move(fr, pts, ids):
        out = pts.copy()
        for i, group in ((0, T.RIGHT_BROW), (1, T.LEFT_BROW)):
            sel = [ids.index(g) for g in group]
            c = pts[sel].mean(0)
            out[sel] = c + (pts[sel] - c) * (1 + 0.18 * f)
        return out
    return _brows(P, f, move)


def brow_thickness(P, f):
    def move(fr, pts, ids):
        out = pts.copy()
        for upper in (T.RIGHT_BROW_UPPER, T.LEFT_BROW_UPPER):
            for i in upper:
                out[ids.index(i)] += fr.vec(0, -0.05 * f)
        for lower in (T.RIGHT_BROW_LOWER, T.LEFT_BROW_LOWER):
            for i in lower:
                out[ids.index(i)] += fr.vec(0, 0.025 * f)
        return out
    return _brows(P, f, move)


# ---------------------------------------------------------------- eyes

def _eyes(P, f, move):
    fr = Frame(P)
    rings = (T.RIGHT_EYE_RING + T.RIGHT_IRIS, T.LEFT_EYE_RING + T.LEFT_IRIS)
    moving, targets = [], []
    for k, ring in enumerate(rings):
        pts = fr.ids(ring)
        c = fr.ids(T.RIGHT_IRIS[:1] if k == 0 else T.LEFT_IRIS[:1])[0]
        sgn = -1.0 if k == 0 else 1.0   # image-left eye, image-right eye
        moving.append(pts)
        targets.append(move(fr, pts, c, sgn))
    eyes = np.vstack(moving)
    ring_out = []
    for pts in moving:
        c = pts.mean(0)
        ring_out.append(c + (pts - c) * 1.9)
    regions = ring_out
    anchors = [fr.ids([168, 6, 1, 10, 152, 234, 454]), fr.ids(T.RIGHT_BROW_UPPER + T.LEFT_BROW_UPPER),
               np.vstack([c + (p - c) * 2.6 for p in moving for c in [p.mean(0)]])]
    return _geometry(fr, eyes, np.vstack(targets), anchors, regions)


def _rel(fr, pts, c):
    d = pts - c
    return d @ fr.ex, d @ fr.ey


def eye_height(P, f):
    def move(fr, pts, c, sgn):
        x, y = _rel(fr, pts, c)
        return c + np.outer(x, fr.ex) + np.outer(y * (1 + 0.22 * f), fr.ey)
    return _eyes(P, f, move)


def eye_width(P, f):
    def move(fr, pts, c, sgn):
        x, y = _rel(fr, pts, c)
        return c + np.outer(x * (1 + 0.15 * f), fr.ex) + np.outer(y, fr.ey)
    return _eyes(P, f, move)


def eye_position(P, f):
    return _eyes(P, f, lambda fr, pts, c, sgn: pts + fr.vec(0, -0.06 * f))


def eye_tilt(P, f):
    def move(fr, pts, c, sgn):
        a = np.deg2rad(8.0 * f) * sgn * -1.0  # outer corners up for f > 0
        x, y = _rel(fr, pts, c)
        ca, sa = np.cos(a), np.sin(a)
        return c + np.outer(x * ca - y * sa, fr.ex) + np.outer(x * sa + y * ca, fr.ey)
    return _eyes(P, f, move)


# ---------------------------------------------------------------- nose

NOSE = [1, 2, 4, 5, 45, 275, 48, 278, 64, 294, 98, 327, 97, 326, 49, 279, 102, 331, 129, 358,
        218, 438, 94, 19, 115, 344, 220, 440, 240, 460]
NOSE_ROOT = [168, 6, 122, 351, 193, 417, 196, 419, 197]


def _nose_anchors(fr):
    return [fr.ids([33, 133, 362, 263, 468, 473, 13, 14, 0, 61, 291, 205, 425, 116, 345, 10, 152]),
            fr.ring(0.9)]


def nose_size(P, f):
    fr = Frame(P)
    pts = fr.ids(NOSE)
    c = fr.ids([4])[0] * 0.5 + fr.ids([195])[0] * 0.5
    t = c + (pts - c) * (1 + 0.15 * f)
    region = c + (pts - c) * 1.6
    return _geometry(fr, pts, t, _nose_anchors(fr) + [fr.ids([168])], [region])


def nose_tip(P, f):
    fr = Frame(P)
    ids = [1, 4, 5, 19, 94, 2, 44, 274, 45, 275]
    pts = fr.ids(ids)
    w = np.array([1, 0.9, 0.5, 0.8, 0.7, 0.6, 0.3, 0.3, 0.4, 0.4])[:, None]
    t = pts + fr.vec(0, -0.08 * f) * w
    region = fr.ids(NOSE)
    c = region.mean(0)
    return _geometry(fr, pts, t, _nose_anchors(fr) + [fr.ids([168, 6, 197, 98, 327])],
                     [c + (region - c) * 1.4])


def nose_root(P, f):
    fr = Frame(P)
    pts = fr.ids(NOSE_ROOT)
    o = fr.ids([168])[0]
    u = fr.ids([2])[0] - o
    u = u / (np.linalg.norm(u) + 1e-9)
    foot = o + np.outer((pts - o) @ u, u)
    t = foot + (pts - foot) * (1 + 0.30 * f)
    c = pts.mean(0)
    return _geometry(fr, pts, t, _nose_anchors(fr) + [fr.ids([1, 4, 98, 327, 2])],
                     [c + (pts - c) * 2.2])


# ---------------------------------------------------------------- mouth

def _mouth(P, f, move, extra_anchor=None):
    fr = Frame(P)
    pts = fr.ids(T.LIPS)
    c = pts.mean(0)
    t = move(fr, pts, c)
    anchors = [fr.ids([2, 98, 327, 1, 152, 377, 148, 234, 454, 93, 323, 168]), fr.ring(0.9)]
    region = c + (pts - c) * 1.7
    return _geometry(fr, pts, t, anchors, [region])


def mouth_width(P, f):
    def move(fr, pts, c):
        x, y = _rel(fr, pts, c)
        return c + np.outer(x * (1 + 0.15 * f), fr.ex) + np.outer(y, fr.ey)
    return _mouth(P, f, move)


def mouth_height(P, f):
    def move(fr, pts, c):
        x, y = _rel(fr, pts, c)
        return c + np.outer(x, fr.ex) + np.outer(y * (1 + 0.22 * f), fr.ey)
    return _mouth(P, f, move)


def smile(P, f):
    def move(fr, pts, c):
        x, y = _rel(fr, pts, c)
        half = max(np.abs(x).max(), 1e-6)
        w = (np.abs(x) / half) ** 2       # corners move most, centre not at all
        return pts + np.outer(w * -0.07 * f * fr.s, fr.ey) + np.outer(np.sign(x) * w * 0.03 * f * fr.s, fr.ex)
    return _mouth(P, f, move)


_PRO = [
    ("face_width", ("Widen face", "Slim face"), "face-shape", face_width,
     T.RIGHT_CHEEK + T.RIGHT_JAW + T.LEFT_CHEEK + T.LEFT_JAW),
    ("jawline", ("Square jaw", "V-line jaw"), "face-shape", jawline, T.RIGHT_JAW + T.LEFT_JAW),
    ("chin_length", ("Lengthen chin", "Shorten chin"), "face-shape", chin_length, T.CHIN_ARC),
    ("temples", ("Fill temples", "Depress temples"), "face-shape", temples, T.RIGHT_TEMPLE + T.LEFT_TEMPLE),
    ("cheekbones", ("Widen cheekbones", "Narrow cheekbones"), "face-shape", cheekbones,
     T.RIGHT_CHEEKBONE + T.LEFT_CHEEKBONE),
    ("forehead_height", ("Raise hairline", "Lower hairline"), "face-shape", forehead_height, T.FOREHEAD_ARC),
    ("brow_height", ("Raise eyebrows", "Lower eyebrows"), "brows", brow_height, T.RIGHT_BROW + T.LEFT_BROW),
    ("brow_distance", ("Increase eyebrow distance", "Decrease eyebrow distance"), "brows", brow_distance,
     T.RIGHT_BROW + T.LEFT_BROW),
    ("brow_size", ("Enlarge eyebrows", "Shrink eyebrows"), "brows", brow_size, T.RIGHT_BROW + T.LEFT_BROW),
    ("brow_thickness", ("Thicken eyebrows", "Thin eyebrows"), "brows", brow_thickness,
     T.RIGHT_BROW + T.LEFT_BROW),
    ("eye_height", ("Increase eye height", "Decrease eye height"), "eyes", eye_height,
     T.RIGHT_EYE_RING + T.LEFT_EYE_RING),
    ("eye_width", ("Increase eye width", "Decrease eye width"), "eyes", eye_width,
     T.RIGHT_EYE_RING + T.LEFT_EYE_RING),
    ("eye_position", ("Raise eyes", "Lower eyes"), "eyes", eye_position, T.RIGHT_EYE_RING + T.LEFT_EYE_RING),
    ("eye_tilt", ("Lift outer eye corners", "Lower outer eye corners"), "eyes", eye_tilt,
     T.RIGHT_EYE_RING + T.LEFT_EYE_RING),
    ("nose_size", ("Enlarge nose", "Shrink nose"), "nose", nose_size, NOSE),
    ("nose_tip", ("Lift nose tip", "Lower nose tip"), "nose", nose_tip, [1, 4, 5, 19, 94, 2]),
    ("nose_root", ("Widen nose root", "Narrow nose root"), "nose", nose_root, NOSE_ROOT),
    ("mouth_width", ("Widen mouth", "Narrow mouth"), "mouth", mouth_width, T.LIPS),
    ("mouth_height", ("Increase mouth height", "Decrease mouth height"), "mouth", mouth_height, T.LIPS),
    ("smile", ("Lift mouth corners", "Lower mouth corners"), "mouth", smile, T.LIPS),
]

for _name, _labels, _group, _fn, _moves in _PRO:
    register(Op(name=_name, labels=_labels, group=_group, family="pro", max_pos=1.0, max_neg=1.0,
                build=_fn, moves=tuple(dict.fromkeys(_moves)),
                description="mirrorppr professional operation"))
