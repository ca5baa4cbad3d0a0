"""The MirrorPPR paper's simulator, as a provenance an exemplar may be proven to have.

The paper's simulated pairs were made by its LLW procedure (``spec/llw-ops.md``): eight
landmark-guided warps on a 30 px grid whose upsampling shifts content inside each op's
mask (a resampling ramp), landmarks detected again between ops, 8-bit truncation, on the
photo or on a face-aligned crop pasted back. Reading an exemplar that way is a claim to be
proven on the pair: the analysis tries it (``procedure="auto"`` when the cheap first
reading looks promising, always with ``procedure="paper"``) and keeps it only when
re-rendering the exemplar this way reproduces its after photo clearly better than the
clean reading. Everything specific to the paper lives here:

- :mod:`.ramp`: op strengths fitted beside the resampling ramp, the paper's ops preferred;
- :mod:`.search`: the image-space search of ops, order, strengths, and of the picture the
  procedure ran on (a pasted crop, the paper's working size);
- :mod:`.framing`: how the paper's pipeline framed photos (inferred from its cases);
- :mod:`.render`: the procedure itself, re-run on a query.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analyze.normalize import Frame
from ..analyze.operation import Paper
from ..ops.base import get_op
from ..ops.recipe import Recipe
from .framing import PAPER_SIDE, is_face_crop, paper_canvas
from .ramp import fit_paper_recipe
from .render import apply_recipe_exact, working_scale
from .search import paste_box, refine_in_image

#: Without signs of the procedure (its ramp, a pasted crop), the search stops early when
#: its first strength search gains less than this (dB).
QUICK_EXIT_DB = 3.0


@dataclass
class PaperReading:
    """The exemplar read as the paper's procedure made it."""

    recipe: Recipe
    provenance: Paper
    search_gain_db: float | None      # the image-space search's own gain (None: not searched)
    canvas: tuple[int, int, int, int] | None = None   # the picture the search re-rendered on
    scale: float = 1.0

    def render(self, source: np.ndarray, points: np.ndarray, detect) -> np.ndarray:
        """The exemplar's before photo re-rendered as the search found it was made."""
        return apply_recipe_exact(source, self.recipe, detect, points=points, canvas=self.canvas,
                                  scale=self.scale)


def _all_llw(recipe: Recipe) -> bool:
    return len(recipe) > 0 and all(get_op(s.op).family == "llw" for s in recipe)


def first_reading(source: np.ndarray, points: np.ndarray, flow: np.ndarray, frame: Frame,
                  families: tuple[str, ...], max_ops: int):
    """The ramp fit (cheap): its paper-ops recipe, or None when it names other ops."""
    size = (source.shape[1], source.shape[0])
    fit = fit_paper_recipe(points, size, flow, frame, families=families, max_ops=max_ops)
    return fit


def quick_renders(source: np.ndarray, recipe: Recipe, points: np.ndarray, detect) -> list[np.ndarray]:
    """The recipe re-rendered with the exact procedure on each picture the paper's
    pipeline may have edited the photo on (the photo itself, at the paper's working size
    when the photo is smaller, its face's aligned crop): the cheap evidence that decides
    whether the search is worth running."""
    size = (source.shape[1], source.shape[0])
    frames = [(None, 1.0)]
    k = working_scale(max(size), PAPER_SIDE)
    if k != 1.0:
        frames.append((None, k))
    crop = paper_canvas(points, size)
    if crop is not None:
        frames.append(crop)
    return [apply_recipe_exact(source, recipe, detect, points=points, canvas=c, scale=s) for c, s in frames]


def read_paper(source: np.ndarray, target: np.ndarray, points: np.ndarray, fit, detect,
               thorough: bool) -> PaperReading | None:
    """Search the paper's reading of an exemplar in image space, starting from the ramp
    fit ``fit``; None when the procedure does not reproduce it. ``thorough`` searches
    every framing fully (otherwise it gives up early without signs of the procedure)."""
    size = (source.shape[1], source.shape[0])
    box = paste_box(source, target, points)
    hint = fit.ramp_slope > 0 or box is not None
    starts = [fit.recipe] if _all_llw(fit.recipe) else []
    alt = fit.llw_alternative
    if alt is not None and _all_llw(alt.recipe) and (hint or alt.ramp_slope > 0 or thorough):
        # A professional op may mimic a paper op; if the paper's own ops, re-run with its
        # exact procedure, reproduce the exemplar, that settles it.
        starts.append(alt.recipe)
    for start in starts:
        refined = refine_in_image(source, target, start, points, detect, box=box,
                                  quick_exit_db=None if (hint or thorough) else QUICK_EXIT_DB)
        if refined is None:
            continue
        canvas, scale = refined.canvas, refined.scale
        working = (None if scale == 1.0 else PAPER_SIDE if canvas is not None
                   else int(round(max(size) * scale)))
        slope = (1.0 / (max(canvas[2], canvas[3]) // 30) if canvas is not None
                 else 1.0 / (max(size) * scale // 30))
        prov = Paper(canvas=None if canvas is None else tuple(int(v) for v in canvas),
                     working_side=working, face_crop=is_face_crop(points, size), ramp_slope=slope)
        return PaperReading(refined.recipe, prov, refined.gain_db, canvas, scale)
    return None
