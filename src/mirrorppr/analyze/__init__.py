"""Exemplar analysis: (before, after) of one person -> an :class:`Operation`.

1. register the after photo onto the before photo (size, framing, tone): what is left
   is the structural retouching, or nothing;
2. find the face in the before photo and measure the dense motion between the two
   (optical flow, zero where nothing changed), on the face-normalised grid;
3. fit the operation library's strengths to it, keeping what the recipe leaves
   unexplained as a residual field; motion on the body is read by the body's own
   analysis (:mod:`mirrorppr.body.edit`: body ops, part motion, its own check);
4. try every way of transferring it on the exemplar itself (recipe, recipe + residual,
   the motion itself, and with ``procedure`` allowing it, the paper's procedure) and keep
   the simplest that reproduces the after photo about as well as the best;
5. say what was found and what will not be transferred.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import cv2
import numpy as np

from ..errors import ConfigError, FaceError, InputError, MirrorError
from ..imageio import Photo, read_image
from ..landmarks import Face, detect_faces, find_face, pick_face
from ..body.edit import analyze_body
from ..ops.recipe import Recipe
from ..warp.field import Field
from .calibrate import best_gain
from .fit import fit_recipe
from .flow import measure_flow, measure_whole
from .normalize import STEP, Frame, face_region_mask, face_weight, field_to_grid
from .operation import Candidate, Clean, MotionShares, Operation
from .register import Registration, register
from .validate import Trial

__all__ = ["analyze", "Operation", "PROCEDURES"]

PROCEDURES = ("auto", "clean", "paper")
#: Smoothing of the residual motion (inter-ocular units).
RESIDUAL_SMOOTH = 0.06
#: A candidate is "about as good" as the best when it reproduces the exemplar within
#: this many dB of it, or within this share of the best gain, whichever is larger.
CHOICE_MARGIN_DB = 0.5
CHOICE_MARGIN_SHARE = 0.1
#: The paper's reading is kept only when it reproduces the exemplar this much better
#: than the clean reading's ops (dB)...
PAPER_MARGIN_DB = 1.0
#: ...and comes near what the measured motion itself reproduces (this share of its gain):
#: the measured motion reproduces any exemplar, the paper's artefacts included, so it is
#: the ceiling a right reading approaches, not a rival explanation.
PAPER_NEAR_FLOW = 0.75
#: In ``auto``, the paper's search runs only when its cheap first reading comes within
#: this of the clean recipe (dB), its ramp is visible, or the pair shows a pasted crop.
PAPER_GATE_DB = 1.0
#: A resampling ramp that moves no pixel across the face by this much (pixels) is no sign
#: of the paper's procedure (a fit of clean strokes can leave a numerically tiny one).
RAMP_VISIBLE_PX = 0.1
#: ...and only on photos up to this long side (the paper worked at 1024 px).
PAPER_MAX_SIDE = 2048
#: ...and, in ``auto``, only when the clean ops leave something to explain: once their
#: rendering reproduces the exemplar this well (dB over doing nothing; 20 dB is 99% of
#: the change), no resampling nuisance of the paper's is left to find.
CLEAN_EXACT_DB = 20.0
#: Motion outside the face worth a note (share of the measured motion's energy).
NOTE_SHARE = 0.1
#: Below this reproduction share the transferred edit is called weak.
WEAK = 0.35
#: The body is read when at least this share of the measured motion lies away from the
#: face (a face edit's own tails on the neck and hair stay below it).
BODY_SHARE = 0.05

Progress = Callable[[str, float], None]


def _as_rgb(x, name: str) -> tuple[np.ndarray, str]:
    if isinstance(x, Photo):
        return x.rgb8(), str(x.path or name)
    if isinstance(x, np.ndarray):
        return Photo(x if x.ndim == 3 else x[..., None]).rgb8(), name
    if isinstance(x, (str, os.PathLike)):
        return read_image(x).rgb8(), str(x)
    raise TypeError(f"{name}: expected a path, Photo or array, got {type(x).__name__}")


def _quiet(stage: str, fraction: float) -> None:
    return None


def analyze(source, target, *, procedure: str = "auto", families: tuple[str, ...] = ("llw", "pro"),
            max_ops: int = 5, face: Face | None = None, backend: str | None = None,
            face_index: int | None = None, progress: Progress | None = None) -> Operation:
    """Infer the retouching that turns ``source`` into ``target`` (paths, Photos or arrays).

    ``procedure``: ``auto`` (default) reads the pair as a clean edit and tries the paper's
    procedure only when the pair shows signs of it; ``clean`` never tries it; ``paper``
    always does (and keeps it when it reproduces the exemplar better). ``progress`` is
    called with a stage name and the fraction done."""
    if procedure not in PROCEDURES:
        raise ConfigError(f"procedure {procedure!r}: use one of {', '.join(PROCEDURES)}")
    say = progress or _quiet
    t0 = time.perf_counter()
    src, sname = _as_rgb(source, "source")
    tgt, tname = _as_rgb(target, "target")
    size = (src.shape[1], src.shape[0])
    say("registering the pair", 0.0)
    reg = register(src, tgt)
    tgt_r, valid = reg.apply(tgt, size)
    if not valid.all():
        tgt_r = np.where(valid[..., None], tgt_r, src)
    say("finding the face", 0.15)
    faces = detect_faces(src, backend=backend)
    if face is None:
        face = pick_face(faces, source=sname, index=face_index)
    others = [f for f in faces if np.abs(f.points - face.points).max() > 1.0]
    frame = Frame.of(face.points)
    say("measuring the motion", 0.25)
    measure = measure_flow(src, tgt_r, face.box)
    weight = face_weight(frame.to_norm(face.points))
    flow = measure.to_grid(frame) * weight[..., None]
    whole = measure_whole(src, tgt_r)
    shares = _shares(whole, face, others, size)
    meta = {"source": sname, "target": tname, "size": list(size), "face_px": round(face.size, 1),
            "eye_distance_px": round(frame.scale, 2), "landmarker": face.backend,
            "registration": reg.to_dict(), "procedure": procedure}
    notes = _registration_notes(reg)
    landmarks = frame.to_norm(face.points)
    body, body_field = None, None
    if shares.body + shares.background >= BODY_SHARE:
        say("reading the body", 0.2)
        body, body_notes, body_field = analyze_body(src, tgt_r, valid, face.points, face.box)
        notes += body_notes
        if body is not None:
            meta["body_parts"] = list(body.parts)
    carried_body = body is not None and body.choice != "none"
    if carried_body:
        flow = _without_body(flow, body_field, frame, weight)
    if not np.abs(flow).max(initial=0.0) > 0:
        if carried_body:
            notes.append("no structural retouching found on the face")
            notes += _motion_notes_away(shares, body)
        else:
            notes.append(_nothing_note(reg, shares))
        meta["seconds"] = round(time.perf_counter() - t0, 3)
        say("done", 1.0)
        return Operation(recipe=Recipe([]), flow=flow, residual=np.zeros_like(flow), landmarks=landmarks,
                         explained=1.0, confidence=body.confidence if carried_body else 1.0,
                         provenance=Clean(), choice="none", body=body,
                         motion=_with_body(MotionShares(face=shares.face, body=shares.body,
                                                        background=shares.background,
                                                        other_faces=shares.other_faces, transferred=0.0), body),
                         notes=tuple(notes), meta=meta)
    trial = Trial.of(src, tgt_r, valid, face, moved=whole.moved())
    measured = flow
    known: dict[str, Candidate] = {}        # candidates already scored by the calibration
    if trial.any_change:
        say("calibrating the motion on the exemplar", 0.35)
        gain, known["flow"] = _flow_gain(flow, landmarks, trial)
        flow = (flow * np.float32(gain)).astype(np.float32)
        meta["flow_gain"] = round(gain, 3)
    say("fitting operations", 0.4)
    fit = fit_recipe(face.points, size, flow, frame, families=families, max_ops=max_ops)
    recipe, predicted = fit.recipe, fit.predicted
    if trial.any_change and len(recipe.active()):
        # The fit weighs the motion's faint tails, which the measurement cuts: its
        # strengths come out short too. Calibrated the same way, as a whole.
        gain, known["recipe"] = _recipe_gain(recipe, landmarks, trial)
        recipe, predicted = recipe.scaled(gain), predicted * np.float32(gain)
        meta["recipe_gain"] = round(gain, 3)
    residual = (flow - predicted).astype(np.float32)
    residual[(np.abs(flow) == 0).all(axis=2)] = 0.0
    # What the recipe leaves is the noisiest part of the measurement: keep it smooth.
    residual = cv2.GaussianBlur(residual, (0, 0), RESIDUAL_SMOOTH / STEP)
    try:
        after_pts = find_face(tgt_r, source=tname, backend=backend).points
        lm_motion = frame.vec_to_norm(after_pts - face.points).astype(np.float32)
    except MirrorError:
        lm_motion = None
    op = Operation(recipe=recipe, flow=flow, residual=residual, landmarks=landmarks,
                   landmark_motion=lm_motion, explained=fit.explained, meta=meta, body=body)

    say("checking each transfer on the exemplar", 0.6)
    cands = _clean_candidates(op, trial, known)

    def detect(px: np.ndarray) -> np.ndarray:
        return find_face(Photo(px).rgb8(), source=sname, backend=backend).points

    paper = None
    # The paper's procedure made its after photos at the before photo's size, pixel for
    # pixel: it is read on the pair as it came (its pasted crops look like a re-framing).
    exact = procedure == "auto" and any(c.name == "recipe" and c.gain_db >= CLEAN_EXACT_DB for c in cands)
    if procedure != "clean" and not exact and max(size) <= PAPER_MAX_SIDE and tgt.shape == src.shape:
        say("trying the paper's procedure", 0.75)
        paper = _paper_candidate(op, src, tgt, face, measured, frame, families, max_ops, detect, trial,
                                 cands, reg, thorough=procedure == "paper")
    if paper is not None and _paper_wins(paper[1], cands):
        reading, cand = paper
        clean_ops = next((c.gain_db for c in cands if c.name == "recipe"), 0.0)
        op.recipe, op.provenance, op.choice = reading.recipe, reading.provenance, "paper"
        cands.append(cand)
        chosen = cand
        notes.append(f"read as made by the paper's simulator (its LLW procedure): re-rendered the "
                     f"same way, {cand.gain_db - clean_ops:+.1f} dB closer to the exemplar than the "
                     "clean reading's ops")
    else:
        if paper is not None:
            cands.append(paper[1])
        chosen = _choose([c for c in cands if c.name != "paper"])
        op.choice = chosen.name if chosen is not None else "none"
    op.candidates = tuple(cands)
    op.confidence = trial.reproduced(chosen) if chosen is not None else 0.0
    carried = op.explained if op.choice == "recipe" else 1.0
    op.motion = _with_body(MotionShares(face=shares.face, body=shares.body, background=shares.background,
                                        other_faces=shares.other_faces, transferred=shares.face * carried), body)
    notes += _motion_notes(op, shares)
    op.notes = tuple(notes)
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    say("done", 1.0)
    return op


def _flow_gain(flow: np.ndarray, landmarks: np.ndarray, trial: Trial) -> tuple[float, Candidate]:
    """The gain on the measured motion that best reproduces the exemplar (see
    :mod:`.calibrate`), and its score: carried onto the face once, scaled per trial."""
    from ..transfer.engines import working_for
    from ..transfer.transport import transport
    from ..warp.field import Field

    size = (trial.source.shape[1], trial.source.shape[0])
    f = transport(flow, landmarks, trial.face.points, size, working_for(trial.face, size))
    return best_gain(lambda k: trial.score("flow", Field(f.d * np.float32(k), f.size).apply(trial.source)))


def _recipe_gain(recipe: Recipe, landmarks: np.ndarray, trial: Trial) -> tuple[float, Candidate]:
    """The common gain on the fitted strengths that best reproduces the exemplar, and
    its score (the recipe candidate's)."""
    from ..transfer.engines import TransferOptions, recipe_engine

    still = np.zeros((1, 1, 2), np.float32)
    op = Operation(recipe=recipe, flow=still, residual=still, landmarks=landmarks)
    return best_gain(lambda k: trial.score("recipe", recipe_engine(
        op, trial.source, trial.face, TransferOptions(mode="fast", strength=k), None)))


def _clean_candidates(op: Operation, trial: Trial, known: dict[str, Candidate]) -> list[Candidate]:
    """The clean candidates' scores, simplest first: the named ops alone, the measured
    motion itself, then both (those in ``known`` are already scored)."""
    from ..transfer.engines import (TransferOptions, flow_engine, recipe_engine,
                                    recipe_residual_engine)

    opts = TransferOptions(mode="fast")
    engines = [("flow", flow_engine)]
    if len(op.recipe.active()):
        engines = [("recipe", recipe_engine), ("flow", flow_engine),
                   ("recipe+residual", recipe_residual_engine)]
    return [known[name] if name in known else trial.score(name, fn(op, trial.source, trial.face, opts, None))
            for name, fn in engines]


def _paper_wins(paper: Candidate, cands: list[Candidate]) -> bool:
    """The paper's reading explains the exemplar clearly better than the clean ops, and
    reproduces it about as well as its measured motion does."""
    ops = next((c.gain_db for c in cands if c.name == "recipe"), 0.0)
    flow = next((c.gain_db for c in cands if c.name == "flow"), 0.0)
    return paper.gain_db >= ops + PAPER_MARGIN_DB and paper.gain_db >= PAPER_NEAR_FLOW * flow


def _choose(cands: list[Candidate]) -> Candidate | None:
    """The simplest candidate (they come simplest first) about as good as the best."""
    if not cands:
        return None
    best = max(c.gain_db for c in cands)
    margin = max(CHOICE_MARGIN_DB, CHOICE_MARGIN_SHARE * best)
    return next(c for c in cands if c.gain_db >= best - margin)


def _paper_candidate(op, src, tgt, face, flow, frame, families, max_ops, detect, trial: Trial,
                     cands: list[Candidate], reg: Registration, thorough: bool):
    """The paper's reading, scored like the clean candidates (its renderings registered
    as the after photo was); None when it does not apply or does not reproduce the
    exemplar."""
    size = (src.shape[1], src.shape[0])

    def scored(out: np.ndarray) -> Candidate:
        return trial.score("paper", _at(trial, reg.apply(out, size)[0]))

    from ..paper import first_reading, quick_renders, read_paper
    from ..paper.search import paste_box

    fit = first_reading(src, face.points, flow, frame, families, max_ops)
    start = fit.recipe if len(fit.recipe) else (fit.llw_alternative.recipe if fit.llw_alternative else None)
    if start is None or not len(start.active()):
        return None
    from ..ops.base import get_op
    if not all(get_op(s.op).family == "llw" for s in start):
        if fit.llw_alternative is None:
            return None
        start = fit.llw_alternative.recipe
    if not thorough:
        # Worth the search when the pair shows signs of the procedure: the first reading
        # reproduces it about as well as the clean ops do (a clean edit is reproduced far
        # better by its own ops), the fit sees its resampling ramp move pixels visibly
        # across the face, or a pasted crop.
        ref = next((c.gain_db for c in cands if c.name == "recipe"), 0.0)
        ramp_px = fit.ramp_slope * face.size
        try:
            quick = max(scored(out).gain_db for out in quick_renders(src, start, face.points, detect))
        except MirrorError:
            return None
        if (quick < ref - PAPER_GATE_DB and ramp_px < RAMP_VISIBLE_PX
                and paste_box(src, tgt, face.points) is None):
            return None
    reading = read_paper(src, tgt, face.points, fit, detect, thorough=True)
    if reading is None:
        return None
    return reading, scored(reading.render(src, face.points, detect))


def _at(trial: Trial, pixels: np.ndarray) -> np.ndarray:
    """A full-size rendering at the trial's size."""
    if trial.scale == 1.0:
        return pixels
    h, w = trial.source.shape[:2]
    return cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)


