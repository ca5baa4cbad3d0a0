"""The learned warp head as the ``learned-warp`` transfer engine.

The head predicts, in the query's face frame, a backward motion, a blend mask and the
share of the paper procedure's resampling ramp (:mod:`mirrorppr.model.warp`). Here that
becomes a :class:`~mirrorppr.warp.field.Field` on the photo, applied at full resolution:
each moved pixel samples the query at its displaced position and is blended with the
query's own value through the mask (1 almost everywhere for a plain warp; the paper's
procedure blends). Pixels where the effective motion is below :data:`STILL_PX` are the
query's, bit for bit, and no pixel is generated: bit depth, alpha and detail are kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..imageio import Photo
from ..landmarks import find_face
from ..warp.field import Field
from .frame import (blur_share, exemplar_inputs, exemplar_motion, face_frame, query_inputs, ramp_in_frame,
                    to_image_field)

#: Effective motion (mask x displacement, image pixels) below which a pixel is left alone.
STILL_PX = 0.1
#: Long side of the working grid the motion is carried on (then upsampled where it moves).
WORKING = 1024


@dataclass
class WarpSettings:
    device: str | None = None          # default: cuda when available
    working: int = WORKING
    still_px: float = STILL_PX


def _size(rgb: np.ndarray) -> tuple[int, int]:
    return int(rgb.shape[1]), int(rgb.shape[0])


class WarpPredictor:
    """A loaded :class:`~mirrorppr.model.warp.LearnedWarp` and the steps around it."""

    def __init__(self, model, settings: WarpSettings | None = None) -> None:
        import torch

        self.s = settings or WarpSettings()
        self.device = self.s.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.crop = int(model.config.crop)
        self.cells = self.crop // int(model.config.out_stride)
        self._tokens: tuple[tuple, object] | None = None

    def tokens(self, source: np.ndarray, target: np.ndarray, source_points: np.ndarray | None = None):
        """Operation tokens of an exemplar pair (uint8 RGB) and the inputs they came from,
        kept for the next queries."""
        import torch

        # The arrays themselves are kept with the tokens (ids of freed arrays get reused).
        if self._tokens is not None and self._tokens[0][0] is source and self._tokens[0][1] is target:
            return self._tokens[1]
        key = (source, target)
        if target.shape[:2] != source.shape[:2]:
            target = cv2.resize(target, _size(source), interpolation=cv2.INTER_AREA)
        pts = source_points if source_points is not None else find_face(source, source="exemplar").points
        fe = face_frame(pts, self.crop)
        ramp = ramp_in_frame(_size(source), fe.matrix, self.crop, self.crop)
        s, t = exemplar_inputs(fe.crop(source), fe.crop(target), exemplar_motion(fe, source, target, self.crop),
                               fe.points(pts), ramp)
        st, tt = torch.from_numpy(s)[None].to(self.device), torch.from_numpy(t)[None].to(self.device)
        with torch.no_grad():
            tok = (self.model.operation_tokens(st, tt), st, tt)
        self._tokens = (key, tok)
        return tok

    def predict(self, tokens, query_rgb: np.ndarray, points: np.ndarray, size: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray, float, object]:
        """(motion (c, c, 2) crop px incl. the ramp, mask (c, c), ramp share, frame) for
        a query whose photo has ``size`` (its rgb8 may be the photo itself)."""
        import torch

        fq = face_frame(points, self.crop)
        ramp = ramp_in_frame(size, fq.matrix, self.crop, self.crop)
        q = query_inputs(fq.crop(query_rgb), fq.points(points), ramp, blur_share(size, fq))
        with torch.no_grad():
            tok, st, tt = tokens
            out = self.model(st, tt, torch.from_numpy(q)[None].to(self.device), tokens=tok)
        r = float(out.ramp[0] > 0.5)          # the ramp is there or not (the procedure's or another)
        rc = cv2.resize(ramp, (self.cells, self.cells), interpolation=cv2.INTER_AREA)
        d = out.d[0].float().cpu().numpy().transpose(1, 2, 0) + r * rc
        return d, out.mask[0, 0].float().cpu().numpy(), r, fq

    def field(self, tokens, query_rgb: np.ndarray, points: np.ndarray, size: tuple[int, int],
              strength: float = 1.0) -> tuple[Field, np.ndarray]:
        """The motion on the photo (a Field at the working grid) and its blend mask."""
        d, m, _, fq = self.predict(tokens, query_rgb, points, size)
        di, mi = to_image_field(d * np.float32(strength), m, fq, size, min(self.s.working, max(size)))
        still = mi * np.hypot(di[..., 0], di[..., 1]) < self.s.still_px
        di[still] = 0
        mi[still] = 0
        return Field(di, size), mi


def apply_blended(pixels: np.ndarray, field: Field, mask: np.ndarray) -> np.ndarray:
    """``pixels`` warped by ``field`` and blended with themselves through ``mask`` (on the
    field's cells); pixels the field does not move are returned unchanged."""
    box = field.bbox()
    out = pixels.copy()
    if box is None:
        return out
    x0, y0, x1, y1 = box
    warped = field.apply(pixels)
    d = field.dense(box)
    m = Field(np.dstack([mask, np.zeros_like(mask)]).astype(np.float32), field.size).dense(box)[..., 0]
    moved = (np.abs(d) > 1e-3).any(axis=2) & (m > 0)
    a = pixels[y0:y1, x0:x1].astype(np.float32)
    b = warped[y0:y1, x0:x1].astype(np.float32)
    mix = a + np.clip(m, 0, 1)[..., None] * (b - a)
    limit = 65535 if pixels.dtype == np.uint16 else 255
    mix = np.clip(np.rint(mix), 0, limit).astype(pixels.dtype)
    sub = out[y0:y1, x0:x1]
    sub[moved] = mix[moved]
    return out


def make_engine(predictor: WarpPredictor):
    def learned_warp_engine(op, pixels, face, opts, detect) -> np.ndarray:
        if op.exemplar is None:
            raise ConfigError("the learned-warp engine needs the exemplar pair itself; presets hold only the "
                              "analysis (use retouch --source/--target, or another engine)")
        t = time.perf_counter()
        src, tgt = op.exemplar
        tok = predictor.tokens(src, tgt)
        rgb = Photo(pixels).rgb8()
        f, m = predictor.field(tok, rgb, face.points, _size(rgb), opts.strength)
        out = apply_blended(pixels, f, m)
        learned_warp_engine.last_seconds = time.perf_counter() - t
        return out
    learned_warp_engine.last_seconds = 0.0
    learned_warp_engine.predictor = predictor
    return learned_warp_engine


def load_warp(weights: str | Path, settings: WarpSettings | None = None) -> WarpPredictor:
    from .warp import load_weights

    return WarpPredictor(load_weights(weights), settings)


def register_warp_engine(weights: str | Path, settings: WarpSettings | None = None) -> WarpPredictor:
    """Load trained weights and register them as the ``learned-warp`` engine."""
    from ..transfer.engines import register_engine

    pred = load_warp(weights, settings)
    register_engine("learned-warp", make_engine(pred))
    return pred
