"""Body motion as brush strokes on the body's parts: read on the exemplar, placed on
another body.

The measured body motion that the body ops leave (or all of it) is taken apart into a
few round brush strokes (Gaussian pushes): found one at a time where one explains most
of what is left, their pushes then refitted together. Each stroke is anchored on the
parts it lies near (:mod:`.parts`): per part, the side, how far along the bone (``s``)
and where across it relative to the outline (``q``), with its size and push in that
part's own scale (the shoulders' span, the torso's width between its sides, a limb's
width), its push along and across the bone. A stroke at a joint (the end of a shoulder,
where the shoulder line, the upper arm and the torso's side meet) is anchored on all of
them, weighted by how near each bone passes; one on the middle of an upper arm, on that
arm alone; one inside the torso (a pinch at the waist, far from any outline) on the torso
as a whole, by where it lies between its sides and between the shoulders and the hips.

On another body each anchor puts the stroke at the same place of its part, sized by
that part there and turned with its bone; the stroke goes where its anchors, weighted,
put it. A push in at the waist lands at the other person's waist, as wide relative to it,
whether she stands, sits or lies; a push at the shoulder's end follows the shoulder line
and the arm as far as each is near. Kept as strokes, the motion stays round like the
retoucher's brush, and a preset holds a short, readable list.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..warp.field import Field, cells_within, working_shape
from .parts import PART_INDEX, PARTS, TORSO, Skeleton

#: Brush sizes tried (Gaussian sigma, body units).
SIGMAS = (0.05, 0.08, 0.12, 0.18, 0.26)
#: At most this many strokes; one more must explain this share of the motion's energy
#: (weaker ones are mostly texture and clothing re-measured, and land wrongly elsewhere).
MAX_STROKES = 12
STOP_SHARE = 0.1
#: The pursuit runs on a grid of at most this long side (cells): strokes are smooth.
FIT_SIDE = 256
#: A stroke reaches this many sigmas.
REACH = 3.0
#: Limits a preset's strokes must keep (part scales).
MAX_SIZE = 2.0
MAX_PUSH = 1.0
#: A part's scale relative to the whole body may differ between the two bodies by at
#: most this factor: beyond it the outline that sets the scale is not the part's own (an
#: arm held across the torso merges with it in the mask) and the body's scale is kept.
SCALE_FACTOR = 2.0
#: A stroke is carried only onto a part posed about as on the exemplar: its bone within
#: this many degrees of the exemplar's (relative to the body's own up). An elbow's stroke
#: on a raised arm says little about an arm held down; the body ops, which follow the
#: bones by construction, carry the edits they name in any pose.
POSE_LIMIT = 45.0
#: A stroke is anchored on every part whose bone passes within this distance (body
#: units) of the nearest one, weighted by exp(-(extra distance / this)^2): at a joint
#: the parts that meet share it; elsewhere the nearest part holds it alone.
ANCHOR_TAU = 0.05
#: Anchors weighing less than this are dropped.
MIN_WEIGHT = 0.05
#: A stroke inside the torso quadrilateral is anchored on the torso as a whole, fully
#: from this far inside its sides (torso coordinate ``u``) and its shoulder and hip
#: lines (``v``), fading to the bones' anchors over :data:`TORSO_RAMP` nearer them.
TORSO_INSIDE = 0.25
TORSO_RAMP = 0.15


@dataclass(frozen=True)
class PartStroke:
    """A brush stroke's anchor on one part: ``part`` and ``side`` (0: the bone's left
    normal, 1: its right), ``s`` along the bone, ``q`` across (-1 on the bone, 0 on the
    outline, past it in part scales), ``size`` (sigma) and the backward push ``along``
    and ``across`` the bone (towards the side), in part scales; ``scale`` is that part's
    scale in body units where the stroke was read, ``pose`` its bone's angle to the
    body's up (degrees) and ``weight`` this anchor's share of the stroke."""

    part: str
    side: int
    s: float
    q: float
    size: float
    along: float
    across: float
    scale: float = 1.0
    pose: float | None = None
    weight: float = 1.0

    def to_dict(self) -> dict:
        keys = ("s", "q", "size", "along", "across", "scale", "weight") + (("pose",) if self.pose is not None else ())
        return {"part": self.part, "side": self.side, **{k: round(float(getattr(self, k)), 5) for k in keys}}

    @classmethod
    def from_dict(cls, d: dict) -> "PartStroke":
        return cls(str(d["part"]), int(d["side"]), float(d["s"]), float(d["q"]), float(d["size"]),
                   float(d["along"]), float(d["across"]), float(d.get("scale", 1.0)),
                   None if d.get("pose") is None else float(d["pose"]), float(d.get("weight", 1.0)))

    def scaled(self, k: float) -> "PartStroke":
        return replace(self, along=self.along * k, across=self.across * k)


@dataclass(frozen=True)
class BodyStroke:
    """One brush stroke: its anchors on the parts it lies near (weights summing to 1)."""

    anchors: tuple[PartStroke, ...]

    def to_dict(self) -> dict:
        return {"anchors": [a.to_dict() for a in self.anchors]}

    @classmethod
    def from_dict(cls, d: dict) -> "BodyStroke":
        # A single part's stroke (presets of the previous version) is one anchor.
        return cls(tuple(PartStroke.from_dict(a) for a in d["anchors"]) if "anchors" in d
                   else (PartStroke.from_dict(d),))


@dataclass
class BodyMotion:
    """The body motion as strokes on parts; ``seen`` names the parts the exemplar showed."""

    strokes: tuple[BodyStroke, ...] = ()
    seen: tuple[str, ...] = ()

    @classmethod
    def empty(cls) -> "BodyMotion":
        return cls()

    def is_zero(self) -> bool:
        return not any(a.along or a.across for st in self.strokes for a in st.anchors)

    def energy_by_part(self) -> dict[str, float]:
        """Per part with motion: the strokes' push squared times their area (part
        scales), shared among a stroke's anchors by weight."""
        out: dict[str, float] = {}
        for a in (a for st in self.strokes for a in st.anchors):
            e = a.weight * (a.along ** 2 + a.across ** 2) * a.size ** 2
            if e > 0:
                out[a.part] = out.get(a.part, 0.0) + e
        return out

    def scaled(self, k: float) -> "BodyMotion":
        return BodyMotion(tuple(BodyStroke(tuple(a.scaled(k) for a in st.anchors)) for st in self.strokes),
                          self.seen)

    def without(self, parts: tuple[str, ...]) -> "BodyMotion":
        """The strokes' anchors on ``parts`` left out (a stroke with none left goes)."""
        kept = (BodyStroke(tuple(a for a in st.anchors if a.part not in parts)) for st in self.strokes)
        return BodyMotion(tuple(st for st in kept if st.anchors), self.seen)

    def to_dict(self) -> dict:
        return {"seen": list(self.seen), "strokes": [st.to_dict() for st in self.strokes]}

    @classmethod
    def from_dict(cls, d: dict) -> "BodyMotion":
        return cls(tuple(BodyStroke.from_dict(x) for x in d.get("strokes", [])),
                   tuple(str(p) for p in d.get("seen", [])))


