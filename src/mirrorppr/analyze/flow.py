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

from ..eval.metrics import pixel_difference
from ..warp.field import Field

#: Faces are measured at this size (pixels of landmark extent).
FACE_PX = 384
#: Crop side as a multiple of the face size.
CROP = 3.0
#: A pixel "changed" if some channel differs by more than this (8-bit levels), after
#: brightness matching and a light blur.
CHANGE_LEVELS = 6.0
#: Gradient energy (squared 8-bit levels per pixel, Sobel) at which a flow vector is
#: half trusted: below it the photo is too flat for the motion to be seen.
TEXTURE_REF = 400.0
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
    changed: np.ndarray         # (h, w) 1 where the pixels changed
    trust: np.ndarray           # (h, w) how far d can be trusted, in [0, 1]
    outside: np.ndarray         # (h, w) 1 past the photo's borders
    origin: np.ndarray          # crop (x0, y0) in image pixels
    scale: float                # crop pixels per image pixel
    image_size: tuple[int, int]

    def to_grid(self, frame) -> np.ndarray:
        """The motion on the normalised grid of ``frame`` (vectors in normalised units),
        completed where it cannot be seen (:mod:`.infill`) and zero where nothing moved."""
        from .infill import complete
        from .normalize import STEP, grid_points, remap_points

        uv = grid_points()
        px = frame.to_pixels(uv.reshape(-1, 2))
        c = (px - self.origin) * self.scale
        # Trust-weighted averages over a grid cell, so the samples do not alias.
        sigma = max(0.5, 0.15 * STEP * frame.scale * self.scale)
        wd = cv2.GaussianBlur(self.d * self.trust[..., None], (0, 0), sigma)
        wt = cv2.GaussianBlur(self.trust, (0, 0), sigma)
        dd = wd / np.maximum(wt, 1e-6)[..., None]
        stack = np.dstack([dd, wt, cv2.GaussianBlur(self.changed, (0, 0), sigma), self.outside])
        g = remap_points(stack, c[:, 0], c[:, 1]).reshape(uv.shape[:2] + (5,))
        d = frame.vec_to_norm(g[..., :2].reshape(-1, 2) / self.scale).reshape(uv.shape)
        # Grid cells outside the measured crop: nothing seen there either.
        beyond = (c[:, 0] < 0) | (c[:, 1] < 0) | (c[:, 0] > self.d.shape[1] - 1) | (c[:, 1] > self.d.shape[0] - 1)
        unseen = np.maximum(g[..., 4], beyond.reshape(uv.shape[:2]))
        support = np.maximum((g[..., 3] > 0.05).astype(np.float32), unseen)
        out = complete(d, g[..., 2] * (1 - unseen), support)
        # Below what the measurement can resolve (pixels at the measuring scale, and of
        # the photo itself) it is noise.
        mag = np.hypot(out[..., 0], out[..., 1]) * frame.scale
        floor = max(MIN_MOTION / self.scale, MIN_MOTION_PHOTO_PX)
        out *= np.clip((mag - floor) / floor, 0.0, 1.0)[..., None]
        return out.astype(np.float32)

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
    # Statistics from every fourth pixel each way: plenty, and 16x cheaper.
    s = src[::4, ::4].reshape(-1, 3).astype(np.float32)
    t = tgt[::4, ::4].reshape(-1, 3).astype(np.float32)
    gain = np.clip(s.std(0) / np.maximum(t.std(0), 1e-3), 0.8, 1.25)
    out = (tgt.astype(np.float32) - t.mean(0)) * gain + s.mean(0)
    return np.clip(out, 0, 255).astype(np.uint8)


def measure_flow(source: np.ndarray, target: np.ndarray, face_box: tuple[float, float, float, float]
                 ) -> FlowMeasure:
    """Backward flow from target to source around the face (8-bit RGB, same size), with
    how far each vector can be trusted: DIS is precise where the photo has texture and
    blind where it has none (a flat cheek moves without changing its pixels)."""
    x0, y0, x1, y1 = face_box
    size = max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return measure_region(source, target, centre, size * CROP, FACE_PX / size, finest=FACE_FINEST)


#: The whole photo (the body) is measured at this long side.
BODY_SIDE = 1024
#: The finest pyramid level DIS measures at (0: full resolution; the preset stops at 1).
#: The face crop is enlarged to FACE_PX, so level 1 still sees its strokes: level 0
#: costs four times as much (0.3 s a 1024 px exemplar) and scored the same on the
#: liquify, simulated and professional cases. The body is measured on the whole photo
#: reduced to BODY_SIDE, where a push of 2% of the shoulders is a few pixels: at level 1
#: the body liquify benchmark lost 0.26 dB (docs/RESULTS.md).
FACE_FINEST = 1
BODY_FINEST = 0


