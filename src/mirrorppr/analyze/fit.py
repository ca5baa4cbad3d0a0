"""Explaining a measured motion with the operation library: which ops, how strong.

Each op's motion is evaluated on the exemplar's own landmarks, directly at the
normalised grid's points (MLS, blend mask), in both directions at strength 100, as the
clean warp the transfer engines apply. A greedy non-negative selection picks the few ops
that explain most of the measured flow, then a bounded non-linear least-squares refines
their strengths (an op's motion is not exactly linear in its strength), and each chosen op
is checked against the look-alikes of its group, which at the refined strength can fit
better than at the full strength the selection compared them at.

This reads an exemplar as a clean edit (a retoucher's liquify, this project's own ops).
Reading it as the paper's simulator made it (with that procedure's resampling ramp) is
the paper provenance's job: :mod:`mirrorppr.paper.ramp`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from ..ops.apply import displacement_at, mask_in_box, region_box
from ..ops.base import Geometry, Op, get_op, ops_in
from ..ops.recipe import Recipe, Step
from ..warp.field import moving
from .normalize import Frame, grid_points, remap_points

#: An op joins the selection when it removes at least this share of the motion's energy.
MIN_GAIN = 0.004
#: ...or at least this share of the motion where it acts...
LOCAL_GAIN = 0.3
#: ...and in any case more than this share of the total (below it, it fits noise).
NOISE_GAIN = 2e-4
#: Strengths below this (of 100) are dropped.
MIN_STRENGTH = 4.0
#: Strengths are refined on every this-many-th point where anything moves.
REFINE_EVERY = 4
#: A selected op is tried against the ops of its group whose full-strength motions
#: correlate with its own at least this much...
SWAP_CORRELATION = 0.5
#: ...and replaced when the look-alike leaves this share less motion unexplained.
SWAP_GAIN = 0.05


def _mask_at(geom: Geometry, size: tuple[int, int], v: np.ndarray, box) -> np.ndarray:
    """Blend-mask values at image points ``v`` inside ``box``."""
    m, k = mask_in_box(geom, size, box, 512)
    return remap_points(m[..., None], (v[:, 0] - box[0]) * k, (v[:, 1] - box[1]) * k)[:, 0]


def grid_pixels(frame: Frame) -> tuple[np.ndarray, tuple[int, ...]]:
    """Image positions of the normalised grid's cells, and the grid's shape."""
    uv = grid_points()
    return frame.to_pixels(uv.reshape(-1, 2)), uv.shape


def op_grid(geom: Geometry, size: tuple[int, int], frame: Frame, with_mask: bool = False,
            px: np.ndarray | None = None):
    """An op's masked backward motion on the normalised grid (normalised units);
    with ``with_mask`` also the mask values on the grid (flat). ``px`` evaluates at
    those image points instead (flat result)."""
    if px is None:
        px, shape = grid_pixels(frame)
    else:
        shape = (len(px), 2)
    out = np.zeros((len(px), 2), np.float32)
    mask = np.zeros(len(px), np.float32)
    box = region_box(geom, size)
    if box is not None:
        x0, y0, x1, y1 = box
        inside = (px[:, 0] >= x0) & (px[:, 0] < x1) & (px[:, 1] >= y0) & (px[:, 1] < y1)
        if inside.any():
            v = px[inside]
            w = _mask_at(geom, size, v, box)
            mask[inside] = w
            if not geom.is_identity:
                out[inside] = frame.vec_to_norm(displacement_at(geom, size, v) * w[:, None])
    out = out.reshape(shape)
    return (out, mask) if with_mask else out


def points_for(op: Op, points: np.ndarray) -> np.ndarray:
    """The landmarks an op is built on (the paper's ops use them rounded)."""
    return np.round(points) if op.family == "llw" else points


def clean(geom: Geometry) -> Geometry:
    """The op's motion as a clean warp (face-scaled grid, no spec resampling)."""
    return replace(geom, spec_grid=False) if geom.spec_grid else geom


class OpMotions:
    """Ops' motions at given strengths on fixed image points ``px``, the op's geometry
    passed through ``shape`` (a clean warp, the paper's grid...). Each op and strength is
    computed once: a finite-difference Jacobian moves one strength at a time, so every
    other op's motion is one already computed."""

    def __init__(self, points: np.ndarray, size: tuple[int, int], frame: Frame, px: np.ndarray,
                 shape: Callable[[Geometry], Geometry]) -> None:
        self.points, self.size, self.frame, self.px, self.shape = points, size, frame, px, shape
        self._seen: dict[tuple[str, float, int], np.ndarray] = {}

    def sum(self, ops: list[Op], strengths, every: int = 1) -> np.ndarray:
        """The ops' summed motion (flat), on every ``every``-th point."""
        px = self.px[::every]
        total = np.zeros(2 * len(px))
        for op, s in zip(ops, strengths):
            if abs(s) < 1e-6:
                continue
            key = (op.name, float(s), every)
            got = self._seen.get(key)
            if got is None:
                geom = self.shape(op.geometry(points_for(op, self.points), float(s)))
                got = self._seen[key] = op_grid(geom, self.size, self.frame, px=px).reshape(-1)
            total += got
        return total


@dataclass
class Fit:
    recipe: Recipe
    predicted: np.ndarray     # the recipe's motion on the grid
    explained: float          # share of the measured motion's energy the fit explains


class Bases:
    """Every op's motion at strength +-100 on the grid points where anything moves
    (measured, or by some op), with the Gram matrix so each trial selection is a
    tiny solve."""

    def __init__(self, points: np.ndarray, size: tuple[int, int], measured: np.ndarray,
                 frame: Frame, families: tuple[str, ...]) -> None:
        self.points, self.size, self.frame = points, size, frame
        px_all, _ = grid_pixels(frame)
        m_all = measured.reshape(-1, 2)
        self.ops: list[Op] = [op for fam in families for op in ops_in(fam)]
        raw: dict[tuple[str, float], np.ndarray] = {}
        support = moving(m_all, 0.0)
        for op in self.ops:
            for sign in (1.0, -1.0):
                g = op_grid(clean(op.geometry(points_for(op, points), 100.0 * sign)), size, frame)
                g = g.reshape(-1, 2)
                if float((g * g).sum()) > 1e-12:
                    raw[(op.name, sign)] = g
                    support |= moving(g, 0.0)
        self.idx = np.nonzero(support)[0]
        self.px = px_all[self.idx]
        self.motions = OpMotions(points, size, frame, self.px, clean)
        self.m = m_all[self.idx].reshape(-1).astype(np.float64)
        self.keys = list(raw)
        # The measured motion's energy where each op acts: what it has to explain.
        mm = m_all[self.idx].astype(np.float64)
        self.local = {k: float((mm[moving(raw[k][self.idx], 0.0)] ** 2).sum()) for k in self.keys}
        Z = (np.column_stack([raw[k][self.idx].reshape(-1) for k in self.keys]).astype(np.float64)
             if self.keys else np.zeros((len(self.m), 0)))
        self.G = Z.T @ Z
        self.b = Z.T @ self.m
        self.mm = float(self.m @ self.m)

    def solve(self, sel: list[tuple[str, float]]) -> tuple[np.ndarray, float]:
        """Non-negative least squares of the motion on the selected bases (each at most
        full strength): coefficients and the residual energy."""
        cols = [self.keys.index(k) for k in sel]
        H = self.G[np.ix_(cols, cols)]
        c = self.b[cols]
        L = np.linalg.cholesky(H + np.eye(len(H)) * (1e-9 * max(1.0, float(np.trace(H)))))
        x = lsq_linear(L.T, np.linalg.solve(L, c), bounds=(0.0, 1.0), method="bvls").x
        return x, max(self.mm - 2 * float(c @ x) + float(x @ H @ x), 0.0)

    def field(self, ops: list[Op], strengths, every: int = 1) -> np.ndarray:
        """The ops' summed clean motion at these strengths on the support (flat), or on
        every ``every``-th support point."""
        return self.motions.sum(ops, strengths, every)


def greedy(B: Bases, keys: list[tuple[str, float]], energy: float, max_ops: int,
           min_gain: float = MIN_GAIN) -> tuple[list[tuple[str, float]], np.ndarray]:
    """Add the op (one direction each) that removes the most remaining energy, while it
    removes at least ``min_gain`` of the total, or ``LOCAL_GAIN`` of the motion where it
    acts (a small feature's edit beside a large one: eyes enlarged on a slimmed face)."""
    chosen: list[tuple[str, float]] = []
    best_err, coef = energy, np.zeros(0)
    while len(chosen) < max_ops:
        used = {k[0] for k in chosen}
        trials = sorted(((B.solve(chosen + [k]), k) for k in keys if k[0] not in used),
                        key=lambda t: t[0][1])
        pick = next(((x, err, k) for (x, err), k in trials
                     if best_err - err >= min(min_gain * energy, LOCAL_GAIN * B.local[k])
                     and best_err - err > NOISE_GAIN * energy), None)
        if pick is None:
            break
        x, err, k = pick
        chosen.append(k)
        best_err, coef = err, x
    return chosen, coef


def _swap_confusable(B: Bases, ops: list[Op], strengths: np.ndarray, err: float,
                     keys: dict[str, tuple[str, float]], refine, refine_one
                     ) -> tuple[list[Op], np.ndarray, float]:
    """Each selected op against the ops of its group whose motion looks like its own.

    The selection is linear (each op at full strength), but an op's motion is not linear
    in its strength, so at the exemplar's strength a look-alike can fit better: eyes
    enlarged by 50 read as eyes widened by 54, since at 100 the widening's motion is the
    closer match. With strengths refined, the look-alike replaces the op when it leaves
    clearly less of the motion unexplained (screened first with its own strength alone
    refined, which costs a fraction of refining them all)."""
    for i in range(len(ops)):
        ci = B.keys.index(keys[ops[i].name])
        for cj, alt in enumerate(B.keys):
            if alt[0] in {op.name for op in ops} or get_op(alt[0]).group != ops[i].group:
                continue
            corr = B.G[ci, cj] / np.sqrt(max(B.G[ci, ci] * B.G[cj, cj], 1e-30))
            if corr < SWAP_CORRELATION:
                continue
            trial = ops[:i] + [get_op(alt[0])] + ops[i + 1:]
            start = strengths.copy()
            start[i] = alt[1] * abs(strengths[i])
            start[i], err_one = refine_one(trial, start, i)
            if err_one >= (1.0 - SWAP_GAIN) * err:
                continue
            q, err_q = refine(trial, start)
            if err_q < (1.0 - SWAP_GAIN) * err:
                ops, strengths, err = trial, q, err_q
    return ops, strengths, err


def fit_recipe(points: np.ndarray, size: tuple[int, int], measured: np.ndarray, frame: Frame,
               families: tuple[str, ...] = ("llw", "pro"), max_ops: int = 5,
               min_strength: float = MIN_STRENGTH) -> Fit:
    """Fit a recipe of clean ops to ``measured`` (normalised grid motion of the exemplar)."""
    energy = float((measured.astype(np.float64) ** 2).sum())
    if energy < 1e-10:
        return Fit(Recipe([]), np.zeros_like(measured), 1.0)
    B = Bases(np.asarray(points, float), size, measured, frame, families)
    chosen, coef = greedy(B, B.keys, energy, max_ops)
    if not chosen:
        return Fit(Recipe([]), np.zeros_like(measured), 0.0)
    ops = [get_op(k[0]) for k in chosen]
    s0 = np.array([100.0 * k[1] * c for k, c in zip(chosen, coef)])

    # Strengths refined on a quarter of the points (the motion is smooth; the cost is
    # in evaluating the ops), then the fit scored on all of them.
    m4 = B.m.reshape(-1, 2)[::REFINE_EVERY].reshape(-1)

    def solve(residual, start: np.ndarray) -> tuple[np.ndarray, float]:
        sol = least_squares(residual, np.clip(start, -100 + 1e-9, 100 - 1e-9), bounds=(-100.0, 100.0),
                            diff_step=1e-3, x_scale=30.0, max_nfev=20)
        return sol.x, float(2 * sol.cost)

    def refine(sel: list[Op], start: np.ndarray) -> tuple[np.ndarray, float]:
        return solve(lambda q: B.field(sel, q, REFINE_EVERY) - m4, start)

    def refine_one(sel: list[Op], start: np.ndarray, i: int) -> tuple[float, float]:
        """Op ``i``'s strength alone refined, the others held."""
        rest = B.field(sel[:i] + sel[i + 1:], np.delete(start, i), REFINE_EVERY) - m4
        x, err = solve(lambda q: rest + B.field([sel[i]], q, REFINE_EVERY), start[i:i + 1])
        return float(x[0]), err

    strengths, err = refine(ops, s0)
    # The linear selection can split one op's non-linear motion over two correlated ops
    # (eyes enlarged read as eyes enlarged less plus widened); with strengths refined,
    # an op stays only if the others cannot make up for it, by the rule it joined by.
    share = float(m4 @ m4) / max(energy, 1e-12)      # the refinement points' share of the energy
    keys = {op.name: k for op, k in zip(ops, chosen)}
    for name in [ops[i].name for i in np.argsort(np.abs(strengths))]:
        if len(ops) == 1:
            break
        j = [op.name for op in ops].index(name)
        rest = ops[:j] + ops[j + 1:]
        q, err_q = refine(rest, np.delete(strengths, j))
        need = max(min(MIN_GAIN * energy, LOCAL_GAIN * B.local[keys[name]]), NOISE_GAIN * energy)
        if err_q - err < need * share:
            ops, strengths, err = rest, q, err_q
    ops, strengths, err = _swap_confusable(B, ops, strengths, err, keys, refine, refine_one)
    p = np.where(np.abs(strengths) < min_strength, 0.0, strengths)
    r = B.field(ops, p) - B.m
    explained = float(np.clip(1.0 - float(r @ r) / energy, 0.0, 1.0))
    full = np.zeros(measured.size)
    full.reshape(-1, 2)[B.idx] = (r + B.m).reshape(-1, 2)
    keep = sorted((i for i in range(len(ops)) if p[i] != 0.0), key=lambda i: -abs(p[i]))
    recipe = Recipe([Step(ops[i].name, round(float(p[i]), 1)) for i in keep])
    return Fit(recipe, full.reshape(measured.shape).astype(np.float32), explained)