# ---------------------------------------------------------------- part frames
def part_scale(sk: Skeleton, i: int, s: float) -> float:
    """Part ``i``'s own scale at ``s`` (photo pixels): the shoulders' span, the torso's
    width between its two sides, or a limb's (or the neck's) width."""
    name = PARTS[i].name
    if name == "shoulders":
        return float(np.hypot(*(sk.b[i] - sk.a[i])))
    if name in ("left side", "right side"):
        j = PART_INDEX["right side" if name == "left side" else "left side"]
        if sk.visible[j]:
            here = sk.a[i] + s * (sk.b[i] - sk.a[i])
            there = sk.a[j] + s * (sk.b[j] - sk.a[j])
            return max(float(np.hypot(*(here - there))), 0.2 * sk.unit)
        return sk.unit
    w = sk._half_width(i, np.array([0, 1]), np.array([s, s])).sum()
    return max(float(w), 0.1 * sk.unit)


def bone_angle(sk: Skeleton, i: int) -> float:
    """Part ``i``'s bone direction against the body's up (towards the head, across the
    shoulder line), signed degrees."""
    t, _, _ = sk.axes()
    up = sk.up()
    return float(np.degrees(np.arctan2(up[0] * t[i][1] - up[1] * t[i][0], up @ t[i])))