def _shares(whole, face: Face, others: list[Face], size) -> MotionShares:
    """Where the measured motion's energy lies: on the analysed face, on other faces,
    elsewhere (body or background, not told apart without a person mask)."""
    energy = whole.energy
    total = float(energy.sum())
    if total <= 0:
        return MotionShares()
    k = whole.scale
    fmask = face_region_mask(face.points * k, energy.shape)
    omask = np.zeros_like(fmask)
    for f in others:
        omask |= face_region_mask(f.points * k, energy.shape)
    omask &= ~fmask
    f_share = float(energy[fmask].sum()) / total
    o_share = float(energy[omask].sum()) / total
    return MotionShares(face=f_share, body=0.0, background=max(0.0, 1.0 - f_share - o_share),
                        other_faces=o_share)


def _registration_notes(reg: Registration) -> list[str]:
    d = reg.describe()
    return [f"registered before measuring: {d}"] if d else []


def _nothing_note(reg: Registration, shares: MotionShares) -> str:
    why = " only globally" if (reg.geometric or reg.tonal) else " nowhere on the face"
    return (f"no structural retouching found: the after photo differs from the before photo{why}; "
            "queries are returned unchanged")


def _without_body(flow: np.ndarray, body_field: Field, frame: Frame, weight: np.ndarray) -> np.ndarray:
    """The face's grid less the motion the body's reading accounts for (``body_field``,
    the body edit rendered on the exemplar): a shoulder or neck stroke reaches into the
    rings around the face, and read twice it would also be carried as a face edit. Each
    cell gives up the share of its motion that the body's own field explains (none on
    the face itself, which the body's field leaves alone)."""
    b = field_to_grid(body_field, frame) * weight[..., None]
    mag = np.hypot(flow[..., 0], flow[..., 1])
    share = np.clip(np.hypot(b[..., 0], b[..., 1]) / np.maximum(mag, 1e-6), 0.0, 1.0)
    return (flow * (1.0 - share)[..., None]).astype(np.float32)


