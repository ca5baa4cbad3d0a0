"""Body operations: the retoucher's shoulder, waist, arm, leg, neck and head edits.

A body op is a few liquify-style strokes placed on a body's own skeleton and outline
(:class:`mirrorppr.body.parts.Skeleton`): a push at each shoulder's end, inward at the
waist's narrowest band, outward on both edges of the upper arms... Each stroke's
centre, radius and direction are in body units (the shoulder width) and follow the
bones, so the same op lands on the same place of any person in any pose. The motion is
kept to a band around the person (it dies out within :data:`BAND_OUT` body units past
the silhouette), so the background next to the body barely moves.

Strength 100 is a strong retoucher's edit: the stroke's peak moves the outline by
``max`` body units. The ops share the one registry with the face ops (family ``body``);
they act on a skeleton, not on face landmarks, and :mod:`mirrorppr.body.edit` applies
them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..body import detect as K
from ..body.parts import PART_INDEX, Skeleton
from ..errors import ConfigError
from .base import Geometry, Op, register

#: Past the silhouette, the motion falls off over this many body units (Gaussian).
BAND_OUT = 0.08


@dataclass(frozen=True)
class BodyStroke:
    """One stroke at fraction 1, photo pixels: ``push`` moves content by ``vector``,
    ``bloat`` swells it about ``centre`` by ``amount`` (a share of the distance). With a
    ``path`` (k, 2) the push is a brush dragged along it: it falls off with the distance
    to the path, so a limb's whole edge moves alike, as a retoucher slims a leg."""

    centre: np.ndarray
    radius: float
    vector: np.ndarray
    amount: float = 0.0
    kind: str = "push"
    path: np.ndarray | None = None

    def distance(self, pts: np.ndarray) -> np.ndarray:
        """Photo points' distance to the stroke (its centre, or its path)."""
        if self.path is None:
            rel = pts - self.centre
            return np.hypot(rel[:, 0], rel[:, 1])
        out = np.full(len(pts), np.inf)
        for a, b in zip(self.path[:-1], self.path[1:]):
            ab = b - a
            t = np.clip(((pts - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
            near = a + t[:, None] * ab[None, :]
            out = np.minimum(out, np.hypot(pts[:, 0] - near[:, 0], pts[:, 1] - near[:, 1]))
        return out

    def reach(self) -> tuple[np.ndarray, np.ndarray]:
        """The corners of the box the stroke moves."""
        pts = self.centre[None, :] if self.path is None else self.path
        return pts.min(0) - self.radius, pts.max(0) + self.radius


#: skeleton -> its strokes at fraction 1 (empty when the parts it needs are not seen).
StrokeFn = Callable[[Skeleton], list[BodyStroke]]


def _falloff(r: np.ndarray) -> np.ndarray:
    w = np.clip(1.0 - r * r, 0.0, None)
    return w * w


def displacement(strokes: list[BodyStroke], pts: np.ndarray) -> np.ndarray:
    """Content displacement (N, 2) of photo points under ``strokes`` (summed)."""
    out = np.zeros((len(pts), 2))
    for st in strokes:
        w = _falloff(st.distance(pts) / st.radius)
        if st.kind == "bloat":
            out += (pts - st.centre) * (st.amount * w)[:, None]
        else:
            out += w[:, None] * st.vector[None, :]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(*v)), 1e-9)


def torso_centre(sk: Skeleton) -> np.ndarray:
    """The torso's middle (half a body unit below the shoulders when no hip is seen)."""
    k = sk.body.keypoints
    mid_sh = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
    if sk.body.visible(K.L_HIP, K.R_HIP):
        return (mid_sh + (k[K.L_HIP] + k[K.R_HIP]) / 2) / 2
    return mid_sh + np.array([0.0, 0.5 * sk.unit])


def _outer(sk: Skeleton, part: str, centre: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """The side of ``part`` facing away from ``centre`` (default: the torso's) and its
    unit normal."""
    i = PART_INDEX[part]
    t, n, _ = sk.axes()
    c = torso_centre(sk) if centre is None else centre
    mid = (sk.a[i] + sk.b[i]) / 2
    j = 0 if float(n[i] @ (mid - c)) >= 0 else 1
    return j, n[i] * (1.0 if j == 0 else -1.0)


def _edge(sk: Skeleton, part: str, side: int, s: float) -> np.ndarray:
    """The silhouette's edge on ``side`` of ``part`` at ``s`` along its bone."""
    i = PART_INDEX[part]
    t, n, _ = sk.axes()
    hw = float(sk._half_width(i, np.array([side]), np.array([s]))[0])
    return sk.a[i] + s * (sk.b[i] - sk.a[i]) + n[i] * (1.0 if side == 0 else -1.0) * hw


def _seen(sk: Skeleton, *parts: str) -> bool:
    return all(sk.visible[PART_INDEX[p]] for p in parts)


def _up(sk: Skeleton) -> np.ndarray:
    """Towards the head, across the shoulder line."""
    return sk.up()


# ------------------------------------------------------------------ the strokes
def _shoulder_width(sk: Skeleton) -> list[BodyStroke]:
    if not _seen(sk, "shoulders"):
        return []
    k, u = sk.body.keypoints, sk.unit
    mid = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
    # Along the shoulder line the push is a share of the shoulders' width as the photo
    # shows it: a body turned away foreshortens the edit as it does the shoulders.
    span = float(np.hypot(*(k[K.L_SHOULDER] - k[K.R_SHOULDER])))
    out = []
    for j in (K.L_SHOULDER, K.R_SHOULDER):
        away = _unit(k[j] - mid)
        out.append(BodyStroke(k[j] + 0.08 * u * away, 0.42 * u, away * span))
    return out


def _shoulder_line(sk: Skeleton) -> list[BodyStroke]:
    if not _seen(sk, "shoulders"):
        return []
    k, u, up = sk.body.keypoints, sk.unit, _up(sk)
    mid = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
    return [BodyStroke(k[j] + 0.05 * u * _unit(k[j] - mid) + 0.08 * u * up, 0.32 * u, up * u)
            for j in (K.L_SHOULDER, K.R_SHOULDER)]


def _neck_length(sk: Skeleton) -> list[BodyStroke]:
    """Lengthening the neck lowers the shoulder line beside it (the trapezius)."""
    if not _seen(sk, "shoulders"):
        return []
    k, u, up = sk.body.keypoints, sk.unit, _up(sk)
    mid = (k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2
    return [BodyStroke(mid + 0.3 * (k[j] - mid) + 0.1 * u * up, 0.25 * u, -up * u)
            for j in (K.L_SHOULDER, K.R_SHOULDER)]


def _neck_width(sk: Skeleton) -> list[BodyStroke]:
    if not _seen(sk, "neck"):
        return []
    i = PART_INDEX["neck"]
    t, n, _ = sk.axes()
    out = []
    for side, sign in ((0, 1.0), (1, -1.0)):
        p = _edge(sk, "neck", side, 0.3)
        out.append(BodyStroke(p, 0.16 * sk.unit, n[i] * sign * sk.unit))
    return out


def _waist_s(sk: Skeleton) -> float:
    """Along the torso sides, where the silhouette is narrowest (the waist)."""
    s = np.linspace(0.45, 0.9, 19)
    width = np.zeros_like(s)
    for part in ("left side", "right side"):
        j, _ = _outer(sk, part)
        width += sk._half_width(PART_INDEX[part], np.full(len(s), j), s)
    return float(s[int(np.argmin(width))])


def _torso_band(sk: Skeleton, s: float, radius: float) -> list[BodyStroke]:
    if not _seen(sk, "left side", "right side"):
        return []
    out = []
    for part in ("left side", "right side"):
        j, nout = _outer(sk, part)
        out.append(BodyStroke(_edge(sk, part, j, s), radius * sk.unit, nout * sk.unit))   # > 0 widens
    return out


def _waist(sk: Skeleton) -> list[BodyStroke]:
    return _torso_band(sk, _waist_s(sk), 0.3) if _seen(sk, "left side", "right side") else []


def _hips(sk: Skeleton) -> list[BodyStroke]:
    return _torso_band(sk, 1.0, 0.3)


#: Where along its bone a dragged limb edge is pushed (shares of the bone).
DRAG_SPAN = np.linspace(0.15, 0.85, 5)


def _limb(sk: Skeleton, parts: tuple[str, ...], radius: float, drag: bool) -> list[BodyStroke]:
    """Both edges of each seen limb part pushed outward: at its middle (a dab), or with
    ``drag`` along :data:`DRAG_SPAN` of it, as a retoucher slims a whole leg."""
    t, n, _ = sk.axes()
    out = []
    for part in parts:
        if not _seen(sk, part):
            continue
        i = PART_INDEX[part]
        for side, sign in ((0, 1.0), (1, -1.0)):
            push = n[i] * sign * sk.unit
            if drag:
                path = np.array([_edge(sk, part, side, float(s)) for s in DRAG_SPAN])
                out.append(BodyStroke(path[len(path) // 2], radius * sk.unit, push, path=path))
            else:
                out.append(BodyStroke(_edge(sk, part, side, 0.5), radius * sk.unit, push))
    return out


def _upper_arms(sk: Skeleton) -> list[BodyStroke]:
    return _limb(sk, ("left upper arm", "right upper arm"), 0.28, drag=False)


def _forearms(sk: Skeleton) -> list[BodyStroke]:
    return _limb(sk, ("left forearm", "right forearm"), 0.24, drag=False)


def _legs(sk: Skeleton) -> list[BodyStroke]:
    return _limb(sk, ("left thigh", "right thigh", "left shin", "right shin"), 0.3, drag=True)


def _leg_length(sk: Skeleton) -> list[BodyStroke]:
    """The lower legs stretched down their own shins (feet pushed away from the knees)."""
    t, _, length = sk.axes()
    out = []
    for part in ("left shin", "right shin"):
        if _seen(sk, part):
            i = PART_INDEX[part]
            out.append(BodyStroke(sk.b[i], 0.9 * float(length[i]), t[i] * sk.unit))
    return out


def _head_size(sk: Skeleton) -> list[BodyStroke]:
    k = sk.body.keypoints
    if not sk.body.visible(K.NOSE, K.L_EAR, K.R_EAR):
        return []
    r = float(np.hypot(*(k[K.L_EAR] - k[K.R_EAR])))
    return [BodyStroke(k[K.NOSE].astype(float), 1.6 * r, np.zeros(2), amount=1.0, kind="bloat")]


def _not_on_face(points: np.ndarray, f: float) -> Geometry:
    raise ConfigError("a body op acts on the body's skeleton, not on face landmarks")


#: op name -> (labels, max body units at 100, strokes, what it does).
_BODY_OPS: tuple[tuple[str, tuple[str, str], float, StrokeFn, str], ...] = (
    ("shoulder_width", ("Broaden shoulders", "Narrow shoulders"), 0.05, _shoulder_width,
     "shoulder ends pushed out along the shoulder line"),
    ("shoulder_line", ("Square shoulders", "Slope shoulders"), 0.06, _shoulder_line,
     "shoulder tops raised (square) or lowered (sloped)"),
    ("neck_length", ("Lengthen neck", "Shorten neck"), 0.04, _neck_length,
     "the shoulder line beside the neck lowered"),
    ("neck_width", ("Widen neck", "Slim neck"), 0.03, _neck_width, "both sides of the neck"),
    ("waist", ("Widen waist", "Slim waist"), 0.05, _waist, "the torso's narrowest band"),
    ("hips", ("Widen hips", "Slim hips"), 0.05, _hips, "the torso's sides at the hips"),
    ("arm_thickness", ("Thicken arms", "Slim arms"), 0.04, _upper_arms, "both edges of the upper arms"),
    ("forearm_thickness", ("Thicken forearms", "Slim forearms"), 0.03, _forearms,
     "both edges of the forearms"),
    ("leg_thickness", ("Thicken legs", "Slim legs"), 0.04, _legs,
     "both edges of thighs and shins, along their length"),
    ("leg_length", ("Lengthen legs", "Shorten legs"), 0.08, _leg_length, "the feet pushed down the shins"),
    ("head_size", ("Enlarge head", "Shrink head"), 0.08, _head_size,
     "the head swollen or shrunk about the nose"),
)

#: The body ops' stroke builders, by name.
STROKES: dict[str, StrokeFn] = {}
for _name, _labels, _max, _fn, _desc in _BODY_OPS:
    register(Op(_name, _labels, "body", "body", _max, _max, _not_on_face, description=_desc))
    STROKES[_name] = _fn


def strokes(name: str, sk: Skeleton, fraction: float) -> list[BodyStroke]:
    """The strokes of body op ``name`` on ``sk`` at a signed fraction (body units)."""
    out = []
    for st in STROKES[name](sk):
        out.append(replace(st, vector=st.vector * fraction, amount=st.amount * fraction))
    return out


def band(sk: Skeleton, pts: np.ndarray) -> np.ndarray:
    """How much of a stroke's motion a photo point takes: 1 on the person, falling off
    past the silhouette over :data:`BAND_OUT` body units."""
    d = sk.outside_distance(pts)
    return np.exp(-(d / (BAND_OUT * sk.unit)) ** 2)
