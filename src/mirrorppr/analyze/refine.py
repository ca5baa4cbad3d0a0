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
"""
from __future__ import annotations

from itertools import permutations

import cv2
import numpy as np

from ..errors import MirrorError
from ..ops.base import get_op, ops_in
from ..ops.recipe import Recipe, Step, apply_recipe_exact

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


def _changed(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16)).max(axis=2) > 3
    k = max(3, int(0.01 * min(source.shape[:2])) | 1)
    return cv2.dilate(diff.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = (a[mask].astype(np.float64) - b[mask]) ** 2
    mse = float(d.mean()) if d.size else 0.0
    return 99.0 if mse <= 1e-10 else 10 * np.log10(255.0 ** 2 / mse)


class _Search:
    """Scores recipes (op order and strengths) by how well the exact procedure on the
    before photo reproduces the after photo; results cached."""

    def __init__(self, source, target, points, detect) -> None:
        self.source, self.target, self.points, self.detect = source, target, points, detect
        self.mask = _changed(source, target)
        self.cache: dict[tuple, float] = {}

    def score(self, ops: tuple[str, ...], vals: tuple[float, ...]) -> float:
        key = tuple((o, v) for o, v in zip(ops, vals) if v != 0.0)
        if key not in self.cache:
            if not key:
                self.cache[key] = _psnr(self.source, self.target, self.mask)
            else:
                try:
                    out = apply_recipe_exact(self.source, Recipe([Step(o, v) for o, v in key]), self.detect,
                                             points=self.points)
                except MirrorError:
                    self.cache[key] = -np.inf
                else:
                    self.cache[key] = _psnr(out, self.target, self.mask)
        return self.cache[key]

    def candidates(self) -> list[str]:
        """LLW ops whose own change (at -100 or +100) falls mostly in the changed region."""
        names = []
        for op in ops_in("llw"):
            for v in (-100.0, 100.0):
                try:
                    out = apply_recipe_exact(self.source, Recipe([Step(op.name, v)]), self.detect,
                                             points=self.points)
                except MirrorError:
                    continue
                moved = np.abs(out.astype(np.int16) - self.source.astype(np.int16)).max(axis=2) > 3
                if moved.any() and (moved & self.mask).sum() >= MIN_OVERLAP * moved.sum():
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


def refine_in_image(source: np.ndarray, target: np.ndarray, recipe: Recipe, points: np.ndarray,
                    detect, rounds: int = 2) -> tuple[Recipe, float] | None:
    """Search of an all-LLW recipe's ops, order and strengths in image space. Returns the
    refined recipe and its PSNR gain over doing nothing, or None when the exact
    procedure does not reproduce this exemplar (then the flow fit stands)."""
    steps = list(recipe.active())
    if not steps or any(get_op(st.op).family != "llw" for st in steps):
        return None
    s = _Search(source, target, points, detect)
    if not s.mask.any():
        return None
    base = s.score((), ())
    # Candidates for adding and swapping; the flow fit's own ops stay in (they are evidence).
    cands = s.candidates()
    ops = tuple(st.op for st in steps)
    vals = tuple(float(round(st.strength)) for st in steps)
    best = s.score(ops, vals)
    ops, vals, best = _best_order(s, ops, vals, best)
    vals, best = _coordinate(s, ops, vals, best, [40.0, 15.0])
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
        vals, best = _coordinate(s, ops, vals, best, [40.0, 15.0, 5.0, 2.0])
        if best < before + 1e-3:
            break
    if best - base < MIN_GAIN:
        return None
    refined = Recipe([Step(o, v) for o, v in zip(ops, vals) if abs(v) >= 0.5])
    return refined, best - base
