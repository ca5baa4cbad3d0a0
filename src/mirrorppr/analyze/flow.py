"""Measuring what moved between an exemplar's before and after photos.

The two photos are the same pixels, moved: dense optical flow (OpenCV DIS) between
them is precise. It is measured on a crop around the face, rescaled to a standard face
size, after matching the after photo's brightness to the before photo's (real pairs carry
small exposure and JPEG differences). Motion is kept only where the pixels changed, so
untouched areas measure exactly zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..warp.field import Field

#: Faces are measured at this size (pixels of landmark extent).
FACE_PX = 512
#: Crop side as a multiple of the face size.
CROP = 3.4
#: A pixel "changed" if some channel differs by more than this (8-bit levels), after
#: brightness matching and a light blur.
CHANGE_LEVELS = 6.0
#: Forward-backward disagreement (pixels at the measuring scale) above which a flow
#: vector is not trusted.
FB_TOLERANCE = 1.0
#: Largest motion kept, as a fraction of the face size.
MAX_MOTION = 0.08
#: Motion smaller than this (pixels at the measuring scale) is noise.
MIN_MOTION = 0.15
#: ...and so is motion below this many pixels of the photo itself (a small face measured
#: upsampled does not gain sub-pixel precision); faded in softly up to twice that.
MIN_MOTION_PHOTO_PX = 0.1


@dataclass
class FlowMeasure:
    """Backward flow ``d`` on a crop (target(x) = source(x + d)), in crop pixels."""

    d: np.ndarray               # (h, w, 2)
    changed: np.ndarray         # (h, w) float weights in [0, 1]
    origin: np.ndarray          # crop (x0, y0) in image pixels
    scale: float                # crop pixels per image pixel
    image_size: tuple[int, int]

    def to_grid(self, frame) -> np.ndarray:
        """Sampled on the normalised grid of ``frame`` (vectors in normalised units)."""
        from .normalize import grid_points, remap_points

        uv = grid_points()
        px = frame.to_pixels(uv.reshape(-1, 2))
        c = (px - self.origin) * self.scale
        d = remap_points(self.d, c[:, 0], c[:, 1]) / self.scale
        return frame.vec_to_norm(d).reshape(uv.shape).astype(np.float32)

    def to_field(self, working: int = 1024) -> Field:
        """As a Field over the whole source image (image-pixel vectors)."""
        W, H = self.image_size
        k = min(1.0, working / max(W, H))
        w, h = max(2, int(round(W * k))), max(2, int(round(H * k)))
        ux, uy = W / w, H / h
        xs = ((np.arange(w) + 0.5) * ux - 0.5 - self.origin[0]) * self.scale
        ys = ((np.arange(h) + 0.5) * uy - 0.5 - self.origin[1]) * self.scale
        mx, my = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
        d = cv2.remap(self.d, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return Field((d / self.scale).astype(np.float32), (W, H))


def _crop(rgb: np.ndarray, centre: np.ndarray, side: float, scale: float) -> np.ndarray:
    x0, y0 = centre - side / 2
    n = int(round(side * scale))
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(rgb, m, (n, n), flags=interp, borderMode=cv2.BORDER_REFLECT)


def _match_brightness(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Per-channel gain/offset so the target's statistics match the source's."""
    s = src.reshape(-1, 3).astype(np.float32)
    t = tgt.reshape(-1, 3).astype(np.float32)
    gain = s.std(0) / np.maximum(t.std(0), 1e-3)
    gain = np.clip(gain, 0.8, 1.25)
    out = (t - t.mean(0)) * gain + s.mean(0)
    return np.clip(out, 0, 255).reshape(tgt.shape).astype(np.uint8)


