"""The paper's exact procedure, re-rendered: a recipe applied op by op as the LLW
specification does (landmarks detected again before every op, each op warped and blended
in pixels, truncated to the integer type), on the picture the paper's pipeline edited:
the photo itself, a crop of it (a canvas, possibly past the borders), at the paper's
working size, with what changed brought back onto the photo.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..ops.apply import apply_exact
from ..ops.base import get_op
from ..ops.recipe import Recipe

def _resize(pixels: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """cv2.resize that keeps a trailing channel axis of any length."""
    out = cv2.resize(pixels, size, interpolation=interpolation)
    return out.reshape(out.shape[:2] + pixels.shape[2:])


#: Working sizes this close to the photo's own are the photo's own.
SCALE_TOLERANCE = 0.02


def working_scale(long_side: int, working_side: int | None) -> float:
    """Scale at which a photo of ``long_side`` px is edited when the procedure worked at
    ``working_side`` px: only ever up (a photo published smaller than it was edited)."""
    k = working_side / long_side if working_side else 1.0
    return k if k > 1.0 + SCALE_TOLERANCE else 1.0


def working_copy(pixels: np.ndarray, scale: float) -> np.ndarray:
    """The photo at the size it is edited at (``scale`` x its own)."""
    H, W = pixels.shape[:2]
    return _resize(pixels, (max(1, int(round(W * scale))), max(1, int(round(H * scale)))),
                   cv2.INTER_CUBIC)


Canvas = tuple[int, int, int, int]


@dataclass(frozen=True)
class Working:
    """The picture an edit at another size runs on: the part of the photo the procedure
    saw (the canvas's part, or the whole photo) resized by ``scale``."""

    box: tuple[int, int, int, int]      # (x0, y0, x1, y1) of the photo
    scale: float
    canvas: Canvas | None               # in the working picture's pixels

    @classmethod
    def of(cls, size: tuple[int, int], canvas: Canvas | None, scale: float) -> "Working":
        W, H = size
        if canvas is None:
            return cls((0, 0, W, H), scale, None)
        cx, cy, cw, ch = canvas
        x0, y0 = max(0, cx), max(0, cy)
        cv = tuple(int(round(v * scale)) for v in (cx - x0, cy - y0, cw, ch))
        return cls((x0, y0, min(W, cx + cw), min(H, cy + ch)), scale, cv)

    def picture(self, pixels: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return working_copy(pixels[y0:y1, x0:x1], self.scale)

    def points(self, points: np.ndarray | None) -> np.ndarray | None:
        """Landmarks in the working picture's pixels."""
        if points is None:
            return None
        return (np.asarray(points, np.float64) - np.array(self.box[:2], np.float64)) * self.scale

    def back(self, pixels: np.ndarray, picture: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """The photo with what the edit changed in the working picture brought back."""
        x0, y0, x1, y1 = self.box
        out = pixels.copy()
        out[y0:y1, x0:x1] = bring_back(pixels[y0:y1, x0:x1], picture, edited)
        return out


def bring_back(pixels: np.ndarray, up: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """What an edit at another size (``up`` -> ``edited``) changed, resized onto
    ``pixels``: only the edited box changes, everything else stays bit-identical."""
    H, W = pixels.shape[:2]
    h, w = up.shape[:2]
    moved = np.abs(edited.astype(np.int32) - up.astype(np.int32)).reshape(h, w, -1).max(axis=2) > 0
    if not moved.any():
        return pixels.copy()
    ys, xs = np.nonzero(moved)
    sx, sy = w / W, h / H
    x0, x1 = max(0, int(xs.min() / sx) - 2), min(W, int(xs.max() / sx) + 3)
    y0, y1 = max(0, int(ys.min() / sy) - 2), min(H, int(ys.max() / sy) + 3)
    down = _resize(edited, (W, H), cv2.INTER_AREA)[y0:y1, x0:x1].astype(np.float32)
    same = _resize(up, (W, H), cv2.INTER_AREA)[y0:y1, x0:x1].astype(np.float32)
    out = pixels.copy()
    limit = 65535 if pixels.dtype == np.uint16 else 255
    out[y0:y1, x0:x1] = np.clip(pixels[y0:y1, x0:x1] + np.round(down - same), 0, limit).astype(pixels.dtype)
    return out


def apply_recipe_exact(pixels: np.ndarray, recipe: Recipe, detect, points: np.ndarray | None = None,
                       canvas: Canvas | None = None,
                       scale: float = 1.0) -> np.ndarray:
    """Paper mode: ``detect(pixels) -> (478, 2) points`` is called before every op
    (``points`` may give the first detection); ``canvas`` as in :func:`apply_exact`.

    ``scale`` != 1 runs the procedure on the photo (or the canvas's part of it) resized by
    that factor and brings back only what it changed (a photo edited at another size,
    then resized: the grid, the ramp and the blur belong to the size it was edited at)."""
    if scale != 1.0 and len(recipe.active()):
        work = Working.of((pixels.shape[1], pixels.shape[0]), canvas, scale)
        up = work.picture(pixels)
        return work.back(pixels, up, apply_recipe_exact(up, recipe, detect, points=work.points(points),
                                                         canvas=work.canvas))
    out = pixels
    for i, step in enumerate(recipe.active()):
        op = get_op(step.op)
        pts = points if (i == 0 and points is not None) else detect(out)
        if op.family == "llw":
            # The procedure rounds landmarks in the picture it ran on.
            off = np.array(canvas[:2], np.float64) if canvas is not None else 0.0
            src = np.round(pts - off) + off
        else:
            src = pts
        out = apply_exact(out, op.geometry(src, step.strength), canvas=canvas)
    return out.copy() if out is pixels else out


def edit_as_paper(pixels: np.ndarray, recipe: Recipe, detect, points: np.ndarray | None = None
                  ) -> np.ndarray:
    """Apply LLW ops the way the paper's data pipeline did (as this module infers it): a
    face crop whole, at :data:`PAPER_SIDE` when smaller; any other photo on its face's
    aligned crop at that size, what changed brought back. ``detect(pixels) -> points``."""
    pts = detect(pixels) if points is None else points
    h, w = pixels.shape[:2]
    from .framing import PAPER_SIDE, paper_canvas

    frame = paper_canvas(pts, (w, h))
    canvas, scale = frame if frame is not None else (None, working_scale(max(h, w), PAPER_SIDE))
    return apply_recipe_exact(pixels, recipe, detect, points=pts, canvas=canvas, scale=scale)