def _kept_scale(own: float, a: PartStroke) -> float:
    """A part's scale on the other body (body units), kept within :data:`SCALE_FACTOR`
    of what ``a`` was read with: beyond it the outline that sets it is not the part's."""
    return float(np.clip(own, a.scale / SCALE_FACTOR, a.scale * SCALE_FACTOR))


def _place_anchor(a: PartStroke, sk: Skeleton) -> tuple[np.ndarray, float, np.ndarray] | None:
    """One anchor on ``sk``: the stroke's centre, sigma and backward push (photo pixels)
    by that part; None when the part is not seen there or is posed otherwise."""
    if a.part == TORSO:
        return _place_on_torso(a, sk)
    i = PART_INDEX[a.part]
    if not sk.visible[i]:
        return None
    if a.pose is not None and abs((bone_angle(sk, i) - a.pose + 180.0) % 360.0 - 180.0) > POSE_LIMIT:
        return None
    t, n, _ = sk.axes()
    sign = 1.0 if a.side == 0 else -1.0
    own = part_scale(sk, i, a.s) / sk.unit
    scale = _kept_scale(own, a) * sk.unit
    hw = float(sk._half_width(i, np.array([a.side]), np.array([a.s]))[0])
    r = hw * (1.0 + a.q) if a.q <= 0 else hw + a.q * scale
    centre = sk.a[i] + a.s * (sk.b[i] - sk.a[i]) + sign * n[i] * r
    push = (a.along * t[i] + a.across * sign * n[i]) * scale
    return centre, a.size * scale, push


def _torso_scale(jac: np.ndarray) -> float:
    """The torso map's own length scale at a point: the square root of its area scale."""
    return float(np.sqrt(abs(np.linalg.det(jac))))


def _place_on_torso(a: PartStroke, sk: Skeleton) -> tuple[np.ndarray, float, np.ndarray] | None:
    at = sk.torso_point(a.q, a.s)
    if at is None:
        return None
    centre, jac = at
    own = _torso_scale(jac) / sk.unit
    # A torso seen edge-on or a misplaced hip makes the quadrilateral no measure of size.
    k = _kept_scale(own, a) / max(own, 1e-9)
    push = jac @ np.array([a.across, a.along]) * k
    return centre, a.size * own * k * sk.unit, push


def _on_torso(sk: Skeleton, centre: np.ndarray, sigma: float, push: np.ndarray) -> tuple[PartStroke, float] | None:
    """The stroke anchored on the torso quadrilateral and how much the torso holds it
    (1 well inside, 0 at or past its sides and ends), None outside it."""
    uv = sk.torso_coords(centre)
    if uv is None:
        return None
    u, v = uv
    inside = min(u, 1.0 - u, v, 1.0 - v)
    weight = float(np.clip((inside - (TORSO_INSIDE - TORSO_RAMP)) / TORSO_RAMP, 0.0, 1.0))
    if weight <= 0:
        return None
    _, jac = sk.torso_point(u, v)
    scale = _torso_scale(jac)
    du, dv = np.linalg.solve(jac, push)
    return PartStroke(TORSO, 0, v, u, float(min(sigma / scale, MAX_SIZE)),
                      float(np.clip(dv, -MAX_PUSH, MAX_PUSH)), float(np.clip(du, -MAX_PUSH, MAX_PUSH)),
                      scale / sk.unit, None, 1.0), weight


