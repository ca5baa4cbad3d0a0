"""Exemplar analysis: (before, after) of one person -> an :class:`Operation`.

1. find the face in the before photo (the after photo has the same framing);
2. measure the dense motion between them (optical flow, zero where nothing changed);
3. express it on the face-normalised grid;
4. fit the operation library's strengths to it, keeping what the recipe leaves
   unexplained as a residual field.
"""
from __future__ import annotations

import os
import time

import cv2
import numpy as np

from ..errors import InputError, MirrorError
from ..imageio import Photo, read_image
from ..landmarks import Face, find_face
from .fit import fit_recipe
from .flow import measure_flow
from .normalize import STEP, Frame, face_weight
from ..ops.alignment import PAPER_SIDE, is_face_crop
from ..ops.base import get_op
from ..ops.recipe import Recipe
from .operation import Operation
from .refine import paste_box, refine_in_image

__all__ = ["analyze", "Operation"]

#: Smoothing of the residual motion (inter-ocular units).
RESIDUAL_SMOOTH = 0.06
#: A recipe that explains less than this share of the measured motion is not kept.
MIN_EXPLAINED = 0.15
#: Without signs of the paper's procedure, its image-space check stops early below this (dB).
QUICK_EXIT_DB = 3.0
#: ...and is only tried on photos up to this long side (the paper worked at 1024 px).
PLAUSIBLE_SIDE = 2048



def _as_rgb(x, name: str) -> tuple[np.ndarray, str]:
    if isinstance(x, Photo):
        return x.rgb8(), str(x.path or name)
    if isinstance(x, np.ndarray):
        return Photo(x if x.ndim == 3 else x[..., None]).rgb8(), name
    if isinstance(x, (str, os.PathLike)):
        return read_image(x).rgb8(), str(x)
    raise TypeError(f"{name}: expected a path, Photo or array, got {type(x).__name__}")


