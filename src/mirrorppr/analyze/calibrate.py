"""One gain for the measured motion, chosen on the exemplar.

Optical flow reads motion short: its regularisation spreads a stroke over flat skin and
the noise floor cuts the stroke's faint tails, so the measured field is a smoothed copy
of the true one, often 10-25% too weak (an "Enlarge eyes +80" measures as about +65).
Fitting ops to it, or carrying it, inherits that. The exemplar shows how strong the edit
really is: the field is rendered onto the before photo at a few gains and the one that
best reproduces the after photo is kept.
"""
from __future__ import annotations

from typing import Callable

from .operation import Candidate

#: Gains tried, outward from 1 (a measurement is short far more often than long).
UP = (1.15, 1.3, 1.45, 1.6)
DOWN = (0.9, 0.8)
#: A gain other than 1 must improve the reproduction by this much (dB) to be kept.
MIN_IMPROVEMENT_DB = 0.05


def best_gain(score: Callable[[float], Candidate]) -> tuple[float, Candidate]:
    """The gain (from :data:`UP` / :data:`DOWN`, refined between the best's neighbours)
    whose rendering ``score`` rates best (PSNR), with that rendering's score: the
    candidate the check would give it, so it need not be rendered again."""
    tried = {1.0: score(1.0)}

    def db(k: float) -> float:
        return tried[k].psnr_db

    for ladder in (UP, DOWN):
        for k in ladder:
            tried[k] = score(k)
            if db(k) <= max(db(g) for g in tried if g != k):
                break
        if max(tried, key=db) != 1.0:
            break                      # it went up: no need to look down
    ks = sorted(tried)
    best = max(ks, key=db)
    i = ks.index(best)
    if 0 < i < len(ks) - 1:
        # The vertex of the parabola through the best and its neighbours.
        (a, fa), (b, fb), (c, fc) = ((k, db(k)) for k in ks[i - 1:i + 2])
        den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
        if den != 0:
            v = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den
            if a < v < c:
                tried[v] = score(v)
                if db(v) > db(best):
                    best = v
    if db(best) < db(1.0) + MIN_IMPROVEMENT_DB:
        best = 1.0
    return best, tried[best]
