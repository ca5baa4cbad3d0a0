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
    #: What the transfer could not do (a body part the query does not show...), filled
    #: by the engines, one line each.
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.strength) <= 2.0:
            raise ConfigError(f"strength {self.strength} outside 0..2")
        if self.mode not in ("auto", "fast", "exact"):
            raise ConfigError(f"mode {self.mode!r}: use auto, fast or exact")
        for name, s in self.overrides.items():
            get_op(name).fraction(s)


EngineFn = Callable[[Operation, np.ndarray, Face, TransferOptions, Callable], np.ndarray]
ENGINES: dict[str, EngineFn] = {}


def body_field(op: Operation, pixels: np.ndarray, face: Face, opts: TransferOptions) -> Field | None:
    """The body part of ``op`` (and any body-op sliders) placed on the query's own body,
    or None when there is none to carry; parts the query does not show are noted."""
    from ..body.detect import find_body
    from ..body.edit import edit_field
    from ..body.motion import POSE_LIMIT, posed_otherwise
    from ..body.parts import Skeleton
    from ..imageio import Photo
    from ..ops.body import STROKES

    edit = op.body
    sliders = {k: v for k, v in opts.overrides.items() if get_op(k).family == "body"}
    if (edit is None or edit.choice == "none") and not sliders:
        return None
    rgb = Photo(pixels).rgb8()
    body = find_body(rgb, face.box)
    if body is None:
        opts.notes.append("no body found in the query: the body edit is not carried")
        return None
    sk = Skeleton.of(body)
    size = (pixels.shape[1], pixels.shape[0])
    if edit is not None:
        edit, turned = edit.for_body(sk)
        opts.notes += turned
    wanted = [s.op for s in (edit.recipe.active() if edit is not None and edit.choice in ("ops", "ops+motion")
                             else [])] + list(sliders)
    missing = sorted({n for n in wanted if not STROKES[n](sk)})
    if missing:
        opts.notes.append(f"the query does not show the body parts for {', '.join(missing)}: skipped")
    if edit is not None and edit.choice in ("ops+motion", "motion"):
        unseen = sorted(p for p in edit.motion.energy_by_part() if not sk.shows(p))
        if unseen:
            opts.notes.append(f"the query does not show {', '.join(unseen)}: its motion is not carried")
        posed = posed_otherwise(edit.motion, sk)
        if posed:
            opts.notes.append(f"the query's {' and '.join(posed)} {'is' if len(posed) == 1 else 'are'} posed more "
                              f"than {POSE_LIMIT:.0f} degrees away from the exemplar's: the brush strokes "
                              "there are not carried")
    f = edit_field(edit, sk, size, face.points, strength=opts.strength, overrides=sliders)
    if f.is_zero():
        return None
    from ..body.protect import BEND_LIMIT, protect

    f, guard = protect(f, rgb, sk)
    if guard.bend_after > BEND_LIMIT * max(size):
        opts.notes.append(f"a straight background edge next to the body still bends by "
                          f"{guard.bend_after:.1f} px")
    return f


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
    face = {k: v for k, v in opts.overrides.items() if get_op(k).family != "body"}
    return op.recipe.scaled(opts.strength, face).active()


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


#: A face transfer before it is rendered: finished pixels (the paper's exact procedure)
#: or None, and a field still to apply (to those pixels, or to the query's).
Parts = tuple[np.ndarray | None, Field | None]


def _render(pixels: np.ndarray, parts: Parts, body: Field | None = None) -> np.ndarray:
    """The face transfer and then the body's, resampled once."""
    done, f = parts
    if body is not None:
        f = f.then(body) if f is not None else body
    base = done if done is not None else pixels
    return f.apply(base) if f is not None else base.copy()


def _recipe_parts(op, pixels, face, opts, detect) -> Parts:
    return _recipe_result(op, pixels, face, opts, detect)


def _recipe_residual_parts(op, pixels, face, opts, detect) -> Parts:
    """The recipe, then the measured motion it leaves unexplained."""
    done, f = _recipe_result(op, pixels, face, opts, detect)
    m = motion_field(op.residual, op, pixels, face, opts)
    return done, (m if done is not None or f is None else f.then(m))


def _flow_parts(op, pixels, face, opts, detect) -> Parts:
    return None, motion_field(op.flow, op, pixels, face, opts)


def _auto_parts(op, pixels, face, opts, detect) -> Parts:
    """What the exemplar's own check chose (``op.choice``). Per-op overrides (sliders)
    act on the recipe; the motion the recipe leaves is still carried, so moving one
    slider changes that op alone."""
    choice = op.choice
    face_sliders = any(get_op(k).family != "body" for k in opts.overrides)
    if face_sliders and choice == "flow":
        choice = "recipe+residual"
    if choice == "none":
        return None, None
    if choice in ("recipe", "paper"):
        return _recipe_parts(op, pixels, face, opts, detect)
    if choice == "recipe+residual":
        return _recipe_residual_parts(op, pixels, face, opts, detect)
    return _flow_parts(op, pixels, face, opts, detect)


def _face_only(parts_fn) -> EngineFn:
    def run(op, pixels, face, opts, detect):
        return _render(pixels, parts_fn(op, pixels, face, opts, detect))
    run.__doc__ = parts_fn.__doc__
    return run


def _with_body(parts_fn) -> EngineFn:
    """An engine: the face transfer, then the body part of the edit, in one resampling."""
    def run(op, pixels, face, opts, detect):
        parts = parts_fn(op, pixels, face, opts, detect)
        return _render(pixels, parts, body_field(op, pixels, face, opts))
    run.__doc__ = parts_fn.__doc__
    return run


#: The face alone, as the analysis tries each way on the exemplar's face.
recipe_engine = _face_only(_recipe_parts)
recipe_residual_engine = _face_only(_recipe_residual_parts)
flow_engine = _face_only(_flow_parts)
auto_engine = _face_only(_auto_parts)

register_engine("recipe", _with_body(_recipe_parts))
register_engine("flow", _with_body(_flow_parts))
register_engine("auto", _with_body(_auto_parts))
