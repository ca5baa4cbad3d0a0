"""Refining a recipe in image space, for exemplars made by the paper's exact procedure.

When an exemplar shows the LLW procedure's resampling ramp, that ramp can dwarf an op's
own motion (a narrowed nose bridge moves a fraction of a pixel while the ramp shifts the
whole mask by several): the flow fit then finds the right ops but loose strengths, even
wrong signs. Re-running the exact procedure on the exemplar's before photo and
comparing with its after photo settles them: a coordinate search over each op's
strength (sign flips and dropping the op included) that maximises PSNR in the changed
region.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import MirrorError
from ..ops.base import get_op, ops_in
from ..ops.recipe import Recipe, Step, apply_recipe_exact

#: Accept the refined recipe only if the exact procedure reproduces the exemplar this
#: well (PSNR gain in the changed region, dB): otherwise the exemplar was made some other
#: way and image-space comparison would mislead.
MIN_GAIN = 6.0
#: An op missing from the flow fit is added when it improves the match by this much (dB).
ADD_MIN_DB = 0.3


def _changed(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16)).max(axis=2) > 3
    k = max(3, int(0.01 * min(source.shape[:2])) | 1)
    return cv2.dilate(diff.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = (a[mask].astype(np.float64) - b[mask]) ** 2
    mse = float(d.mean()) if d.size else 0.0
    return 99.0 if mse <= 1e-10 else 10 * np.log10(255.0 ** 2 / mse)


def refine_in_image(source: np.ndarray, target: np.ndarray, recipe: Recipe, points: np.ndarray,
                    detect, rounds: int = 2) -> tuple[Recipe, float] | None:
    """Coordinate search of the strengths of an all-LLW recipe. Returns the refined recipe
    and its PSNR gain over doing nothing, or None when the exact procedure does not
    reproduce this exemplar (then the flow fit stands)."""
    steps = [s for s in recipe.active()]
    if not steps or any(get_op(s.op).family != "llw" for s in steps):
        return None
    mask = _changed(source, target)
    if not mask.any():
        return None
    base = _psnr(source, target, mask)
    cache: dict[tuple, float] = {}

    def score(strengths: tuple[float, ...]) -> float:
        if strengths not in cache:
            r = Recipe([Step(s.op, v) for s, v in zip(steps, strengths)])
            try:
                out = apply_recipe_exact(source, r, detect, points=points)
            except MirrorError:
                cache[strengths] = -np.inf
            else:
                cache[strengths] = _psnr(out, target, mask)
        return cache[strengths]

    cur = tuple(float(round(s.strength)) for s in steps)
    best = score(cur)
    # Ops the flow fit missed (their own motion hidden under the ramp): try adding each.
    have = {s.op for s in steps}
    for op in ops_in("llw"):
        if op.name in have:
            continue
        trial_steps = steps + [Step(op.name, 0.0)]
        gains = []
        for v in (-100.0, -50.0, 50.0, 100.0):
            r = Recipe([Step(s.op, x) for s, x in zip(trial_steps, cur + (v,))])
            try:
                out = apply_recipe_exact(source, r, detect, points=points)
            except MirrorError:
                continue
            gains.append((_psnr(out, target, mask), v))
        if gains and max(gains)[0] > best + ADD_MIN_DB:
            best, v = max(gains)
            steps, cur = trial_steps, cur + (v,)
            cache.clear()
            cache[cur] = best
    # Ops sharing a mask (lips, mouth size, mouth position) are easily confused when the
    # ramp dominates: try swapping each for another op of the vocabulary.
    for i in range(len(steps)):
        have = {s.op for s in steps}
        best_swap = None
        for op in ops_in("llw"):
            if op.name in have:
                continue
            for v in (-100.0, -50.0, 50.0, 100.0):
                trial_steps = steps[:i] + [Step(op.name, v)] + steps[i + 1:]
                vals = cur[:i] + (v,) + cur[i + 1:]
                r = Recipe([Step(s.op, x) for s, x in zip(trial_steps, vals)])
                try:
                    out = apply_recipe_exact(source, r, detect, points=points)
                except MirrorError:
                    continue
                sc = _psnr(out, target, mask)
                if sc > best + ADD_MIN_DB and (best_swap is None or sc > best_swap[0]):
                    best_swap = (sc, trial_steps, vals)
        if best_swap is not None:
            best, steps, cur = best_swap
            cache.clear()
            cache[cur] = best
    for step_size in ([40.0, 15.0, 5.0, 2.0] if rounds > 1 else [15.0, 5.0]):
        improved = True
        while improved:
            improved = False
            for i in range(len(cur)):
                cands = {cur[i] + step_size, cur[i] - step_size, -cur[i], 0.0}
                for c in sorted(cands):
                    c = float(np.clip(c, -100, 100))
                    trial = cur[:i] + (c,) + cur[i + 1:]
                    sc = score(trial)
                    if sc > best + 1e-3:
                        cur, best, improved = trial, sc, True
    if best - base < MIN_GAIN:
        return None
    refined = Recipe([Step(s.op, v) for s, v in zip(steps, cur) if abs(v) >= 0.5])
    return refined, best - base