def _place(st: BodyStroke, sk: Skeleton) -> tuple[np.ndarray, float, np.ndarray] | None:
    """A stroke on ``sk``: where its anchors that place, weighted, put it; None when none
    does."""
    placed = [(a.weight, p) for a in st.anchors if (p := _place_anchor(a, sk)) is not None]
    if not placed:
        return None
    w = [x[0] for x in placed]
    centres, sigmas, pushes = zip(*(p for _, p in placed))
    return (np.average(centres, axis=0, weights=w), float(np.average(sigmas, weights=w)),
            np.average(pushes, axis=0, weights=w))


def _anchor(sk: Skeleton, centre: np.ndarray, sigma: float, push: np.ndarray) -> BodyStroke | None:
    """A stroke found at photo point ``centre``, anchored on the parts it lies near (and
    on the torso as a whole where it lies inside it)."""
    torso = _on_torso(sk, centre, sigma, push)
    if torso is not None and torso[1] >= 1.0:
        return BodyStroke((torso[0],))
    near = sk.near(centre)
    if not near:
        return None if torso is None else BodyStroke((torso[0],))
    t, n, _ = sk.axes()
    nearest = near[0][4]
    weights = [np.exp(-((d - nearest) / (ANCHOR_TAU * sk.unit)) ** 2) for *_, d in near]
    keep = [(x, w) for x, w in zip(near, weights) if w >= MIN_WEIGHT]
    total = sum(w for _, w in keep)
    anchors = []
    for (i, side, s, q, _), w in keep:
        sign = 1.0 if side == 0 else -1.0
        scale = part_scale(sk, i, s)
        if q > 0:                           # coords measure past the outline in body units
            q = q * sk.unit / scale
        anchors.append(PartStroke(PARTS[i].name, side, s, q, float(min(sigma / scale, MAX_SIZE)),
                                  float(np.clip(push @ t[i] / scale, -MAX_PUSH, MAX_PUSH)),
                                  float(np.clip(push @ (sign * n[i]) / scale, -MAX_PUSH, MAX_PUSH)),
                                  scale / sk.unit, bone_angle(sk, i), float(w / total)))
    if torso is not None:
        share = torso[1]
        anchors = [replace(a, weight=a.weight * (1.0 - share)) for a in anchors]
        anchors.append(replace(torso[0], weight=share))
    return BodyStroke(tuple(anchors))


# ---------------------------------------------------------------- reading
def measure_body(sk: Skeleton, d: np.ndarray, trust: np.ndarray, where: np.ndarray,
                 origin: np.ndarray, scale: float) -> BodyMotion:
    """The body motion of a measured field ``d`` (h, w, 2: backward displacements in
    working pixels, ``scale`` working pixels per photo pixel, the working grid starting at
    photo point ``origin``), weighted by ``trust``, only where ``where`` is true."""
    seen = tuple(sk.visible_parts())
    h, w = where.shape
    k = min(1.0, FIT_SIDE / max(h, w))
    wt = (trust * where).astype(np.float32)
    r = (d / scale).astype(np.float32)                       # photo pixels
    if k < 1:
        size = (max(1, int(round(w * k))), max(1, int(round(h * k))))
        wt = cv2.resize(wt, size, interpolation=cv2.INTER_AREA)
        r = cv2.resize(r, size, interpolation=cv2.INTER_AREA)
    cell = scale * k                                         # grid cells per photo pixel
    r0 = r.astype(np.float64)
    e0 = float((wt * (r0 ** 2).sum(axis=2)).sum())
    if e0 <= 1e-6:
        return BodyMotion((), seen)
    gh, gw = wt.shape
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    sig = [max(0.7, s * sk.unit * cell) for s in SIGMAS]
    # Per size, the weighted Gaussian's own energy at each centre (the denominator).
    dens = [cv2.GaussianBlur(wt, (0, 0), s / np.sqrt(2)).astype(np.float64) * np.pi * s * s for s in sig]
    found: list[tuple[float, float, float]] = []            # (x, y, sigma) in cells
    kernels: list[np.ndarray] = []
    res = r0.copy()
    for _ in range(MAX_STROKES):
        best = None
        wr = (wt[..., None] * res).astype(np.float32)
        for s, den in zip(sig, dens):
            num = cv2.GaussianBlur(wr, (0, 0), s).astype(np.float64) * 2 * np.pi * s * s
            score = (num ** 2).sum(axis=2) / np.maximum(den, 1e-9)
            score[den < 0.05 * den.max()] = 0.0
            j = int(np.argmax(score))
            if best is None or score.flat[j] > best[0]:
                y, x = divmod(j, gw)
                best = (float(score.flat[j]), x, y, s, num[y, x] / den[y, x])
        if best[0] < STOP_SHARE * e0:
            break
        _, x, y, s, v = best
        kern = np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * s * s))
        res -= kern[..., None] * v
        found.append((float(x), float(y), s))
        kernels.append(kern.ravel())
    if not found:
        return BodyMotion((), seen)
    # The pushes refitted together (strokes overlap), weighted least squares.
    K = np.stack(kernels, 1)
    W = wt.ravel().astype(np.float64)
    A = K.T @ (K * W[:, None])
    b = K.T @ (r0.reshape(-1, 2) * W[:, None])
    pushes = np.linalg.solve(A + 1e-6 * np.trace(A) * np.eye(len(found)), b)
    strokes = []
    for (x, y, s), v in zip(found, pushes):
        centre = (np.array([x, y]) + 0.5) / cell - 0.5 + origin
        st = _anchor(sk, centre, s / cell, v)
        if st is not None:
            strokes.append(st)
    return BodyMotion(tuple(strokes), seen)


