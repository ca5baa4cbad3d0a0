"""Refining a recipe in image space, for exemplars made by the paper's exact procedure.

When an exemplar shows the LLW procedure's resampling ramp, that ramp can dwarf an op's
own motion (a narrowed nose bridge moves a fraction of a pixel while the ramp shifts the
whole mask by several): the flow fit then finds the right region but loose strengths,
sometimes the wrong op of that region or the wrong sign. Re-running the exact procedure
on the exemplar's before photo and comparing with its after photo settles it. The search
(PSNR in the changed region):

1. only ops whose own change reaches the changed region are candidates to add or swap in;
2. the order of the ops (the procedure re-detects landmarks between ops, so order
   matters), then a coarse coordinate search of strengths (sign flips, dropping);
3. adding a missing op (at any position), then swapping each op for another candidate;
4. the order again, then a fine coordinate search.

Where the after photo is the before photo with a rectangle pasted back into it (every
pixel inside resampled, none outside: the procedure ran on a square crop), the crop is
the picture the procedure saw: its size sets the resampling ramp and the mask blur. Its
visible edges are read off the photos; the hidden ones (past the borders) come from a
search of its side length, scored the same way. Comparisons are made only where some
paper op can change pixels, so the paste's own resampling does not drown the edit.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections import OrderedDict
from itertools import permutations

import cv2
import numpy as np

from ..errors import MirrorError
from ..eval.metrics import pixel_difference
from ..ops.apply import mask_in_box, region_box
from ..ops.base import get_op, ops_in
from ..ops.recipe import Recipe, Step
from .framing import PAPER_SIDE, paper_canvas
from .render import Canvas, Working, apply_recipe_exact, working_scale

#: Accept the refined recipe only if the exact procedure reproduces the exemplar this
#: well (PSNR gain in the changed region, dB): otherwise the exemplar was made some other
#: way and image-space comparison would mislead.
MIN_GAIN = 6.0
#: An op is added or swapped in when it improves the match by this much (dB).
ADD_MIN_DB = 0.3
#: An op is a candidate when at least this share of what it changes lies in the changed region.
MIN_OVERLAP = 0.25
MAX_OPS = 4
TRIAL = (-100.0, -50.0, 50.0, 100.0)
SWAP_TRIAL = (-100.0, -75.0, -50.0, -25.0, 25.0, 50.0, 75.0, 100.0)
#: A pasted-back crop: share of pixels that differ inside it, and at most outside it.
PASTE_INSIDE, PASTE_OUTSIDE = 0.4, 0.05
#: Crop sides tried, as multiples of the visible part (coarse step in pixels).
CANVAS_SPAN, CANVAS_STEP = 1.5, 24
STRENGTH_SCALES = (1.0, 1.15, 1.3)
#: Memory for pictures after recipe prefixes (bytes).
PREFIX_BYTES = 384 << 20
WEAK = 40.0


@dataclass
class Refined:
    recipe: Recipe
    gain_db: float                  # PSNR gain over doing nothing, where things changed
    canvas: Canvas | None           # the crop it was edited on (None: the whole photo)
    scale: float = 1.0              # working pixels per photo pixel


def _changed(source: np.ndarray, target: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels that changed, where some paper op could have changed them."""
    diff = pixel_difference(source, target) > 3
    k = max(3, int(0.01 * min(source.shape[:2])) | 1)
    changed = cv2.dilate(diff.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    H, W = source.shape[:2]
    reach = np.zeros((H, W), np.uint8)
    for op in ops_in("llw"):
        try:
            geom = op.geometry(np.round(points), 100.0)
        except MirrorError:
            continue
        box = region_box(geom, (W, H))
        if box is None:
            continue
        m, _ = mask_in_box(geom, (W, H), box, 1 << 30, border=cv2.BORDER_REFLECT_101)
        x0, y0, x1, y1 = box
        reach[y0:y1, x0:x1] |= (m > 0).astype(np.uint8)
    k = max(3, int(0.03 * min(H, W)) | 1)
    return changed & (cv2.dilate(reach, np.ones((k, k), np.uint8)) > 0)


def paste_box(source: np.ndarray, target: np.ndarray, points: np.ndarray
              ) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a rectangle pasted back into the after photo, or None.

    A crop edited and pasted back differs from the before photo nearly everywhere inside
    (resampled) and nowhere outside; around the face, where no facial op reaches, that
    is the paste alone (an edit's own changes, and JPEG noise around them, stay near the
    features)."""
    d = (source != target).any(axis=2)
    H, W = d.shape
    xs = np.nonzero(d.mean(axis=0) > 0.3)[0]
    if len(xs) < 0.2 * W:
        return None
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    ys = np.nonzero(d[:, x0:x1].mean(axis=1) > 0.3)[0]
    if len(ys) < 0.2 * H:
        return None
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    if (x0, y0, x1, y1) == (0, 0, W, H):
        return None        # everything differs (e.g. saved twice as JPEG): no rectangle to read
    # The face, with a margin: what lies beyond it inside the box must be resampled too.
    fx0, fy0 = points[:, 0].min(), points[:, 1].min()
    fx1, fy1 = points[:, 0].max(), points[:, 1].max()
    m = 0.1 * max(fx1 - fx0, fy1 - fy0)
    ring = np.zeros((H, W), bool)
    ring[y0:y1, x0:x1] = True
    ring[max(0, int(fy0 - m)):int(fy1 + m) + 1, max(0, int(fx0 - m)):int(fx1 + m) + 1] = False
    if ring.sum() < 0.02 * H * W:
        return None
    inside = float(d[ring].mean())
    rest = d.sum() - d[y0:y1, x0:x1].sum()
    outside = float(rest) / max(1, H * W - (y1 - y0) * (x1 - x0))
    return (x0, y0, x1, y1) if inside >= PASTE_INSIDE and outside <= PASTE_OUTSIDE else None


def _visible_side(box: tuple[int, int, int, int]) -> int:
    return max(box[2] - box[0], box[3] - box[1])


def _canvases(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[Canvas]:
    """Square crops consistent with a pasted box: sides from what is visible to
    CANVAS_SPAN times that; a side hidden past a border is placed from the visible one."""
    lo = _visible_side(box)
    return [crop_canvas(box, size, side) for side in range(lo, int(lo * CANVAS_SPAN) + 1, CANVAS_STEP)]


def crop_canvas(box: tuple[int, int, int, int], size: tuple[int, int], side: int) -> Canvas:
    """The square crop of ``side`` px that a pasted ``box`` shows part of (image ``size``)."""
    x0, y0, x1, y1 = box
    W, H = size

    def one(a, b, n):
        if a > 0 and b < n:
            return a, b - a                  # both edges visible: that is the crop
        if a > 0:
            return a, side
        if b < n:
            return b - side, side
        return (n - side) // 2, side         # hidden on both sides: centred
    cx, cw = one(x0, x1, W)
    cy, ch = one(y0, y1, H)
    return (int(cx), int(cy), int(cw), int(ch))


class _Search:
    """Scores recipes (op order and strengths) by how well the exact procedure on the
    before photo reproduces the after photo. Scores are cached, and so are the pictures
    after each recipe prefix: the search mostly varies the last ops, and each op costs a
    landmark detection plus a warp."""

    def __init__(self, source, target, points, detect) -> None:
        self.source, self.target, self.points, self.detect = source, target, points, detect
        mask = _changed(source, target, points)
        self.any_change = bool(mask.any())
        ys, xs = np.nonzero(mask) if self.any_change else (np.array([0]), np.array([0]))
        self.box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        y0, y1, x0, x1 = self.box
        self.mask = mask[y0:y1, x0:x1]
        self.want = target[y0:y1, x0:x1][self.mask].astype(np.float32)
        self.canvas: Canvas | None = None
        self.scale = 1.0
        self.cache: dict[tuple, float] = {}
        self.prefix: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.prefix_bytes = 0
        self.working: dict[tuple, np.ndarray] = {}     # working pictures by (box, scale)

    def _psnr(self, out: np.ndarray) -> float:
        y0, y1, x0, x1 = self.box
        d = out[y0:y1, x0:x1][self.mask].astype(np.float32) - self.want
        mse = float(np.mean(d * d, dtype=np.float64)) if d.size else 0.0
        return 99.0 if mse <= 1e-10 else 10 * np.log10(255.0 ** 2 / mse)

    def _keep(self, key: tuple, img: np.ndarray) -> None:
        self.prefix[key] = img
        self.prefix_bytes += img.nbytes
        while self.prefix_bytes > PREFIX_BYTES and len(self.prefix) > 1:
            _, old = self.prefix.popitem(last=False)
            self.prefix_bytes -= old.nbytes

    def render(self, steps: tuple[tuple[str, float], ...]) -> np.ndarray:
        """The exact procedure's result for ``steps`` on the before photo (the same as
        :func:`apply_recipe_exact` with this search's canvas and scale)."""
        k = self.scale
        if k == 1.0:
            base, pts, cv = self.source, self.points, self.canvas
        else:
            work = Working.of((self.source.shape[1], self.source.shape[0]), self.canvas, k)
            if (work.box, k) not in self.working:
                self.working[work.box, k] = work.picture(self.source)
            base, pts, cv = self.working[work.box, k], work.points(self.points), work.canvas
        ctx = (self.canvas, k)
        n = len(steps)
        while n > 0 and ctx + steps[:n] not in self.prefix:
            n -= 1
        img = self.prefix[ctx + steps[:n]] if n else base
        if n:
            self.prefix.move_to_end(ctx + steps[:n])
        for i in range(n, len(steps)):
            img = apply_recipe_exact(img, Recipe([Step(*steps[i])]), self.detect,
                                     points=pts if i == 0 else None, canvas=cv)
            self._keep(ctx + steps[:i + 1], img)
        return img if k == 1.0 else work.back(self.source, base, img)

    def score(self, ops: tuple[str, ...], vals: tuple[float, ...]) -> float:
        steps = tuple((o, v) for o, v in zip(ops, vals) if v != 0.0)
        key = (self.canvas, self.scale) + steps
        if key not in self.cache:
            if not steps:
                self.cache[key] = self._psnr(self.source)
            else:
                try:
                    out = self.render(steps)
                except MirrorError:
                    self.cache[key] = -np.inf
                else:
                    self.cache[key] = self._psnr(out)
        return self.cache[key]

    def candidates(self) -> list[str]:
        """LLW ops whose own change (at -100 or +100) falls mostly in the changed region."""
        names = []
        for op in ops_in("llw"):
            for v in (-100.0, 100.0):
                try:
                    out = self.render(((op.name, v),))
                except MirrorError:
                    continue
                moved = pixel_difference(out, self.source) > 3
                y0, y1, x0, x1 = self.box
                inside = (moved[y0:y1, x0:x1] & self.mask).sum()
                if moved.any() and inside >= MIN_OVERLAP * moved.sum():
                    names.append(op.name)
                    break
        return names


def _best_order(s: _Search, ops, vals, best):
    if 1 < len(ops) <= MAX_OPS:
        for perm in permutations(range(len(ops))):
            o, v = tuple(ops[i] for i in perm), tuple(vals[i] for i in perm)
            sc = s.score(o, v)
            if sc > best + 1e-3:
                ops, vals, best = o, v, sc
    return ops, vals, best


def _coordinate(s: _Search, ops, vals, best, sizes):
    """Steepest ascent over single-op moves (+-step, sign flip, drop): the landscape is
    rugged away from the answer, so take the best move, not the first that helps."""
    for step in sizes:
        while True:
            moves = []
            for i in range(len(vals)):
                for c in {vals[i] + step, vals[i] - step, -vals[i], 0.0}:
                    trial = vals[:i] + (float(np.clip(c, -100, 100)),) + vals[i + 1:]
                    moves.append((s.score(ops, trial), trial))
            sc, trial = max(moves, key=lambda m: m[0]) if moves else (-np.inf, vals)
            if sc <= best + 1e-3:
                break
            vals, best = trial, sc
    return vals, best


def _pick_canvas(s: _Search, box, ops, vals) -> tuple[float, ...]:
    """Choose the pasted crop's side and working size (sets ``s.canvas``, ``s.scale``):
    coarse sides scored with the fit's recipe, the best few with their strengths
    adjusted, then a finer step."""
    size = (s.source.shape[1], s.source.shape[0])
    scored = []
    for scale in _working_scales(s.source):
        s.scale = scale
        for cv in _canvases(box, size):
            s.canvas = cv
            # The flow fit reads such exemplars' strengths low (the crop's coarse grid
            # smooths the motion it sees), so each side is judged at a few larger scales
            # too; a weak op of the fit may be the ramp of a wrong side mistaken for
            # motion: try without it.
            variants = [vals] + [vals[:i] + (0.0,) + vals[i + 1:] for i in range(len(vals))
                                 if len(vals) > 1 and abs(vals[i]) < WEAK]
            for base in variants:
                for k in STRENGTH_SCALES:
                    v = _scaled(base, k)
                    scored.append((s.score(ops, v), cv, scale, v))
    best = (-np.inf, None, 1.0, vals)
    seen = set()
    for _, cv, scale, v0 in sorted(scored, key=lambda t: t[0], reverse=True):
        if (cv, scale) in seen:
            continue
        seen.add((cv, scale))
        if len(seen) > 3:
            break
        s.canvas, s.scale = cv, scale
        v, sc = _coordinate(s, ops, v0, s.score(ops, v0), [40.0, 15.0])
        if sc > best[0]:
            best = (sc, cv, scale, v)
    s.scale = best[2]
    _tune_side(s, box, ops, best[3], best[1], CANVAS_STEP // 2, 3)
    return best[3]


def _working_scales(source: np.ndarray) -> tuple[float, ...]:
    """Native size, and the paper's working size when the photo is smaller (published
    after a downscale)."""
    k = working_scale(max(source.shape[:2]), PAPER_SIDE)
    return (1.0, k) if k != 1.0 else (1.0,)


def _scaled(vals, k: float) -> tuple[float, ...]:
    return tuple(float(np.clip(round(x * k), -100, 100)) for x in vals)


def _pick_scale(s: _Search, ops, vals, thorough: bool = True) -> tuple[float, ...]:
    """The picture the procedure ran on when no pasted box shows (sets ``s.canvas``,
    ``s.scale``): the photo at its own size, at the paper's working size (a photo
    published smaller than it was edited keeps the grid, ramp and blur of the larger
    size), or, for a photo that is not a face crop, its face's aligned crop as the
    paper's pipeline framed it (a paste hidden by re-encoding)."""
    frames = [(None, k) for k in _working_scales(s.source)]
    crop = paper_canvas(s.points, (s.source.shape[1], s.source.shape[0]))
    if crop is not None:
        frames.append(crop)
    if len(frames) == 1:
        return vals
    trials = []
    for canvas, scale in frames:
        s.canvas, s.scale = canvas, scale
        sc, v = max(((s.score(ops, _scaled(vals, m)), _scaled(vals, m)) for m in STRENGTH_SCALES),
                    key=lambda t: t[0])
        if thorough:
            # Judged after a coarse strength search of its own (the fit read the strengths
            # through whichever ramp the exemplar carries); the search goes on from the
            # scaled strengths, its later steps settle them.
            sc = _coordinate(s, ops, v, sc, [40.0, 15.0])[1]
        trials.append((sc, canvas, scale, v))
    _, s.canvas, s.scale, v = max(trials, key=lambda t: t[0])
    return v if (s.scale != 1.0 or s.canvas is not None) else vals


def _tune_side(s: _Search, box, ops, vals, canvas: Canvas, span: int, step: int) -> float:
    size = (s.source.shape[1], s.source.shape[0])
    side = max(canvas[2], canvas[3])
    trials = []
    for d in range(-span, span + 1, step):
        if side + d >= _visible_side(box):
            s.canvas = crop_canvas(box, size, side + d)
            trials.append((s.score(ops, vals), s.canvas))
    sc, s.canvas = max(trials)
    return sc


def refine_in_image(source: np.ndarray, target: np.ndarray, recipe: Recipe, points: np.ndarray,
                    detect, rounds: int = 2, box: tuple[int, int, int, int] | None = None,
                    quick_exit_db: float | None = None
                    ) -> Refined | None:
    """Search of an all-LLW recipe's ops, order and strengths in image space (and, given
    the ``box`` of a pasted-back crop, that crop; else the size it was edited at).
    Returns the refined recipe, its PSNR gain over doing nothing, the crop and the scale
    it was edited at, or None when the exact
    procedure does not reproduce this exemplar (then the flow fit stands). With
    ``quick_exit_db``, give up early when the first strength search gains less than that.
    """
    steps = list(recipe.active())
    if not steps or any(get_op(st.op).family != "llw" for st in steps):
        return None
    s = _Search(source, target, points, detect)
    if not s.any_change:
        return None
    base = s.score((), ())
    ops = tuple(st.op for st in steps)
    vals = tuple(float(round(st.strength)) for st in steps)
    if box is not None:
        vals = _pick_canvas(s, box, ops, vals)
    else:
        vals = _pick_scale(s, ops, vals, thorough=quick_exit_db is None)
    best = s.score(ops, vals)
    ops, vals, best = _best_order(s, ops, vals, best)
    vals, best = _coordinate(s, ops, vals, best, [40.0, 15.0])
    if quick_exit_db is not None and best - base < quick_exit_db:
        return None
    # Candidates for adding and swapping; the flow fit's own ops stay in (they are evidence).
    cands = s.candidates()
    # Ops the flow fit missed (their own motion hidden under the ramp).
    while len(ops) < MAX_OPS:
        found = None
        for name in cands:
            if name in ops:
                continue
            for pos in range(len(ops) + 1):
                for v in TRIAL:
                    o, x = ops[:pos] + (name,) + ops[pos:], vals[:pos] + (v,) + vals[pos:]
                    sc = s.score(o, x)
                    if sc > best + ADD_MIN_DB and (found is None or sc > found[0]):
                        found = (sc, o, x)
        if found is None:
            break
        best, ops, vals = found
    # Ops sharing a region (lips, mouth size, mouth position) are easily confused.
    for i in range(len(ops)):
        found = None
        for name in cands:
            if name in ops:
                continue
            for v in SWAP_TRIAL:
                o, x = ops[:i] + (name,) + ops[i + 1:], vals[:i] + (v,) + vals[i + 1:]
                sc = s.score(o, x)
                if sc > best + ADD_MIN_DB and (found is None or sc > found[0]):
                    found = (sc, o, x)
        if found is not None:
            best, ops, vals = found
    for _ in range(rounds):         # order and strengths settle each other
        before = best
        ops, vals, best = _best_order(s, ops, vals, best)
        if box is not None:
            best = max(best, _tune_side(s, box, ops, vals, s.canvas, 6, 2))
        vals, best = _coordinate(s, ops, vals, best, [40.0, 15.0, 5.0, 2.0])
        if best < before + 1e-3:
            break
    if best - base < MIN_GAIN:
        return None
    refined = Recipe([Step(o, v) for o, v in zip(ops, vals) if abs(v) >= 0.5])
    return Refined(refined, best - base, s.canvas, s.scale)
