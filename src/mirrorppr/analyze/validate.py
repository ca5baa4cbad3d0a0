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

from ..eval.metrics import pixel_difference, psnr
from ..landmarks import Face
from .normalize import face_region_mask
from .operation import Candidate

#: The check runs on a copy of the exemplar at most this long (pixels).
CHECK_SIDE = 2048
#: A pixel "changed" when some channel differs by more than this (8-bit levels), as in
#: the evaluation's edit region (small differences are re-encoding and resampling noise,
#: which no transfer should chase); the region is then widened a little. Subtle edits
#: that change no pixel that much are judged at the lower level.
CHANGE_LEVELS = 12
SUBTLE_LEVELS = 6
MIN_REGION = 200


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
           moved: np.ndarray | None = None, max_side: int = CHECK_SIDE) -> "Trial":
        """``moved``: where the photo moved visibly (a boolean map of any size), so that
        a sub-pixel resampling of the whole photo (a re-export, a pasted crop) is not
        counted as part of the edit."""
        k = min(1.0, max_side / max(source.shape[:2]))
        size = (max(1, int(round(source.shape[1] * k))), max(1, int(round(source.shape[0] * k))))
        if k < 1.0:
            source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
            target = cv2.resize(target, size, interpolation=cv2.INTER_AREA)
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            face = Face(points=face.points * k, backend=face.backend)
        # Face candidates are judged where they act: on and around the face.
        mask = changed_region(source, target) & valid & face_region_mask(face.points, source.shape)
        if moved is not None:
            near = cv2.resize(moved.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            if (mask & near).sum() >= MIN_REGION:
                mask &= near
        base = psnr(target, source, mask) if mask.any() else 99.0
        return cls(source, target, mask, face, k, base)

    @property
    def any_change(self) -> bool:
        return bool(self.mask.any())

    def score(self, name: str, out: np.ndarray) -> Candidate:
        """How well ``out`` (a rendering of the before photo) reproduces the after photo,
        allowing each candidate the same sub-pixel shift: an after photo whose region
        around the face was resampled (a crop pasted back, a re-export) differs from every
        rendering by that much, which is not the edit."""
        out = np.ascontiguousarray(out[..., :3])
        p = psnr(self.target, out, self.mask)
        shifted = _shift(out, self._offset(out))
        if shifted is not None:
            p = max(p, psnr(self.target, shifted, self.mask))
        return Candidate(name, p, p - self.base_psnr)

    def _offset(self, out: np.ndarray) -> tuple[float, float]:
        """The sub-pixel shift that best aligns ``out`` to the after photo around the face."""
        x0, y0, x1, y1 = (int(v) for v in self.face.box)
        m = int(0.3 * max(x1 - x0, y1 - y0))
        H, W = self.target.shape[:2]
        sl = np.s_[max(0, y0 - m):min(H, y1 + m), max(0, x0 - m):min(W, x1 + m)]
        a = cv2.cvtColor(self.target[sl], cv2.COLOR_RGB2GRAY).astype(np.float32)
        b = cv2.cvtColor(out[sl], cv2.COLOR_RGB2GRAY).astype(np.float32)
        if min(a.shape) < 16:
            return 0.0, 0.0
        win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(b, a, win)
        return float(dx), float(dy)

    def reproduced(self, candidate: Candidate) -> float:
        """Share of the before->after difference (its energy, where the photo changed)
        that a candidate removes: 1 = the after photo exactly, 0 = no better than nothing."""
        return float(np.clip(1.0 - 10 ** (-candidate.gain_db / 10.0), 0.0, 1.0))


#: Largest shift a candidate is allowed when scored (pixels).
MAX_SHIFT = 1.0


def _shift(img: np.ndarray, offset: tuple[float, float]) -> np.ndarray | None:
    dx, dy = offset
    if np.hypot(dx, dy) < 0.05 or np.hypot(dx, dy) > MAX_SHIFT:
        return None
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def changed_region(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pixels where the after photo differs from the before photo, slightly widened."""
    diff = pixel_difference(source, target)
    mask = (diff > CHANGE_LEVELS).astype(np.uint8)
    if mask.sum() < MIN_REGION:
        blur = pixel_difference(cv2.GaussianBlur(source, (3, 3), 0), cv2.GaussianBlur(target, (3, 3), 0))
        mask = (blur > SUBTLE_LEVELS).astype(np.uint8)
    k = max(3, int(0.01 * min(source.shape[:2])) | 1)
    return cv2.dilate(mask, np.ones((k, k), np.uint8)) > 0
