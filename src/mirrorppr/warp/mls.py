"""Similarity moving-least-squares (MLS) deformation, vectorised over a point grid.

For an output position v, control points ``dst`` (where features end up) and ``src``
(where they come from), the similarity MLS map f(v) gives the input position to sample:
solving in this backward direction makes every output pixel well defined.
Weights are w_i = 1 / |v - dst_i|^(2 alpha).
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-8


def mls_similarity(v: np.ndarray, dst: np.ndarray, src: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Map points ``v`` (N, 2) through the similarity MLS deformation defined by
    control pairs ``dst`` (K, 2) -> ``src`` (K, 2). Returns (N, 2) positions."""
    v = np.asarray(v, dtype=np.float64)
    p = np.asarray(dst, dtype=np.float64)
    q = np.asarray(src, dtype=np.float64)
    # Centred on the controls, so the expanded sums below lose no precision.
    c = p.mean(0)
    v, p, q = v - c, p - c, q - c
    dx = v[:, 0:1] - p[None, :, 0]
    dy = v[:, 1:2] - p[None, :, 1]
    d2 = dx * dx + dy * dy                                            # (N, K)
    w = 1.0 / ((d2 if alpha == 1.0 else d2 ** alpha) + _EPS)
    wsum = w.sum(1)
    p_star = (w @ p) / wsum[:, None]                                  # (N, 2)
    q_star = (w @ q) / wsum[:, None]
    # The weighted sums over controls of the centred products, each expanded into one
    # matrix product (sum w (p - p*)(q - q*) = sum w p q - wsum p* q*): no (N, K, 2)
    # temporaries, which made this the analysis's hottest loop.
    pp = (p * p).sum(1)
    qp = (q * p).sum(1)
    cross = q[:, 0] * p[:, 1] - q[:, 1] * p[:, 0]
    mu = w @ pp - wsum * (p_star * p_star).sum(1)                     # (N,)
    s1 = w @ qp - wsum * (q_star * p_star).sum(1)                     # rotation-scale terms
    s2 = w @ cross - wsum * (q_star[:, 0] * p_star[:, 1] - q_star[:, 1] * p_star[:, 0])
    d = v - p_star                                                    # (N, 2)
    fx = s1 * d[:, 0] + s2 * d[:, 1]
    fy = s1 * d[:, 1] - s2 * d[:, 0]
    f = np.stack([fx, fy], axis=1) / np.maximum(mu, _EPS)[:, None] + q_star
    # Where every control point coincides (mu == 0) the best map is a translation.
    degenerate = mu < _EPS
    if degenerate.any():
        f[degenerate] = v[degenerate] + (q_star - p_star)[degenerate]
    return f + c


def paper_grid(width: int, height: int, step: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """The coarse evaluation grid of the LLW spec: ``linspace(0, W, W // step + 1)``
    by ``linspace(0, H, H // step + 1)``."""
    return (np.linspace(0, width, width // step + 1), np.linspace(0, height, height // step + 1))


def mls_grid_displacement(dst: np.ndarray, src: np.ndarray, width: int, height: int,
                          step: int = 30, alpha: float = 1.0) -> np.ndarray:
    """Backward displacement (gh, gw, 2) on the paper's coarse grid: f(v) - v."""
    xs, ys = paper_grid(width, height, step)
    gx, gy = np.meshgrid(xs, ys)
    v = np.stack([gx.ravel(), gy.ravel()], axis=1)
    f = mls_similarity(v, dst, src, alpha)
    return (f - v).reshape(len(ys), len(xs), 2)