def measure_flow(source: np.ndarray, target: np.ndarray, face_box: tuple[float, float, float, float]
                 ) -> FlowMeasure:
    """Backward flow from target to source around the face (8-bit RGB, same size)."""
    H, W = source.shape[:2]
    x0, y0, x1, y1 = face_box
    size = max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    side = size * CROP
    scale = FACE_PX / size
    s = _crop(source, centre, side, scale)
    t = _match_brightness(s, _crop(target, centre, side, scale))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gs = cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)
    gt = cv2.cvtColor(t, cv2.COLOR_RGB2GRAY)
    d = dis.calc(gt, gs, None)
    # Forward-backward check: where following the flow and coming back misses by more
    # than a pixel, the measurement is unreliable (occlusion, flat or changed texture).
    back = dis.calc(gs, gt, None)
    hh, ww = d.shape[:2]
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    back_at = cv2.remap(back, gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    fb = np.hypot(*(d + back_at).transpose(2, 0, 1))
    reliable = (fb < FB_TOLERANCE).astype(np.float32)
    # Fill unreliable spots from reliable neighbours (normalised smoothing), so the field
    # stays smooth instead of carrying outliers to another face.
    r = max(3, int(0.04 * FACE_PX)) | 1
    num = cv2.GaussianBlur(d * reliable[..., None], (r, r), 0)
    den = cv2.GaussianBlur(reliable, (r, r), 0)[..., None]
    d = np.where(reliable[..., None] > 0, d, num / np.maximum(den, 1e-3) * (den > 0.05))
    # Bounded: no retouching moves features by more than a fraction of the face.
    mag = np.hypot(d[..., 0], d[..., 1])
    cap = MAX_MOTION * FACE_PX
    d *= np.minimum(1.0, cap / np.maximum(mag, 1e-6))[..., None]
    # Where pixels did not change nothing moved; allow motion a little around changes
    # (textureless skin inside a moved region barely changes its pixels).
    diff = np.abs(cv2.GaussianBlur(s, (5, 5), 0).astype(np.int16)
                  - cv2.GaussianBlur(t, (5, 5), 0).astype(np.int16)).max(axis=2)
    changed = (diff > CHANGE_LEVELS).astype(np.uint8)
    r = max(3, int(0.2 * FACE_PX)) | 1
    changed = cv2.dilate(changed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r, r)))
    weight = cv2.GaussianBlur(changed.astype(np.float32), (r, r), 0)
    d *= weight[..., None]
    mag = np.hypot(d[..., 0], d[..., 1])
    d[mag < MIN_MOTION] = 0
    floor = MIN_MOTION_PHOTO_PX * scale
    if floor > MIN_MOTION:
        d *= np.clip((mag - floor) / floor, 0.0, 1.0)[..., None]
    # Outside the source photo (reflected border) there is no information.
    xs = np.arange(d.shape[1]) / scale + centre[0] - side / 2
    ys = np.arange(d.shape[0]) / scale + centre[1] - side / 2
    outside = (ys[:, None] < 0) | (ys[:, None] > H - 1) | (xs[None, :] < 0) | (xs[None, :] > W - 1)
    d[outside] = 0
    weight[outside] = 0
    return FlowMeasure(d=d.astype(np.float32), changed=weight, origin=centre - side / 2, scale=scale,
                       image_size=(W, H))


#: The whole photo is measured at this long side (for telling where motion lies).
WHOLE_SIDE = 768


@dataclass
class WholeMotion:
    """Motion energy (squared displacement in photo pixels, where pixels changed) over
    the whole photo, at ``scale`` working pixels per photo pixel."""

    energy: np.ndarray
    scale: float


def measure_whole(source: np.ndarray, target: np.ndarray) -> WholeMotion:
    """Where anything moved in the photo, coarsely (8-bit RGB, same size)."""
    H, W = source.shape[:2]
    k = min(1.0, WHOLE_SIDE / max(H, W))
    size = (max(2, int(round(W * k))), max(2, int(round(H * k))))
    s = cv2.resize(source, size, interpolation=cv2.INTER_AREA) if k < 1 else source
    t = cv2.resize(target, size, interpolation=cv2.INTER_AREA) if k < 1 else target
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    d = dis.calc(cv2.cvtColor(t, cv2.COLOR_RGB2GRAY), cv2.cvtColor(s, cv2.COLOR_RGB2GRAY), None)
    diff = np.abs(cv2.GaussianBlur(s, (3, 3), 0).astype(np.int16)
                  - cv2.GaussianBlur(t, (3, 3), 0).astype(np.int16)).max(axis=2)
    r = max(3, int(0.02 * max(size)) | 1)
    changed = cv2.dilate((diff > CHANGE_LEVELS).astype(np.uint8), np.ones((r, r), np.uint8)) > 0
    e = (d[..., 0] ** 2 + d[..., 1] ** 2) / (k * k)
    e[~changed | (e < (MIN_MOTION_PHOTO_PX * 2) ** 2)] = 0.0
    return WholeMotion(e.astype(np.float32), k)