def _slope(fitted: float, canvas, refined: bool, size, scale: float) -> float:
    """The resampling ramp's slope: that of the picture the exact procedure ran on when
    it reproduced the exemplar (a crop, or the photo), else what the flow fit found."""
    if canvas is not None:
        return 1.0 / (max(canvas[2], canvas[3]) // 30)
    if refined and fitted == 0:
        return 1.0 / (max(size) * scale // 30)
    return fitted


def analyze(source, target, *, families: tuple[str, ...] = ("llw", "pro"), max_ops: int = 5,
            face: Face | None = None, backend: str | None = None,
            face_index: int | None = None) -> Operation:
    """Infer the retouching operation that turns ``source`` into ``target``."""
    t0 = time.perf_counter()
    src, sname = _as_rgb(source, "source")
    tgt, tname = _as_rgb(target, "target")
    if src.shape[:2] != tgt.shape[:2]:
        h, w = src.shape[:2]
        th, tw = tgt.shape[:2]
        if abs(th / tw - h / w) > 0.01:
            raise InputError(f"{tname}: {tw}x{th} does not match the before photo {sname} ({w}x{h}); "
                             "an exemplar is one photo before and after retouching")
        tgt = cv2.resize(tgt, (w, h), interpolation=cv2.INTER_AREA if tw > w else cv2.INTER_CUBIC)
    if face is None:
        face = find_face(src, source=sname, backend=backend, index=face_index)
    frame = Frame.of(face.points)
    size = (src.shape[1], src.shape[0])
    measure = measure_flow(src, tgt, face.box)
    # Face edits only: motion beyond the face's surroundings (shoulders, waist, arms)
    # needs body correspondence, which face landmarks cannot give.
    flow = measure.to_grid(frame) * face_weight(frame.to_norm(face.points))[..., None]
    fit = fit_recipe(face.points, size, flow, frame, families=families, max_ops=max_ops)
    recipe, refined_gain, rejected = fit.recipe, None, None

    def detect(px: np.ndarray) -> np.ndarray:
        return find_face(Photo(px).rgb8(), source=sname, backend=backend).points

    # A rectangle pasted back into the after photo: the paper's procedure ran on a crop.
    box = paste_box(src, tgt, face.points)
    canvas, scale = None, 1.0
    # Evidence of the paper's procedure (its resampling ramp, a pasted crop) makes the
    # image-space check worth its time; without it, give up as soon as it looks hopeless.
    paper_hint = fit.ramp_slope > 0 or box is not None
    candidates = []
    # Without such signs, only photos of about the paper's size are worth the check.
    plausible = paper_hint or max(size) <= PLAUSIBLE_SIDE
    if plausible and len(recipe) and all(get_op(s.op).family == "llw" for s in recipe):
        candidates.append(fit.recipe)
    alt = fit.llw_alternative
    if alt is not None and len(alt.recipe) and (paper_hint or alt.ramp_slope > 0):
        # A professional op may mimic a paper op; if the paper's own ops, re-run with its
        # exact procedure, reproduce the exemplar, that settles it.
        candidates.append(alt.recipe)
    for cand in candidates:
        refined = refine_in_image(src, tgt, cand, face.points, detect, box=box,
                                  quick_exit_db=None if paper_hint else QUICK_EXIT_DB)
        if refined is not None:
            recipe, refined_gain, canvas, scale = (refined.recipe, refined.gain_db,
                                                   refined.canvas, refined.scale)
            break
    if refined_gain is None and fit.explained < MIN_EXPLAINED and len(recipe):
        # The vocabulary barely explains this motion: naming ops would be guessing.
        rejected, recipe = recipe.summary(), Recipe([])
    residual = (flow - fit.predicted).astype(np.float32)
    residual[(np.abs(flow) == 0).all(axis=2)] = 0.0
    # What the recipe leaves is the noisiest part of the measurement: keep it smooth.
    residual = cv2.GaussianBlur(residual, (0, 0), RESIDUAL_SMOOTH / STEP)
    # Landmark motion (detected again on the after photo): kept as a record and a check;
    # the recipe is fitted to the dense flow, which detection jitter does not swamp.
    try:
        after_pts = find_face(tgt, source=tname, backend=backend).points
        lm_motion = frame.vec_to_norm(after_pts - face.points).astype(np.float32)
    except MirrorError:
        lm_motion = None
    peak = float(np.hypot(flow[..., 0], flow[..., 1]).max())
    confidence = fit.explained if peak > 0 else 1.0
    meta = {"source": sname, "target": tname, "size": list(size), "face_px": round(face.size, 1),
            "eye_distance_px": round(frame.scale, 2), "landmarker": face.backend,
            "ramp_slope": round(_slope(fit.ramp_slope, canvas, refined_gain is not None, size, scale), 5),
            "canvas": None if canvas is None else list(canvas),
            # Whether the before photo already framed its face as a crop: with the canvas,
            # it tells how the exemplar's pipeline frames photos (ops.alignment).
            "face_crop": is_face_crop(face.points, size),
            # Edited at another size than published: a smaller query is edited at that
            # size too. (A crop was resized to the paper's working size; a centred query
            # would have been edited whole at that size.)
            "working_side": None if scale == 1.0 else
            PAPER_SIDE if canvas is not None else int(round(max(size) * scale)),
            "rejected_recipe": rejected,
            "landmark_motion_mean": None if lm_motion is None
            else round(float(np.hypot(*lm_motion[:468].T).mean()), 5),
            "image_refined_gain_db": None if refined_gain is None else round(refined_gain, 2),
            "seconds": round(time.perf_counter() - t0, 3)}
    return Operation(recipe=recipe, flow=flow, residual=residual,
                     landmarks=frame.to_norm(face.points), landmark_motion=lm_motion,
                     explained=fit.explained,
                     confidence=float(confidence), meta=meta)