def measure_photo(source: np.ndarray, target: np.ndarray) -> FlowMeasure:
    """Backward flow over the whole photo (the body's motion), at a working size."""
    H, W = source.shape[:2]
    side = float(max(H, W))
    return measure_region(source, target, np.array([W / 2, H / 2]), side, min(1.0, BODY_SIDE / side),
                          finest=BODY_FINEST)


def measure_region(source: np.ndarray, target: np.ndarray, centre: np.ndarray, side: float,
                   scale: float, finest: int = 0) -> FlowMeasure:
    """Backward flow on the square of ``side`` photo pixels about ``centre``, measured at
    ``scale`` down to pyramid level ``finest`` (0: full resolution; see
    :func:`measure_flow`)."""
    H, W = source.shape[:2]
    s = _crop(source, centre, side, scale)
    t = _match_brightness(s, _crop(target, centre, side, scale))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(finest)
    gs = cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)
    gt = cv2.cvtColor(t, cv2.COLOR_RGB2GRAY)
    d = dis.calc(gt, gs, None)
    # Forward-backward check: where following the flow and coming back misses by more
    # than a pixel, the measurement is unreliable (occlusion, flat or changed texture).
    back = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(gs, gt, None)
    hh, ww = d.shape[:2]
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    back_at = cv2.remap(back, gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    fb = np.hypot(*(d + back_at).transpose(2, 0, 1))
    reliable = (fb < FB_TOLERANCE).astype(np.float32)
    # Bounded: no retouching moves features by more than a fraction of the face.
    mag = np.hypot(d[..., 0], d[..., 1])
    cap = MAX_MOTION * FACE_PX
    d *= np.minimum(1.0, cap / np.maximum(mag, 1e-6))[..., None]
    # Trust: texture (gradient energy around the pixel), agreement both ways.
    g = gs.astype(np.float32)
    gxx, gyy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    tex = cv2.blur(gxx * gxx + gyy * gyy, (5, 5))
    trust = tex / (tex + TEXTURE_REF) * reliable
    # Where pixels changed, and everything near them: motion can only be there (or where
    # nothing can be seen: past the photo's borders).
    diff = pixel_difference(cv2.blur(s, (5, 5)), cv2.blur(t, (5, 5)))
    changed = (diff > CHANGE_LEVELS).astype(np.uint8)
    # Outside the source photo (reflected border) there is no information.
    xs = np.arange(d.shape[1]) / scale + centre[0] - side / 2
    ys = np.arange(d.shape[0]) / scale + centre[1] - side / 2
    outside = (ys[:, None] < 0) | (ys[:, None] > H - 1) | (xs[None, :] < 0) | (xs[None, :] > W - 1)
    trust[outside] = 0.0
    d[outside] = 0.0
    return FlowMeasure(d=d.astype(np.float32), changed=changed.astype(np.float32),
                       trust=trust.astype(np.float32), outside=outside.astype(np.float32),
                       origin=centre - side / 2, scale=scale, image_size=(W, H))


#: The whole photo is measured at this long side (for telling where motion lies).
WHOLE_SIDE = 768


@dataclass
class WholeMotion:
    """Motion energy (squared displacement in photo pixels, where pixels changed) over
    the whole photo, at ``scale`` working pixels per photo pixel."""

    energy: np.ndarray
    scale: float

    def moved(self, px: float = 1.0) -> np.ndarray:
        """Where the photo moved by more than ``px`` photo pixels, widened a little."""
        m = (self.energy > px * px).astype(np.uint8)
        r = max(3, int(0.01 * max(m.shape)) | 1)
        return cv2.dilate(m, np.ones((r, r), np.uint8)) > 0


def measure_whole(source: np.ndarray, target: np.ndarray) -> WholeMotion:
    """Where anything moved in the photo, coarsely (8-bit RGB, same size)."""
    H, W = source.shape[:2]
    k = min(1.0, WHOLE_SIDE / max(H, W))
    size = (max(2, int(round(W * k))), max(2, int(round(H * k))))
    s = cv2.resize(source, size, interpolation=cv2.INTER_AREA) if k < 1 else source
    t = cv2.resize(target, size, interpolation=cv2.INTER_AREA) if k < 1 else target
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    d = dis.calc(cv2.cvtColor(t, cv2.COLOR_RGB2GRAY), cv2.cvtColor(s, cv2.COLOR_RGB2GRAY), None)
    diff = pixel_difference(cv2.GaussianBlur(s, (3, 3), 0), cv2.GaussianBlur(t, (3, 3), 0))
    r = max(3, int(0.02 * max(size)) | 1)
    changed = cv2.dilate((diff > CHANGE_LEVELS).astype(np.uint8), np.ones((r, r), np.uint8)) > 0
    e = (d[..., 0] ** 2 + d[..., 1] ** 2) / (k * k)
    e[~changed | (e < (MIN_MOTION_PHOTO_PX * 2) ** 2)] = 0.0
    return WholeMotion(e.astype(np.float32), k)