def _with_body(shares: MotionShares, body) -> MotionShares:
    """The shares, with the motion away from the face counted as the body's (and as
    carried) when the body part is carried."""
    if body is None or body.choice == "none":
        return shares
    away = shares.body + shares.background
    return MotionShares(face=shares.face, body=away, background=0.0, other_faces=shares.other_faces,
                        transferred=shares.transferred + away * body.confidence)


def _motion_notes_away(shares: MotionShares, body) -> list[str]:
    away = shares.body + shares.background
    if body is not None and body.choice != "none":
        return [f"{away:.0%} of the measured motion lies on the body; carried as {body.summary} "
                f"(reproduces {body.confidence:.0%} of the body's change on the exemplar)"]
    if away >= NOTE_SHARE:
        return [f"{away:.0%} of the measured motion lies away from the face (body, hair or "
                "background) and is not transferred"]
    return []


def _motion_notes(op: Operation, shares: MotionShares) -> list[str]:
    notes = _motion_notes_away(shares, op.body)
    if shares.other_faces >= NOTE_SHARE:
        notes.append(f"{shares.other_faces:.0%} of the measured motion is on another face in the photo "
                     "and is not transferred")
    if op.choice == "flow" and len(op.recipe.active()):
        notes.append("the named ops do not reproduce the exemplar well: its measured motion is "
                     "carried instead")
    if op.confidence < WEAK:
        notes.append(f"weak transfer: the chosen way reproduces only {op.confidence:.0%} of the "
                     "exemplar's own change")
    return notes
