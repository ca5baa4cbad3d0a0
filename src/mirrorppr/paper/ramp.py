"""Reading an exemplar as the paper's simulator made it: op strengths fitted beside the
resampling nuisance of its procedure.

The paper's warp upsamples a coarse sampling map in a way that also shifts content
inside each op's mask by a linear ramp, k * (x - x0), whose slope and zero depend on the
resolution and framing the exemplar was edited at (the full photo, or an aligned crop
pasted back). That shift does not scale with strength and is unknown for a given
exemplar. The fit models it inside the masks of the selected ops, with the zero where an
edit of this very photo puts it and either that edit's slope or a free one (kept only
when it explains clearly more), and measures each op's own motion apart from it. It
prefers the paper's eight ops when they explain about as much as the whole library.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from ..analyze.fit import OpMotions, grid_pixels, op_grid, points_for
from ..analyze.normalize import Frame
from ..ops.base import Geometry, Op, get_op, ops_in
from ..ops.recipe import Recipe, Step
from ..warp.field import moving


#: Largest nuisance ramp slope: an edit made at >= ~256 px working size.
MAX_SLOPE = 0.15
#: How much more of the motion a free-slope ramp must explain to be preferred.
FREE_SLOPE_MARGIN = 0.03
#: Keep the preferred (LLW-only) fit unless the full library explains this much more.
PREFER_MARGIN = 0.05


def _pure(geom: Geometry, paper: bool = False) -> Geometry:
    """The op's own motion: as a clean warp (face-scaled grid), or ``paper``: on the
    spec's coarse grid, without its upsampling ramp (the ramp is modelled apart)."""
    if not geom.spec_grid:
        return geom
    return replace(geom, spec_ramp=False) if paper else replace(geom, spec_grid=False)


@dataclass
class PaperFit:
    recipe: Recipe
    predicted: np.ndarray     # the recipe's motion on the grid (nuisance ramp included)
    explained: float          # share of the measured motion's energy the fit explains
    ramp_slope: float = 0.0   # slope of the resampling nuisance ramp (0.029 = 1024 px edit)
    llw_alternative: "PaperFit | None" = None   # the paper-ops-only fit, when one was made


