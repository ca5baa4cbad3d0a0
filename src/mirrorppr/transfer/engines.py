"""Engines: ways to apply an analysed :class:`Operation` to a query portrait.

All share one interface and are chosen by name:

- ``recipe``: the fitted library ops, applied to the query's own landmarks;
- ``flow``:   the exemplar's measured motion, carried to the query face by landmark
  correspondence (handles edits outside the op vocabulary);
- ``auto``:   the recipe, plus the part of the motion it does not explain (default);
- ``model``:  the learned MirrorPPR system (registered by :mod:`mirrorppr.model` when
  its optional dependencies and weights are available).
Warp engines move pixels and never regenerate them: pixels outside the moved region
are bit-identical, and full resolution, bit depth and alpha are kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..analyze.operation import Operation
from ..errors import ConfigError
from ..landmarks import Face
from ..ops.alignment import edit_as_paper
from ..ops.base import get_op
from ..ops.recipe import Recipe, apply_recipe_exact, recipe_field, working_scale
from ..warp.field import Field
from .transport import transport

#: Exact (paper) application of LLW recipes up to this many pixels; fast above.
EXACT_MAX_PIXELS = 8_000_000
#: The auto engine adds the residual motion when the recipe leaves at least this share
#: of the measured motion unexplained.
RESIDUAL_SHARE = 0.50
#: Without a recipe, auto carries the raw motion only when it peaks above this
#: (inter-ocular units: 0.03 = 3% of the eye distance).
MIN_FLOW_PEAK = 0.03


@dataclass
class TransferOptions:
    """How strongly and how exactly to apply an operation."""

    strength: float = 1.0                     # global multiplier, 0..2
    overrides: dict[str, float] = field(default_factory=dict)   # per-op strengths
    mode: str = "auto"                        # recipe application: auto | fast | exact
    landmarker: str | None = None
    face_index: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.strength) <= 2.0:
            raise ConfigError(f"strength {self.strength} outside 0..2")
        if self.mode not in ("auto", "fast", "exact"):
            raise ConfigError(f"mode {self.mode!r}: use auto, fast or exact")
        for name, s in self.overrides.items():
            get_op(name).fraction(s)


EngineFn = Callable[[Operation, np.ndarray, Face, TransferOptions, Callable], np.ndarray]
ENGINES: dict[str, EngineFn] = {}


def register_engine(name: str, fn: EngineFn) -> EngineFn:
    ENGINES[name] = fn
    return fn


def get_engine(name: str) -> EngineFn:
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    return ENGINES[name]


def working_for(face: Face, size: tuple[int, int]) -> int:
    """Working resolution at which the face spans at least ~384 cells."""
    side = max(size)
    return int(min(side, max(1024, side * 384 / max(face.size, 1.0)), 4096))


def _recipe(op: Operation, opts: TransferOptions) -> Recipe:
    return op.recipe.scaled(opts.strength, opts.overrides).active()


def _use_exact(op: Operation, recipe: Recipe, pixels: np.ndarray, opts: TransferOptions) -> bool:
    """Exact (the paper's procedure) when asked, or in auto mode when the exemplar itself
    shows that procedure's resampling ramp: then reproducing it is what the exemplar did."""
    if opts.mode != "auto":
        return opts.mode == "exact"
    llw = all(get_op(s.op).family == "llw" for s in recipe)
    return llw and _paper_made(op) and pixels.shape[0] * pixels.shape[1] <= EXACT_MAX_PIXELS


def _paper_made(op: Operation) -> bool:
    return float(op.meta.get("ramp_slope", 0.0)) > 0


def _edits_any_photo_whole(op: Operation) -> bool:
    """The exemplar shows a pipeline unlike the paper's: its photo was no face crop, and
    yet the image-space check found it edited whole. Its queries are edited whole too."""
    return (op.meta.get("face_crop") is False and op.meta.get("canvas") is None
            and op.meta.get("image_refined_gain_db") is not None)


def _recipe_result(op, pixels, face, opts, detect) -> tuple[np.ndarray | None, Field | None]:
    """Either finished pixels (exact mode) or a field to compose (fast mode)."""
    recipe = _recipe(op, opts)
    if not len(recipe):
        return None, None
    if _use_exact(op, recipe, pixels, opts):
        if _paper_made(op) and not _edits_any_photo_whole(op):
            # Framed as the paper's pipeline framed photos: a face crop whole (at the
            # paper's working size when smaller), any other photo on its face's aligned crop.
            return edit_as_paper(pixels, recipe, detect, points=face.points), None
        # The whole photo, at the exemplar's working size when the query is smaller.
        scale = working_scale(max(pixels.shape[:2]), op.meta.get("working_side"))
        return apply_recipe_exact(pixels, recipe, detect, points=face.points, scale=scale), None
    size = (pixels.shape[1], pixels.shape[0])
    f, _ = recipe_field(face.points, recipe, size, working_for(face, size))
    return None, f


def _flow_field(grid: np.ndarray, op: Operation, pixels: np.ndarray, face: Face,
                opts: TransferOptions) -> Field:
    size = (pixels.shape[1], pixels.shape[0])
    return transport(grid * np.float32(opts.strength), op.landmarks, face.points, size,
                     working_for(face, size))


def recipe_engine(op, pixels, face, opts, detect) -> np.ndarray:
    done, f = _recipe_result(op, pixels, face, opts, detect)
    if done is not None:
        return done
    return f.apply(pixels) if f is not None else pixels.copy()


def flow_engine(op, pixels, face, opts, detect) -> np.ndarray:
    return _flow_field(op.flow, op, pixels, face, opts).apply(pixels)


def auto_engine(op, pixels, face, opts, detect) -> np.ndarray:
    done, f = _recipe_result(op, pixels, face, opts, detect)
    use_residual = (1.0 - op.explained) >= RESIDUAL_SHARE and not opts.overrides
    if not len(_recipe(op, opts)):
        # Nothing in the vocabulary explains it: carry the measured motion itself, if it is
        # a clear facial edit (not measurement noise).
        peak = float(np.hypot(op.flow[..., 0], op.flow[..., 1]).max(initial=0.0))
        if peak < MIN_FLOW_PEAK:
            return pixels.copy()
        return flow_engine(op, pixels, face, opts, detect)
    if use_residual:
        res = _flow_field(op.residual, op, pixels, face, opts)
        if done is not None:
            return res.apply(done)
        f = f.then(res) if f is not None else res
    if done is not None:
        return done
    return f.apply(pixels) if f is not None else pixels.copy()


register_engine("recipe", recipe_engine)
register_engine("flow", flow_engine)
register_engine("auto", auto_engine)
