"""Data self-augmentation: one spatial augmentation A applied to both images of a pair.

From a single retouched pair (source Xs, target Xt) the paper builds a training
quadruplet (Xs, Xt, query = A(Xs), ground truth = A(Xt)): the operation between query and
ground truth is exactly the exemplar's, carried through A, while the coordinates differ,
so a model cannot solve the task by copying pixel differences.

A: a crop covering 55-100% of the image area with aspect ratio in [1/3, 3], a rotation in
{-15, -10, ..., 15} degrees, an optional horizontal flip, then a resize to a size bucket.
It is one affine map, applied to both images with the same interpolation. Draws are
deterministic in (seed, sample id).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

AREA = (0.55, 1.0)
ASPECT = (1 / 3, 3.0)
ANGLES = tuple(range(-15, 16, 5))
#: Output size buckets (w, h) by aspect: the loader batches samples of one bucket.
BUCKETS = ((512, 512), (448, 576), (576, 448), (384, 640), (640, 384))


@dataclass(frozen=True)
class Augment:
    """Parameters of one draw of A, in the source image's pixel coordinates."""

    cx: float          # crop centre
    cy: float
    w: float           # crop size before rotation
    h: float
    angle: float       # degrees, counter-clockwise
    flip: bool
    out_w: int
    out_h: int

    def matrix(self) -> np.ndarray:
        """2x3 affine map from source pixels to output pixels."""
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        sx, sy = self.out_w / self.w, self.out_h / self.h
        # Source -> crop frame (centred, rotated) -> output pixels.
        R = np.array([[c, -s], [s, c]])
        S = np.diag([sx * (-1 if self.flip else 1), sy])
        L = S @ R.T
        t = np.array([self.out_w / 2, self.out_h / 2]) - L @ np.array([self.cx, self.cy])
        return np.hstack([L, t[:, None]])

    def apply(self, img: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        flags = interpolation
        out = cv2.warpAffine(img, self.matrix(), (self.out_w, self.out_h), flags=flags,
                             borderMode=cv2.BORDER_REFLECT_101)
        return out[..., None] if img.ndim == 3 and out.ndim == 2 else out

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Carry points (N, 2) of the source image into the output."""
        M = self.matrix()
        return np.asarray(pts, float) @ M[:, :2].T + M[:, 2]

    def vectors(self, vec: np.ndarray) -> np.ndarray:
        """Carry displacement vectors (..., 2) through A's linear part."""
        return np.asarray(vec, float) @ self.matrix()[:, :2].T

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Augment":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def rng_for(seed: int, sample_id: str) -> np.random.Generator:
    """A generator that depends only on (seed, sample id): reproducible anywhere."""
    h = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def draw(seed: int, sample_id: str, size: tuple[int, int],
         buckets: tuple[tuple[int, int], ...] = BUCKETS) -> Augment:
    """Draw A for an image of ``size`` (w, h)."""
    W, H = size
    rng = rng_for(seed, sample_id)
    for _ in range(50):
        area = rng.uniform(*AREA) * W * H
        aspect = math.exp(rng.uniform(math.log(ASPECT[0]), math.log(ASPECT[1])))
        w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if w <= W and h <= H:
            break
    else:
        w, h = float(W), float(H)
    cx = rng.uniform(w / 2, W - w / 2)
    cy = rng.uniform(h / 2, H - h / 2)
    angle = float(rng.choice(ANGLES))
    flip = bool(rng.integers(0, 2))
    # The bucket whose aspect is closest to the crop's.
    out_w, out_h = min(buckets, key=lambda b: abs(math.log((b[0] / b[1]) / (w / h))))
    return Augment(float(cx), float(cy), float(w), float(h), angle, flip, int(out_w), int(out_h))


def quadruplet(source: np.ndarray, target: np.ndarray, aug: Augment) -> dict[str, np.ndarray]:
    """(source, target, query = A(source), ground truth = A(target))."""
    return {"source": source, "target": target, "query": aug.apply(source),
            "ground_truth": aug.apply(target)}
