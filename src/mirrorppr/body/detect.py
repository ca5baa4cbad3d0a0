"""Finding the person's body: MediaPipe's 33 pose keypoints and a person mask, offline.

MediaPipe 0.10's legacy Pose (``model_complexity=1``, the model inside the wheel; 0 and 2
would download theirs) gives the keypoints and, with ``enable_segmentation``, the
person's mask. It runs on a working copy of the photo (the model sees 256 px anyway) and
the result is mapped back to the photo's pixels. Pose finds one person per image: in a
photo of several, it runs on the region below the analysed face, and its nose must fall
on that face, so the body found is the face's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..landmarks.backends import quiet_native_stderr

#: The pose model works on a copy of the photo at most this long (pixels).
WORK_SIDE = 1024
#: A keypoint counts as visible above this visibility score.
VISIBLE = 0.5
#: Pose keypoint indices (MediaPipe's numbering).
NOSE, L_EAR, R_EAR = 0, 7, 8
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28

_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        import mediapipe as mp

        with quiet_native_stderr():
            _MODEL = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                           enable_segmentation=True, min_detection_confidence=0.5)
            _MODEL.process(np.zeros((64, 64, 3), np.uint8))
    return _MODEL


@dataclass(frozen=True)
class Body:
    """One person's pose keypoints (photo pixels) with their visibility, and the person
    mask (float in [0, 1]) at ``mask_scale`` mask pixels per photo pixel."""

    keypoints: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray = field(repr=False)
    mask_scale: float
    size: tuple[int, int]

    def visible(self, *ids: int) -> bool:
        return bool(all(self.visibility[i] >= VISIBLE for i in ids))

    @property
    def unit(self) -> float:
        """The body's scale in pixels: its shoulder width, or the trunk's length (a
        person seen from the side has narrow shoulders) when that is larger."""
        k = self.keypoints
        shoulders = float(np.hypot(*(k[L_SHOULDER] - k[R_SHOULDER])))
        trunk = float(np.hypot(*((k[L_SHOULDER] + k[R_SHOULDER]) / 2 - (k[L_HIP] + k[R_HIP]) / 2)))
        return max(shoulders, 0.6 * trunk, 1.0)

    def mask_at(self, pts: np.ndarray) -> np.ndarray:
        """Mask values at photo points (N, 2), bilinear (0 past the photo)."""
        return self.sample(self.mask, pts, cv2.BORDER_CONSTANT)

    def sample(self, grid: np.ndarray, pts: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """Values of a map laid out like the mask (``mask_scale`` cells per photo pixel)
        at photo points (N, 2), bilinear."""
        p = (np.asarray(pts, np.float32).reshape(-1, 2) + 0.5) * self.mask_scale - 0.5
        n = len(p)
        cols = 1024                          # cv2.remap wants a 2-D map: points in rows
        rows = max(1, -(-n // cols))
        mx = np.zeros(rows * cols, np.float32)
        my = np.zeros(rows * cols, np.float32)
        mx[:n], my[:n] = p[:, 0], p[:, 1]
        out = cv2.remap(grid, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR,
                        borderMode=border, borderValue=0)
        return out.reshape(-1)[:n]

    def scaled(self, k: float, size: tuple[int, int]) -> "Body":
        """The same body for the photo resized by ``k``."""
        return Body(self.keypoints * k, self.visibility, self.mask, self.mask_scale / k, size)


def _region(face_box, size) -> tuple[int, int, int, int]:
    """Where a face's body can be: a few face widths to each side, down to the feet."""
    x0, y0, x1, y1 = face_box
    w, h = x1 - x0, y1 - y0
    W, H = size
    return (int(max(0, x0 - 3.5 * w)), int(max(0, y0 - 1.0 * h)),
            int(min(W, x1 + 3.5 * w)), int(min(H, y1 + 10.0 * h)))


def find_body(rgb: np.ndarray, face_box: tuple[float, float, float, float] | None = None) -> Body | None:
    """The body of the person whose face is ``face_box`` (photo pixels; None: the one
    person Pose finds), or None when no body is found."""
    H, W = rgb.shape[:2]
    x0, y0, x1, y1 = _region(face_box, (W, H)) if face_box is not None else (0, 0, W, H)
    crop = rgb[y0:y1, x0:x1]
    k = min(1.0, WORK_SIDE / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else crop
    with quiet_native_stderr():
        res = _model().process(np.ascontiguousarray(small))
    if res.pose_landmarks is None:
        return None
    h, w = small.shape[:2]
    lm = res.pose_landmarks.landmark
    pts = np.array([[p.x * w, p.y * h] for p in lm], np.float64) / k + np.array([x0, y0])
    vis = np.array([p.visibility for p in lm], np.float64)
    if face_box is not None:
        fx0, fy0, fx1, fy1 = face_box
        m = 0.25 * (fx1 - fx0)
        if not (fx0 - m <= pts[NOSE, 0] <= fx1 + m and fy0 - m <= pts[NOSE, 1] <= fy1 + m):
            return None            # someone else's body
    # The mask, placed back into a photo-shaped canvas at the working scale.
    seg = res.segmentation_mask if res.segmentation_mask is not None else np.zeros((h, w), np.float32)
    mh, mw = int(round(H * k)), int(round(W * k))
    mask = np.zeros((mh, mw), np.float32)
    ox, oy = int(round(x0 * k)), int(round(y0 * k))
    sh, sw = min(seg.shape[0], mh - oy), min(seg.shape[1], mw - ox)
    mask[oy:oy + sh, ox:ox + sw] = seg[:sh, :sw]
    return Body(pts, vis, mask, k, (W, H))
