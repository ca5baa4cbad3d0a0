"""Engines: ways to apply an analysed :class:`Operation` to a query portrait.

All share one interface and are chosen by name:

- ``recipe``: the fitted library ops, applied to the query's own landmarks;
- ``flow``:   the exemplar's measured motion, carried to the query face by landmark
  correspondence (handles edits outside the op vocabulary);
- ``auto``:   what reproduced the exemplar best when the analysis tried each way on the
  exemplar itself (``Operation.choice``): the recipe, the recipe plus the motion it
  leaves, the motion itself, or the paper's procedure (default);
- ``model``:  the learned MirrorPPR system (registered by :mod:`mirrorppr.model` when
  its optional dependencies and weights are available).
Warp engines move pixels and never regenerate them: pixels outside the moved region
are bit-identical, and full resolution, bit depth and alpha are kept. An operation of
paper provenance is re-rendered with the paper's procedure (:mod:`mirrorppr.paper`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..analyze.operation import Operation, Paper
from ..errors import ConfigError
from ..landmarks import Face
from ..ops.base import get_op
from ..ops.recipe import Recipe, recipe_field
from ..warp.field import Field
from .transport import transport

#: Exact (paper) application of LLW recipes up to this many pixels; fast above.
EXACT_MAX_PIXELS = 8_000_000


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
    """Exact (the paper's procedure) when asked, or in auto mode when the exemplar was
    proven to be made by that procedure: then reproducing it is what the exemplar did."""
    if opts.mode != "auto":
        return opts.mode == "exact"
    llw = all(get_op(s.op).family == "llw" for s in recipe)
    return (llw and isinstance(op.provenance, Paper)
            and pixels.shape[0] * pixels.shape[1] <= EXACT_MAX_PIXELS)


def _recipe_result(op, pixels, face, opts, detect) -> tuple[np.ndarray | None, Field | None]:
    """Either finished pixels (exact mode) or a field to compose (fast mode)."""
    recipe = _recipe(op, opts)
    if not len(recipe):
        return None, None
    if _use_exact(op, recipe, pixels, opts):
        from ..paper.render import apply_recipe_exact, edit_as_paper, working_scale

        prov = op.provenance
        if isinstance(prov, Paper) and not prov.edits_any_photo_whole:
            # Framed as the paper's pipeline framed photos: a face crop whole (at the
            # paper's working size when smaller), any other photo on its face's aligned crop.
            return edit_as_paper(pixels, recipe, detect, points=face.points), None
        side = prov.working_side if isinstance(prov, Paper) else None
        scale = working_scale(max(pixels.shape[:2]), side)
        return apply_recipe_exact(pixels, recipe, detect, points=face.points, scale=scale), None
    size = (pixels.shape[1], pixels.shape[0])
    f, _ = recipe_field(face.points, recipe, size, working_for(face, size))
    return None, f


def motion_field(grid: np.ndarray, op: Operation, pixels: np.ndarray, face: Face,
                 opts: TransferOptions) -> Field:
    """A normalised-grid motion of ``op`` carried onto the query face."""
    size = (pixels.shape[1], pixels.shape[0])
    return transport(grid * np.float32(opts.strength), op.landmarks, face.points, size,
                     working_for(face, size))


def _finish(pixels, done: np.ndarray | None, f: Field | None, extra: Field | None = None) -> np.ndarray:
    if done is not None:
        return extra.apply(done) if extra is not None else done
    if extra is not None:
        f = f.then(extra) if f is not None else extra
    return f.apply(pixels) if f is not None else pixels.copy()


def recipe_engine(op, pixels, face, opts, detect) -> np.ndarray:
    done, f = _recipe_result(op, pixels, face, opts, detect)
    return _finish(pixels, done, f)


def recipe_residual_engine(op, pixels, face, opts, detect) -> np.ndarray:
    """The recipe, then the measured motion it leaves unexplained."""
    done, f = _recipe_result(op, pixels, face, opts, detect)
    return _finish(pixels, done, f, motion_field(op.residual, op, pixels, face, opts))


def flow_engine(op, pixels, face, opts, detect) -> np.ndarray:
    return motion_field(op.flow, op, pixels, face, opts).apply(pixels)


def auto_engine(op, pixels, face, opts, detect) -> np.ndarray:
    """What the exemplar's own check chose (``op.choice``). Per-op overrides (sliders)
    act on the recipe; the motion the recipe leaves is still carried, so moving one
    slider changes that op alone."""
    choice = op.choice
    if opts.overrides and choice == "flow":
        choice = "recipe+residual"
    if choice == "none":
        return pixels.copy()
    if choice in ("recipe", "paper"):
        return recipe_engine(op, pixels, face, opts, detect)
    if choice == "recipe+residual":
        return recipe_residual_engine(op, pixels, face, opts, detect)
    return flow_engine(op, pixels, face, opts, detect)


register_engine("recipe", recipe_engine)
register_engine("flow", flow_engine)
register_engine("auto", auto_engine)
