"""Completing a measured motion where the photo cannot show it.

Optical flow sees motion only where the photo has texture: a smooth cheek pushed by a
liquify brush barely changes its pixels, and past the photo's borders nothing is seen at
all. On the exemplar itself that does not matter (what cannot be seen need not be
reproduced), but another face may have texture exactly there. So the motion is completed
as a retoucher's brush would have made it, smoothly: the field that stays close to the
measurement where it is trusted and is as smooth as possible elsewhere (a membrane), with
a slight pull to zero so that it fades away from any evidence. It is then limited to
where pixels changed and their surroundings (and the unseen borders).
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

#: Smoothness against data: low, so that trusted measurements are kept as they are.
SMOOTHNESS = 0.05
#: How far motion spreads into places with no evidence before fading (grid cells).
FILL = 20.0
#: The pull towards zero that gives that reach.
DECAY = SMOOTHNESS / FILL ** 2
#: Measurements trusted at least this much are kept as measured.
TRUSTED = 0.3
#: Motion is kept this far around changed pixels (grid cells), fading over as much again.
SUPPORT = 12


@lru_cache(maxsize=4)
def _laplacian(shape: tuple[int, int]) -> sp.csr_matrix:
    """The 4-neighbour graph Laplacian of a grid."""
    nv, nu = shape
    idx = np.arange(nv * nu).reshape(nv, nu)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    n = nv * nu
    adj = sp.coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    return (sp.diags(np.asarray(adj.sum(1)).ravel()) - adj).tocsr()


def complete(d: np.ndarray, trust: np.ndarray, support: np.ndarray) -> np.ndarray:
    """The smooth field closest to ``d`` (nv, nu, 2) where ``trust`` (nv, nu) is high,
    limited to ``support`` (nv, nu; 1 where motion may be)."""
    if not (support > 0).any():
        return np.zeros_like(d)
    # Solved on a grid half as fine (the filled motion is smooth), then trusted
    # measurements are kept at full resolution and the fill used where trust is low.
    h, w = trust.shape
    hs, ws = (h + 1) // 2, (w + 1) // 2
    wt = cv2.resize(trust, (ws, hs), interpolation=cv2.INTER_AREA)
    wd = cv2.resize(d * trust[..., None], (ws, hs), interpolation=cv2.INTER_AREA) / np.maximum(wt, 1e-6)[..., None]
    n = hs * ws
    wv = wt.ravel().astype(np.float64)
    # The half grid's cells are twice as large: the same smoothness per unit of face.
    A = (sp.diags(wv + DECAY * 4) + SMOOTHNESS * _laplacian((hs, ws))).tocsc()
    rhs = wd.reshape(n, 2).astype(np.float64) * wv[:, None]
    fill = sla.splu(A).solve(rhs).reshape(hs, ws, 2).astype(np.float32)
    fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)
    keep = np.clip(trust / TRUSTED, 0.0, 1.0)[..., None]
    out = d * keep + fill * (1.0 - keep)
    k = 2 * SUPPORT + 1
    grow = cv2.dilate((support > 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(grow.astype(np.float32), (k, k), 0)
    return (out * soft[..., None]).astype(np.float32)