def posed_otherwise(motion: BodyMotion, sk: Skeleton) -> tuple[str, ...]:
    """The parts of the strokes that land nowhere on ``sk`` although it shows a part of
    each (every such part is posed otherwise than on the exemplar), main part first."""
    out: list[str] = []
    for st in motion.strokes:
        if _place(st, sk) is not None or not any(sk.shows(a.part) for a in st.anchors):
            continue
        part = max(st.anchors, key=lambda a: a.weight).part
        if part not in out:
            out.append(part)
    return tuple(out)


# ---------------------------------------------------------------- carrying
def carry(motion: BodyMotion, sk: Skeleton, size: tuple[int, int], working: int,
          keep: np.ndarray | None = None) -> Field:
    """``motion`` placed on the body ``sk`` of an image of ``size``: a Field at the
    working resolution. ``keep`` (h, w) in [0, 1] at that resolution weights it (the
    face's region is left to the face's own transfer)."""
    W, H = size
    w, h = working_shape(size, working)
    field = np.zeros((h, w, 2), np.float32)
    from ..ops.body import band

    placed = [p for p in (_place(st, sk) for st in motion.strokes) if p is not None]
    for centre, sigma, push in placed:
        cells = cells_within(centre - REACH * sigma, centre + REACH * sigma, (W, H), (w, h))
        if cells is None:
            continue
        (x0, y0, x1, y1), pts = cells
        # Like the body ops, kept to the band about the person (the background stays).
        g = np.exp(-((pts - centre) ** 2).sum(axis=1) / (2 * sigma * sigma)) * band(sk, pts)
        field[y0:y1, x0:x1] += (g[:, None] * push).reshape(y1 - y0, x1 - x0, 2).astype(np.float32)
    if keep is not None:
        field *= keep[..., None]
    field[np.abs(field) < 1e-3] = 0
    return Field(field, (W, H))


# ---------------------------------------------------------------- reading aloud
#: A stroke is named when its push is at least this share of the strongest one's.
NAMED_SHARE = 0.25
#: Before this far along an upper arm or a thigh, a stroke is on the shoulder's end or
#: the hip, and named for it.
JOINT_END = 0.15
_LIMBS = {"left upper arm": "upper arm", "right upper arm": "upper arm", "left forearm": "forearm",
          "right forearm": "forearm", "left thigh": "thigh", "right thigh": "thigh",
          "left shin": "lower leg", "right shin": "lower leg", "neck": "neck"}


