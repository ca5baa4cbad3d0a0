"""Checking each way of transferring an edit on the exemplar itself.

Before an operation touches a query, every candidate transfer (the fitted recipe, the
recipe plus the motion it leaves, the motion itself, the paper's procedure) is applied to
the exemplar's own before photo, through the same engines a query goes through, and
scored against its (registered) after photo where the photo changed. A candidate that
cannot reproduce its own exemplar will not reproduce it on anyone else.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..eval.metrics import psnr
from ..landmarks import Face
from .operation import Candidate

#: The check runs on a copy of the exemplar at most this long (pixels).
CHECK_SIDE = 2048
#: A pixel "changed" when some channel differs by more than this (8-bit levels) after a
#: light blur; the region is then widened a little, as the evaluation's edit region is.
CHANGE_LEVELS = 6


@dataclass
class Trial:
    """The exemplar, prepared for trying candidates on it."""

    source: np.ndarray          # the before photo (8-bit RGB), at the check's size
    target: np.ndarray          # the registered after photo, same frame
    mask: np.ndarray            # where the photo changed
    face: Face                  # the before photo's face, in these pixels
    scale: float                # check pixels per photo pixel
    base_psnr: float            # the before photo itself, against the after photo

    @classmethod
    def of(cls, source: np.ndarray, target: np.ndarray, valid: np.ndarray, face: Face,
           max_side: int = CHECK_SIDE) -> "Trial":
        k = min(1.0, max_side / max(source.shape[:2]))
        if k < 1.0:
            size = (max(1, int(round(source.shape[1] * k))), max(1, int(round(source.shape[0] * k))))
            source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
            target = cv2.resize(target, size, interpolation=cv2.INTER_AREA)
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            face = Face(points=face.points * k, backend=face.backend)
        mask = changed_region(source, target) & valid
        base = psnr(target, source, mask) if mask.any() else 99.0
        return cls(source, target, mask, face, k, base)

    @property
    def any_change(self) -> bool:
        return bool(self.mask.any())

    def score(self, name: str, out: np.ndarray) -> Candidate:
        """How well ``out`` (a rendering of the before photo) reproduces the after photo."""
        p = psnr(self.target, out[..., :3], self.mask)
        return Candidate(name, p, p - self.base_psnr)

    def reproduced(self, candidate: Candidate) -> float:
        """Share of the before->after difference (its energy, where the photo changed)
        that a candidate removes: 1 = the after photo exactly, 0 = no better than nothing."""
        return float(np.clip(1.0 - 10 ** (-candidate.gain_db / 10.0), 0.0, 1.0))


def changed_region(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pixels where the after photo differs from the before photo, slightly widened."""
    diff = np.abs(cv2.GaussianBlur(source, (3, 3), 0).astype(np.int16)
                  - cv2.GaussianBlur(target, (3, 3), 0).astype(np.int16)).max(axis=2)
    mask = (diff > CHANGE_LEVELS).astype(np.uint8)
    k = max(3, int(0.01 * min(source.shape[:2])) | 1)
    return cv2.dilate(mask, np.ones((k, k), np.uint8)) > 0