class _Problem:
    """Precomputed pieces of one fit: bases and nuisance ramps, on the grid points where
    anything moves (measured or predicted by some op)."""

    def __init__(self, points, size, measured, frame, families):
        self.points, self.size, self.frame = points, size, frame
        px_all, _ = grid_pixels(frame)
        m_all = measured.reshape(-1, 2)
        self.ops: list[Op] = [op for fam in families for op in ops_in(fam)]
        raw: dict[tuple[str, float], np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        support = moving(m_all, 0.0)
        for op in self.ops:
            for sign in (1.0, -1.0):
                geom = op.geometry(points_for(op, points), 100.0 * sign)
                g, mask = op_grid(_pure(geom), size, frame, with_mask=True)
                g = g.reshape(-1, 2)
                if float((g * g).sum()) > 1e-12:
                    raw[(op.name, sign)] = g
                    support |= moving(g, 0.0)
                if geom.spec_grid and op.name not in masks and mask.any():
                    masks[op.name] = mask
        self.idx = np.nonzero(support)[0]
        self.px = px_all[self.idx]
        self._motions = {paper: OpMotions(points, size, frame, self.px, lambda g, p=paper: _pure(g, p))
                         for paper in (False, True)}
        self.m = m_all[self.idx].reshape(-1).astype(np.float64)
        self.basis = {k: g[self.idx].reshape(-1).astype(np.float64) for k, g in raw.items()}
        # The ramp's zero: where the spec's full-photo grid puts it, (W - nodes) / 2.
        W, H = size
        zero = np.array([(W - (W // 30 + 1)) / 2.0, (H - (H // 30 + 1)) / 2.0])
        rel = (self.px - zero) / 100.0
        ex, ey = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        self.ramps = {n: np.stack([frame.vec_to_norm(v * mk[self.idx, None]).reshape(-1)
                                   for v in (rel, ex[None, :], ey[None, :])], axis=1)
                      for n, mk in masks.items()}
        self.zero = zero
        # Gram matrix of every column, so each trial fit of the selection is a tiny solve.
        self.keys = list(self.basis)
        self.ramp_names = list(self.ramps)
        Z = np.column_stack([self.basis[k] for k in self.keys]
                            + [self.ramps[n][:, t] for n in self.ramp_names for t in range(3)]) if self.keys else np.zeros((len(self.m), 0))
        self.G = Z.T @ Z
        self.b = Z.T @ self.m
        self.mm = float(self.m @ self.m)

    def solve(self, sel: list[tuple[str, float]]) -> tuple[np.ndarray, float]:
        """Bounded least squares of the measured motion on the selected op bases plus the
        nuisance ramp of their masks: coefficients and residual energy."""
        K = len(self.keys)
        cols = [self.keys.index(k) for k in sel]
        ramps = [self.ramp_names.index(k[0]) for k in sel if k[0] in self.ramps]
        T = np.zeros((self.G.shape[0], len(cols) + (3 if ramps else 0)))
        for j, c in enumerate(cols):
            T[c, j] = 1.0
        for r in ramps:
            for t in range(3):
                T[K + 3 * r + t, len(cols) + t] = 1.0
        H = T.T @ self.G @ T
        c = T.T @ self.b
        n_ops = len(cols)
        lo = np.r_[np.zeros(n_ops), [0.0, -50.0, -50.0] if ramps else []]
        hi = np.r_[np.ones(n_ops), [MAX_SLOPE * 100, 50.0, 50.0] if ramps else []]
        L = np.linalg.cholesky(H + np.eye(len(H)) * (1e-9 * max(1.0, float(np.trace(H)))))
        rhs = np.linalg.solve(L, c)
        x = lsq_linear(L.T, rhs, bounds=(lo, hi), method="bvls").x
        err = self.mm - 2 * float(c @ x) + float(x @ H @ x)
        return x, max(err, 0.0)

    def nuisance(self, names) -> np.ndarray | None:
        cols = [self.ramps[n] for n in names if n in self.ramps]
        return np.sum(cols, axis=0) if cols else None

    def field(self, ops: list[Op], strengths, paper: bool = False) -> np.ndarray:
        return self._motions[paper].sum(ops, strengths)


def fit_paper_recipe(points: np.ndarray, size: tuple[int, int], measured: np.ndarray, frame: Frame,
               families: tuple[str, ...] = ("llw", "pro"), max_ops: int = 5,
               min_gain: float = 0.004, min_strength: float = 4.0,
               prefer: tuple[str, ...] = ("llw",)) -> PaperFit:
    """Fit a recipe to ``measured`` (normalised grid motion of the exemplar)."""
    energy = float((measured.astype(np.float64) ** 2).sum())
    if energy < 1e-10:
        return PaperFit(Recipe([]), np.zeros_like(measured), 1.0)
    P = _Problem(np.asarray(points, float), size, measured, frame, families)
    m = P.m
    keys = list(P.basis)

    def _fit(keys: list[tuple[str, float]]) -> PaperFit:
        chosen: list[tuple[str, float]] = []
        best_err = energy
        coef = np.zeros(0)
        while len(chosen) < max_ops:
            used = {k[0] for k in chosen}
            trials = []
            for k in keys:
                if k[0] in used:
                    continue
                x, err = P.solve(chosen + [k])
                trials.append((err, k, x))
            if not trials:
                break
            err, k, x = min(trials, key=lambda t: t[0])
            if best_err - err < min_gain * energy:
                break
            chosen.append(k)
            best_err, coef = err, x
        if not chosen:
            return PaperFit(Recipe([]), np.zeros_like(measured), 0.0)

        ops = [get_op(k[0]) for k in chosen]
        n = len(ops)
        s0 = np.array([100.0 * k[1] * c for k, c in zip(chosen, coef[:n])])
        nz = P.nuisance([op.name for op in ops])
        W = size[0]
        direct = 100.0 / (W // 30)      # the slope of an edit made on this very photo

        def refine(free_slope: bool | None):
            """free_slope: None = no ramp, False = the direct slope, True = fitted."""
            ramp = nz is not None and free_slope is not None

            def residual(p):
                pred = P.field(ops, p[:n], paper=ramp)
                if ramp:
                    pred = pred + (nz @ p[n:n + 3] if free_slope else nz[:, 0] * direct)
                return pred - m
            lo, hi, p0 = np.full(n, -100.0), np.full(n, 100.0), s0.copy()
            if nz is not None and free_slope:
                lo, hi = np.r_[lo, 0.0, -50.0, -50.0], np.r_[hi, MAX_SLOPE * 100, 50.0, 50.0]
                p0 = np.r_[p0, coef[n:n + 3] if len(coef) >= n + 3 else [direct, 0.0, 0.0]]
            p0 = np.clip(p0, lo + 1e-9, hi - 1e-9)
            sol = least_squares(residual, p0, bounds=(lo, hi), diff_step=1e-3,
                                x_scale=np.r_[np.full(n, 30.0), np.full(len(p0) - n, 3.0)], max_nfev=30)
            p = sol.x.copy()
            small = np.abs(p[:n]) < min_strength
            if ramp:
                # With the paper's ramp an op is present even if its own motion fits ~0
                # (the ramp comes with it): keep it, at a token strength of its sign.
                p[:n][small] = np.where(s0[small] >= 0, min_strength, -min_strength)
            else:
                p[:n][small] = 0.0
            r = residual(p)
            slope = (p[n] if free_slope else direct) / 100.0 if ramp else 0.0
            if free_slope and ramp and abs(p[n]) < 1e-9 and np.abs(p[n + 1:n + 3]).max() > 0:
                slope = 1e-4       # a pure shift inside the masks: still the paper's procedure
            return 1.0 - float(r @ r) / energy, p[:n], r + m, slope

        # Simplest first: no ramp (a clean warp, e.g. a retoucher's liquify), then the ramp
        # of the paper's procedure run on this very photo, then a free slope (an aligned crop
        # pasted back). A richer model must explain clearly more to be kept.
        best = refine(None)
        if nz is not None:
            for cand in (refine(False), refine(True)):
                if cand[0] > best[0] + FREE_SLOPE_MARGIN:
                    best = cand
        explained, strengths_all, pred, slope = best
        explained = float(np.clip(explained, 0.0, 1.0))
        keep = [i for i in range(n) if strengths_all[i] != 0.0]
        ops = [ops[i] for i in keep]
        strengths = [float(strengths_all[i]) for i in keep]
        full = np.zeros(measured.size)
        full.reshape(-1, 2)[P.idx] = pred.reshape(-1, 2)
        order = np.argsort([-abs(s) for s in strengths])
        recipe = Recipe([Step(ops[i].name, round(strengths[i], 1)) for i in order])
        return PaperFit(recipe, full.reshape(measured.shape).astype(np.float32), explained, float(slope))

    fit = _fit(keys)
    if prefer and set(prefer) != set(families):
        # Prefer the smaller vocabulary (the paper's ops) when it explains about as much.
        simple = _fit([k for k in keys if get_op(k[0]).family in prefer])
        if simple.explained >= fit.explained - PREFER_MARGIN:
            fit = simple
        else:
            fit.llw_alternative = simple
    return fit