def _torso_height(s: float) -> str:
    """Which band of the torso a place ``s`` down from the shoulders to the hips is."""
    return "chest" if s < 0.4 else "waist" if s < 0.85 else "hips"


def _reading(sk: Skeleton, centre: np.ndarray, push: np.ndarray, part: str, s: float) -> str | None:
    """What one stroke does, as a retoucher would say it (``push`` backward, photo px)."""
    from ..ops.body import torso_centre

    t, n, _ = sk.axes()
    move = -push                                 # where the content goes
    mid = torso_centre(sk)                       # the torso's middle, as the body ops take it
    if part == TORSO:
        # Towards the torso's middle line at its own height is a slimming.
        uv = sk.torso_coords(centre)
        if uv is None:
            return None
        line = sk.torso_point(0.5, uv[1])[0]
        where = _torso_height(s)
        return f"{where} {'widened' if move @ (centre - line) > 0 else 'slimmed'}"
    if s < JOINT_END and part.endswith("thigh"):
        # The top of a thigh is the hip: its width is the hips'.
        away = (centre - mid) @ t[PART_INDEX["shoulders"]] * t[PART_INDEX["shoulders"]]
        return f"hips {'widened' if move @ away > 0 else 'slimmed'}"
    if s < JOINT_END and part.endswith("upper arm"):
        part = "shoulders"                              # the top of the arm is the shoulder's end
    i = PART_INDEX[part]
    if part in _LIMBS:
        foot = sk.a[i] + np.clip(s, 0.0, 1.0) * (sk.b[i] - sk.a[i])
        out = centre - foot
        return f"{_LIMBS[part]} {'thickened' if move @ out > 0 else 'slimmed'}"
    if part in ("left side", "right side"):
        away = n[i] if n[i] @ ((sk.a[i] + sk.b[i]) / 2 - mid) >= 0 else -n[i]
        where = _torso_height(s)
        return f"{where} {'widened' if move @ away > 0 else 'slimmed'}"
    if part == "shoulders":
        between = (sk.a[i] + sk.b[i]) / 2
        along = float(move @ t[i]) * (1.0 if (centre - between) @ t[i] >= 0 else -1.0)
        up = float(move @ sk.up())
        if abs(along) >= abs(up):
            return f"shoulders {'broadened' if along > 0 else 'narrowed'}"
        return f"shoulders {'raised' if up > 0 else 'lowered'}"
    return None


def describe(motion: BodyMotion, sk: Skeleton) -> tuple[str, ...]:
    """The strokes read back on the body they were found on (``sk``), named by their
    main part and what they do there ("waist slimmed on both sides"), strongest first,
    each place and direction once."""
    placed = [(st, p) for st in motion.strokes if (p := _place(st, sk)) is not None]
    if not placed:
        return ()
    strongest = max(float(np.hypot(*p[2])) for _, p in placed)
    found: dict[str, tuple[float, set[str]]] = {}          # reading -> (push, sides)
    for st, (centre, _, push) in placed:
        size = float(np.hypot(*push))
        if size < NAMED_SHARE * strongest:
            continue
        a = max(st.anchors, key=lambda x: x.weight)
        said = _reading(sk, centre, push, a.part, a.s)
        if said is not None:
            best, where = found.get(said, (0.0, set()))
            side = ("left" if a.q < 0.5 else "right") if a.part == TORSO else a.part.split(" ")[0]
            found[said] = (max(best, size), where | {side})
    # Strongest first; of two opposite readings of one place and axis (the two ends of
    # one push on an arm's edge) the stronger is what the strokes do there.
    out: dict[tuple[str, bool], str] = {}
    for said, (_, where) in sorted(found.items(), key=lambda kv: -kv[1][0]):
        place, verb = said.rsplit(" ", 1)
        key = (place, verb in ("raised", "lowered"))
        if key not in out:
            both = {"left", "right"} <= where and place != "shoulders"     # already both
            out[key] = f"{said} on both sides" if both else said
    return tuple(out.values())
