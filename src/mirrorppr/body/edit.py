"""The body part of an edit: read on the exemplar, checked on it, carried to a query.

Analysis (:func:`analyze_body`): the before photo's body is found (:mod:`.detect`) and
split into parts (:mod:`.parts`); the motion measured over the whole registered pair,
away from the face and near the person, is fitted with the body ops (liquify strokes on
the skeleton, :mod:`mirrorppr.ops.body`); what they leave is kept as brush strokes
anchored on the parts (:mod:`.motion`). Each way of carrying it (the ops, the ops plus what they
leave, the measured motion alone) is rendered on the exemplar's own before photo and
scored against its after photo where the body changed; the simplest about as good as
the best is kept, and nothing when none reproduces the exemplar.

Transfer (:func:`body_field`): the ops and the motion are placed on the query's own
skeleton and outline, so the edit follows the query's pose; the field is kept to a band
around the person and away from straight background edges (:mod:`.protect`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..analyze.calibrate import best_gain
from ..analyze.operation import Candidate
from ..errors import ConfigError
from ..ops.base import get_op
from ..ops.body import band, displacement, strokes
from ..ops.recipe import Recipe, Step
from ..warp.field import Field, cells_within, working_shape
from .detect import find_body
from .motion import BodyMotion, carry, describe, measure_body
from .parts import TORSO, Skeleton

#: What the body part of ``auto`` can do, simplest first.
BODY_CHOICES = ("none", "ops", "ops+motion", "motion")
#: The body field's working grid (long side, cells): body edits are smooth.
WORKING = 512
#: The exemplar check renders the body candidates at this long side (pixels).
CHECK_SIDE = 512
#: Motion is read this far past the silhouette (body units), where a liquify stroke on
#: the outline drags the background.
NEAR = 0.25
#: Fitted ops weaker than this are dropped (strength).
MIN_STRENGTH = 8.0
#: The body ops are chosen one at a time, each while it removes at least this share of
#: the measured motion's energy, at most :data:`MAX_OPS` of them. (A stroke's share,
#: 0.1, left out a second op that real edits have: an arm slimmed beside the shoulders.)
OP_SHARE = 0.03
MAX_OPS = 4
#: A body candidate must reproduce the exemplar's body change by this much (dB)...
MIN_GAIN_DB = 0.15
#: ...and the ops lead only when they alone reproduce it by this much.
MIN_OPS_DB = 1.0
#: As for the face: the simplest within max(this dB, this share of the best).
MARGIN_DB = 0.3
MARGIN_SHARE = 0.1
#: Gains tried on the carried motion (flow reads strokes short).
GAINS = (1.0, 1.25, 1.5)
#: The torso's own edits (waist, hips, its sides' motion) are carried only between bodies
#: turned alike: their shoulder-to-trunk ratios (the shoulders' width foreshortens as the
#: cosine of the turn) within this factor, i.e. less than about 60 degrees apart. A waist
#: seen from the front is the torso's sides; seen from the side, belly and back.
TURN_FACTOR = 2.0
#: The ops and parts that belong to the torso's sides.
TORSO_OPS = ("waist", "hips")
TORSO_PARTS = ("left side", "right side", TORSO)
#: How the torso's strokes are read (:func:`.motion.describe`).
TORSO_READS = ("chest", "waist", "hips")


@dataclass
class BodyEdit:
    """The exemplar's body retouching: ``recipe`` (body ops), ``motion`` (what they
    leave, or all of it when ``choice`` is ``motion``; strokes on parts), the check's
    ``candidates``, its ``choice`` and ``confidence`` (share of the body's change
    reproduced on the exemplar), and the ``parts`` the exemplar showed."""

    recipe: Recipe = field(default_factory=Recipe)
    motion: BodyMotion = field(default_factory=BodyMotion.empty)
    choice: str = "none"
    confidence: float = 0.0
    candidates: tuple[Candidate, ...] = ()
    parts: tuple[str, ...] = ()
    turn: float | None = None        # the exemplar body's shoulder-to-trunk ratio
    #: The motion's strokes read back on the exemplar's body ("waist slimmed on both sides").
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.choice not in BODY_CHOICES:
            raise ConfigError(f"body choice {self.choice!r}: one of {', '.join(BODY_CHOICES)}")

    @property
    def summary(self) -> str:
        if self.choice == "none":
            return "no body retouching carried"
        ops = self.recipe.summary() if len(self.recipe.active()) else ""
        n = len(self.motion.strokes)
        reads = f": {', '.join(self.reads)}" if self.reads else ""
        if self.choice == "motion":
            return f"{n} brush stroke{'s' * (n != 1)}{reads}" + (f" (nearest ops: {ops})" if ops else "")
        return ops + (f" plus the body motion they leave ({n} stroke{'s' * (n != 1)}{reads})"
                      if self.choice == "ops+motion" else "")

    def to_dict(self) -> dict:
        return {"recipe": self.recipe.to_list(), "choice": self.choice,
                "confidence": round(self.confidence, 4), "candidates": [c.to_dict() for c in self.candidates],
                "parts": list(self.parts), "turn": None if self.turn is None else round(self.turn, 4),
                "reads": list(self.reads), "motion": self.motion.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "BodyEdit":
        recipe = Recipe.from_list(d.get("recipe", []))
        if any(get_op(s.op).family != "body" for s in recipe):
            raise ConfigError("body recipe: only body ops belong there")
        return cls(recipe=recipe, motion=BodyMotion.from_dict(d.get("motion", {})),
                   choice=str(d.get("choice", "none")), confidence=float(d.get("confidence", 0.0)),
                   candidates=tuple(Candidate(str(c["name"]), float(c["psnr_db"]), float(c["gain_db"]))
                                    for c in d.get("candidates", [])),
                   parts=tuple(str(p) for p in d.get("parts", [])),
                   turn=None if d.get("turn") is None else float(d["turn"]),
                   reads=tuple(str(r) for r in d.get("reads", [])))

    def for_body(self, sk: Skeleton) -> tuple["BodyEdit", list[str]]:
        """This edit as it applies to the body ``sk``: the torso's part left out (with a
        note) when the two bodies are turned too differently."""
        q = turn_of(sk)
        if self.turn is None or q is None or max(q / self.turn, self.turn / q) <= TURN_FACTOR:
            return self, []
        torso = [s for s in self.recipe.active() if s.op in TORSO_OPS]
        moving = set(self.motion.energy_by_part()) & set(TORSO_PARTS)
        if not torso and not moving:
            return self, []
        kept = Recipe([s for s in self.recipe.steps if s.op not in TORSO_OPS])
        out = replace(self, recipe=kept, motion=self.motion.without(TORSO_PARTS),
                      reads=tuple(r for r in self.reads if not r.startswith(TORSO_READS)))
        return out, ["the query's body is turned too differently from the exemplar's for its waist and "
                     "hips edit: that part is not carried"]


def turn_of(sk: Skeleton) -> float | None:
    """Shoulder width over trunk length (1 facing the camera, small seen from the side);
    None without both shoulders and hips."""
    from . import detect as K

    b = sk.body
    if not b.visible(K.L_SHOULDER, K.R_SHOULDER, K.L_HIP, K.R_HIP):
        return None
    k = b.keypoints
    trunk = float(np.hypot(*((k[K.L_SHOULDER] + k[K.R_SHOULDER]) / 2 - (k[K.L_HIP] + k[K.R_HIP]) / 2)))
    return float(np.hypot(*(k[K.L_SHOULDER] - k[K.R_SHOULDER]))) / max(trunk, 1e-6)


# ---------------------------------------------------------------- fields
def ops_field(recipe: Recipe, sk: Skeleton, size: tuple[int, int], keep: np.ndarray | None = None,
              working: int = WORKING) -> Field:
    """The body ops of ``recipe`` on ``sk``: one backward field (kept in the band around
    the person; ``keep`` in [0, 1] on the working grid weights it)."""
    W, H = size
    w, h = working_shape(size, working)
    d = np.zeros((h, w, 2), np.float32)
    sts = [st for s in recipe.active() if get_op(s.op).family == "body"
           for st in strokes(s.op, sk, get_op(s.op).fraction(s.strength))]
    if not sts:
        return Field(d, (W, H))
    # Only cells within reach of a stroke.
    reach = [st.reach() for st in sts]
    cells = cells_within(np.min([lo for lo, _ in reach], axis=0), np.max([hi for _, hi in reach], axis=0),
                         size, (w, h))
    if cells is None:
        return Field(d, (W, H))
    (x0, y0, x1, y1), pts = cells
    v = displacement(sts, pts) * band(sk, pts)[:, None]
    d[y0:y1, x0:x1] = (-v).reshape(y1 - y0, x1 - x0, 2).astype(np.float32)
    if keep is not None:
        d *= keep[..., None]
    d[np.abs(d) < 1e-3] = 0
    return Field(d, (W, H))


def face_keep(face_points: np.ndarray, size: tuple[int, int], working: int = WORKING) -> np.ndarray:
    """1 away from the face, 0 on it (the face's own transfer owns it), soft between."""
    from ..analyze.normalize import face_region_mask

    W, H = size
    w, h = working_shape(size, working)
    m = face_region_mask(np.asarray(face_points) * (w / W), (h, w)).astype(np.float32)
    return 1.0 - np.clip(cv2.GaussianBlur(m, (0, 0), max(1.0, 0.01 * max(w, h))) * 1.5, 0, 1)


def edit_field(edit: BodyEdit | None, sk: Skeleton, size: tuple[int, int], face_points: np.ndarray,
               strength: float = 1.0, overrides: dict[str, float] | None = None) -> Field:
    """The body edit (with sliders ``overrides``, body ops only) on the body ``sk`` of a
    photo of ``size``."""
    body_over = {k: v for k, v in (overrides or {}).items() if get_op(k).family == "body"}
    edit = edit or BodyEdit()
    keep = face_keep(face_points, size)
    use_ops = edit.choice in ("ops", "ops+motion") or bool(body_over)
    recipe = edit.recipe.scaled(strength, body_over) if use_ops else Recipe([])
    f = ops_field(recipe, sk, size, keep)
    if edit.choice in ("ops+motion", "motion") and not edit.motion.is_zero():
        m = carry(edit.motion.scaled(strength), sk, size, WORKING, keep)
        f = Field(f.d + m.d, f.size) if f.d.shape == m.d.shape else f.then(m)
    return f


# ---------------------------------------------------------------- analysis
@dataclass
class BodyCheck:
    """The exemplar prepared for trying body candidates: its before and after photos,
    where the body changed (``mask``), where a candidate may be scored (``allowed``: the
    valid part of the photo less its face) and doing nothing's score on ``mask``."""

    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    allowed: np.ndarray
    base: float

    def score(self, name: str, out: np.ndarray) -> Candidate:
        """``out`` scored where the body changed and wherever it changes the photo: a
        candidate that moves what the retoucher left alone (a whole arm thickened for one
        push on it) pays for it there, as it will on the query. Each candidate has its own
        region, so only the gain over doing nothing on that region compares; ``psnr_db``
        is doing nothing's PSNR where the body changed plus that gain, so that the gain
        searches, which rank by PSNR, rank by it."""
        from ..analyze.validate import changed_region
        from ..eval.metrics import psnr

        region = self.mask | (changed_region(self.source, out) & self.allowed)
        gain = psnr(self.target, out, region) - psnr(self.target, self.source, region)
        return Candidate(name, self.base + gain, gain)


def analyze_body(src: np.ndarray, tgt: np.ndarray, valid: np.ndarray, face_points: np.ndarray,
                 face_box) -> tuple[BodyEdit | None, list[str], Field | None]:
    """The body part of the exemplar (8-bit RGB before and registered after photos,
    same size), notes, and the carried edit rendered on the exemplar's own body (what of
    its motion the body accounts for); None when no body is found or nothing on it moved
    (and no field unless the edit is carried)."""
    body = find_body(src, face_box)
    if body is None:
        return None, ["no body found in the before photo: only the face is read"], None
    sk = Skeleton.of(body)
    cands, notes = body_candidates(src, tgt, valid, face_points, sk)
    if cands is None:
        return None, notes, None
    chosen = _choose([c for c, _ in cands])
    allc = tuple(c for c, _ in cands)
    recipe, parts = cands[0][1].recipe, cands[0][1].parts
    if chosen is None:
        return BodyEdit(recipe=recipe, choice="none", candidates=allc, parts=parts), \
            ["body motion found but no way of carrying it reproduces the exemplar: the body is left as it is"], None
    edit = next(e for c, e in cands if c is chosen)
    edit.candidates = allc
    edit.confidence = float(np.clip(1.0 - 10 ** (-chosen.gain_db / 10.0), 0.0, 1.0))
    return edit, [], edit_field(edit, sk, (src.shape[1], src.shape[0]), face_points)


def body_candidates(src: np.ndarray, tgt: np.ndarray, valid: np.ndarray, face_points: np.ndarray,
                    sk: Skeleton) -> tuple[list[tuple[Candidate, BodyEdit]] | None, list[str]]:
    """Every way of carrying the exemplar's body edit (its body ``sk``), each with its
    score on the exemplar (None when there is nothing to carry), and notes."""
    from ..analyze.flow import measure_photo
    from ..analyze.normalize import face_region_mask
    from ..analyze.validate import changed_region
    from ..eval.metrics import psnr

    body = sk.body
    size = (src.shape[1], src.shape[0])
    if not sk.visible.any():
        return None, ["only the head shows in the before photo: no body part to read"]
    m = measure_photo(src, tgt)
    h, w = m.d.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs.ravel(), ys.ravel()], 1) / m.scale + m.origin
    near = (sk.outside_distance(pts) < NEAR * sk.unit).reshape(h, w)
    fpts = (face_points - m.origin) * m.scale
    face = cv2.dilate(face_region_mask(fpts, (h, w)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    inside = m.outside == 0
    region = near & ~face & inside
    ch = cv2.dilate((m.changed > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    moving = region & ch & (np.hypot(m.d[..., 0], m.d[..., 1]) / m.scale > 0.3)
    if moving.sum() < 50:
        return None, []
    # The check: each candidate rendered on the exemplar, scored where the body changed.
    k = min(1.0, CHECK_SIDE / max(size))
    small = (max(1, int(round(size[0] * k))), max(1, int(round(size[1] * k))))
    s8 = cv2.resize(src, small, interpolation=cv2.INTER_AREA) if k < 1 else src
    t8 = cv2.resize(tgt, small, interpolation=cv2.INTER_AREA) if k < 1 else tgt
    v8 = cv2.resize(valid.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0 if k < 1 else valid
    sk_small = Skeleton.of(body.scaled(k, small)) if k < 1 else sk
    fmask = face_region_mask(face_points * k, (small[1], small[0]))
    fmask = cv2.dilate(fmask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    gy, gx = np.mgrid[0:small[1], 0:small[0]]
    spts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    near_s = (sk_small.outside_distance(spts) < NEAR * sk_small.unit).reshape(small[1], small[0])
    mask = changed_region(s8, t8) & v8 & ~fmask & near_s
    if mask.sum() < 50:
        return None, []
    check = BodyCheck(s8, t8, mask, v8 & ~fmask, psnr(t8, s8, mask))
    fpk = face_points * k

    def render(edit: BodyEdit, gain: float = 1.0) -> np.ndarray:
        return edit_field(edit, sk_small, small, fpk, strength=gain).apply(s8)

    cands: list[tuple[Candidate, BodyEdit]] = []
    parts = tuple(sk.visible_parts())
    turn = turn_of(sk)
    recipe = _fit_ops(sk, m, region, pts)
    if len(recipe.active()):
        # Flow reads strokes short and the fit weighs the still band around them: the
        # strengths are calibrated on the exemplar, as the face's are.
        gain, scored = best_gain(lambda g: check.score("ops", render(BodyEdit(recipe=recipe, choice="ops"), g)))
        recipe = recipe.scaled(gain)
        cands.append((scored, BodyEdit(recipe=recipe, choice="ops", parts=parts, turn=turn)))
    where = region & ch
    if cands and cands[0][0].gain_db >= MIN_OPS_DB:
        # The ops lead (see _choose): the motion they leave may go with them.
        fitted = _ops_backward(recipe, sk, pts).reshape(h, w, 2) * m.scale
        resid = measure_body(sk, (m.d - fitted).astype(np.float32), m.trust, where, m.origin, m.scale)
        e2 = BodyEdit(recipe=recipe, motion=resid, choice="ops+motion", parts=parts, turn=turn,
                      reads=describe(resid, sk))
        cands.append((check.score("ops+motion", render(e2)), e2))
        return cands, []
    whole = measure_body(sk, m.d, m.trust, where, m.origin, m.scale)
    em = BodyEdit(recipe=recipe, motion=whole, choice="motion", parts=parts, turn=turn, reads=describe(whole, sk))
    best_m = max(((check.score("motion", render(em, g)), g) for g in GAINS), key=lambda x: x[0].psnr_db)
    if best_m[1] != 1.0:
        em.motion = whole.scaled(best_m[1])
    cands.append((best_m[0], em))
    return cands, []


def _choose(cands: list[Candidate]) -> Candidate | None:
    """The simplest good candidate. When the body ops explain the change (their own
    rendering gains :data:`MIN_OPS_DB` on the exemplar), the ops or the ops plus the
    motion they leave; otherwise the measured motion alone. Carried as strokes on parts,
    the measured motion reproduces its own exemplar best (it is the exemplar's motion)
    but lands on another body less exactly than ops do (body liquify benchmark: +3.6 dB
    against +4.3 dB), which a check run on the exemplar's own body cannot see; and ops
    that explain little are a poor guess whose motion should not lead."""
    ops = next((c for c in cands if c.name == "ops"), None)
    if ops is not None and ops.gain_db >= MIN_OPS_DB:
        cands = [c for c in cands if c.name != "motion"]
    else:
        cands = [c for c in cands if c.name == "motion"]
    good = [c for c in cands if c.gain_db >= MIN_GAIN_DB]
    if not good:
        return None
    best = max(c.gain_db for c in good)
    margin = max(MARGIN_DB, MARGIN_SHARE * best)
    return next(c for c in good if c.gain_db >= best - margin)


def _ops_backward(recipe: Recipe, sk: Skeleton, pts: np.ndarray) -> np.ndarray:
    """The backward displacement (photo pixels) of ``recipe``'s body ops at ``pts``."""
    sts = [st for s in recipe.active() for st in strokes(s.op, sk, get_op(s.op).fraction(s.strength))]
    if not sts:
        return np.zeros((len(pts), 2))
    return -displacement(sts, pts) * band(sk, pts)[:, None]


def _fit_ops(sk: Skeleton, m, region: np.ndarray, pts: np.ndarray) -> Recipe:
    """The body ops that explain the measured motion (trust-weighted least squares on
    the band around the person, away from the face), chosen one at a time; weak ones are
    dropped and the rest refitted."""
    from ..ops.body import STROKES

    h, w = region.shape
    idx = np.nonzero(region.ravel())[0][::3]
    if not len(idx):
        return Recipe([])
    p = pts[idx]
    target = -(m.d.reshape(-1, 2)[idx] / m.scale)            # content displacement, photo px
    wt = np.sqrt(m.trust.reshape(-1)[idx] + 0.05)
    bnd = band(sk, p)[:, None]
    names, cols = [], []
    for name in STROKES:
        sts = strokes(name, sk, 1.0)
        if not sts:
            continue
        col = displacement(sts, p) * bnd
        if np.abs(col).max() < 1e-6:
            continue
        names.append(name)
        cols.append(col)
    if not names:
        return Recipe([])

    b = target.ravel() * np.repeat(wt, 2)
    Z = np.stack([c.ravel() for c in cols], 1) * np.repeat(wt, 2)[:, None]
    G, c0, energy = Z.T @ Z, Z.T @ b, float(b @ b)

    def solve(keep: list[int]) -> tuple[np.ndarray, float]:
        H = G[np.ix_(keep, keep)]
        ridge = 1e-3 * np.trace(H) / max(1, len(keep))
        x = np.linalg.solve(H + ridge * np.eye(len(keep)), c0[keep])
        return x, energy - 2 * float(c0[keep] @ x) + float(x @ H @ x)

    # Greedy, as the face's ops are chosen (analyze.fit): the op that removes the most
    # of what is left joins while it removes a real share of the motion. Solving for all
    # ops at once lets correlated ones (the neck's sides, the shoulder tops) cancel each
    # other at large opposite strengths, and such a mixture lands badly on another body.
    keep: list[int] = []
    left = energy
    while len(keep) < MAX_OPS:
        trials = [(solve(keep + [i])[1], i) for i in range(len(names)) if i not in keep]
        if not trials:
            break
        err, i = min(trials)
        if left - err < OP_SHARE * energy:
            break
        keep.append(i)
        left = err
    if not keep:
        return Recipe([])

    def strength(i: int, fi: float) -> float:
        return fi / get_op(names[i]).max_pos * 100.0

    for _ in range(3):                  # weak ones out, the rest refitted, until none is weak
        f, _ = solve(keep)
        strong = [i for i, fi in zip(keep, f) if abs(strength(i, fi)) >= MIN_STRENGTH]
        if not strong:
            return Recipe([])
        if strong == keep:
            break
        keep = strong
    else:
        f, _ = solve(keep)
    return Recipe([Step(names[i], float(np.clip(strength(i, fi), -100, 100))) for i, fi in zip(keep, f)])
