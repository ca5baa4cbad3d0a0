"""The eight landmark-guided local warps (LLW) of the MirrorPPR paper's simulated subset.

Index lists and maxima follow the project's LLW specification exactly; points are the
rounded integer landmarks the paper used.
"""
from __future__ import annotations

import numpy as np

from .base import Geometry, Op, register

EYE_RING_L = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
EYE_RING_R = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]
EYE_MASK_R = [22, 23, 24, 25, 26, 27, 28, 29, 30, 56, 110, 112, 130, 190, 243, 247]
EYE_MASK_L = [252, 253, 254, 255, 256, 257, 258, 259, 260, 286, 339, 341, 359, 414, 463, 467]
EYE_ANCHORS = [1, 168, 197, 6, 195, 4, 226, 446, 152, 10, 50, 280]

EYE_DIST_MASK_R = [31, 113, 189, 221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 244]
EYE_DIST_MASK_L = [261, 342, 413, 441, 442, 443, 444, 445, 446, 448, 449, 450, 451, 452, 453, 464]
EYE_DIST_ANCHORS = [1, 2, 98, 327, 10, 152, 234, 454, 13, 14, 78, 308, 168]

NOSE_LEN_MOVE = [1, 4, 19, 279, 49, 2, 98, 327, 456, 236, 94]
NOSE_LEN_ANCHORS = [168, 6, 197, 195, 33, 133, 362, 263, 185, 40, 39, 37, 0, 267, 269, 270, 409,
                    116, 123, 345, 352]
NOSE_LEN_MASK = [47, 128, 142, 164, 165, 167, 168, 193, 203, 244, 277, 357, 371, 391, 393, 417,
                 423, 464]

ALAR_L = [49, 102, 64, 218, 129]
ALAR_R = [279, 331, 294, 438, 358]
ALAR_ANCHORS = [1, 2, 94, 19, 168, 6, 197, 195, 4, 0, 37, 267, 205, 50, 123, 116, 425, 280, 352, 345]
ALAR_MASK = [195, 4, 279, 425, 331, 294, 327, 2, 94, 98, 64, 102, 205, 49]

BRIDGE_MOVE = [3, 44, 45, 51, 122, 193, 196, 248, 274, 275, 281, 351, 417, 419]
BRIDGE_ANCHORS = [1, 2, 4, 5, 6, 19, 48, 64, 94, 98, 115, 168, 195, 197, 278, 294, 327, 344, 362,
                  133, 359, 130, 123, 50, 116, 352, 280, 345]
BRIDGE_MASK = [9, 55, 97, 134, 164, 174, 188, 193, 220, 236, 237, 245, 285, 326, 363, 399, 412,
               417, 440, 456, 457, 465]

LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
        191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409,
        415]
MOUTH_POS_ANCHORS = [2, 98, 327, 94, 19, 1, 152, 377, 148, 365, 136, 234, 454, 58, 288, 361, 132,
                     93, 323, 45, 275]
MOUTH_MASK = [18, 43, 57, 83, 92, 106, 164, 165, 167, 182, 186, 273, 287, 313, 322, 335, 391, 393,
              406, 410]
UPPER_OUTER = [185, 40, 39, 37, 0, 267, 269, 270, 409]
LOWER_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375]
LIP_ANCHORS = [191, 80, 81, 82, 13, 312, 311, 310, 415, 14, 87, 88, 95, 178, 317, 318, 324, 402, 61,
               291, 2, 98, 327, 18, 200, 234, 454, 58, 288, 361, 132, 93, 323]
MOUTH_SIZE_ANCHORS = [2, 98, 327, 205, 425, 152, 377, 148, 234, 454, 58, 288, 361, 132, 93, 323, 164]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 1e-9 else v * 0.0


def _geo(P, moving_ids, targets, anchor_ids, mask_groups, extra_anchors=None) -> Geometry:
    anchors = P[anchor_ids]
    if extra_anchors is not None:
        anchors = np.vstack([anchors, extra_anchors])
    return Geometry(moving=P[moving_ids], targets=np.asarray(targets, dtype=np.float64),
                    anchors=anchors, regions=tuple(P[g] for g in mask_groups), spec_grid=True)


def _radial(P: np.ndarray, ids: list[int], f: float) -> np.ndarray:
    """Scale each point's offset from the nose centre line (p168 along p2 - p168)."""
    o = P[168]
    u = _unit(P[2] - P[168])
    pts = P[ids]
    foot = o + np.outer((pts - o) @ u, u)
    return foot + (pts - foot) * (1.0 + f)


def eye_resize(P: np.ndarray, f: float) -> Geometry:
    tl = [P[r].mean(0) + (P[r] - P[r].mean(0)) * (1 + f) for r in (EYE_RING_L, EYE_RING_R)]
    return _geo(P, EYE_RING_L + EYE_RING_R, np.vstack(tl), EYE_ANCHORS, [EYE_MASK_R, EYE_MASK_L])


def eye_distance(P: np.ndarray, f: float) -> Geometry:
    tl = []
    for ring in (EYE_MASK_R, EYE_MASK_L):
        c = P[ring].mean(0)
        tl.append(P[ring] + (c - P[168]) * f)
    return _geo(P, EYE_MASK_R + EYE_MASK_L, np.vstack(tl), EYE_DIST_ANCHORS,
                [EYE_DIST_MASK_R, EYE_DIST_MASK_L])


def nose_length(P: np.ndarray, f: float) -> Geometry:
    axis = P[1] - P[168]
    t = P[NOSE_LEN_MOVE] + _unit(axis) * (f * float(np.hypot(*axis)))
    return _geo(P, NOSE_LEN_MOVE, t, NOSE_LEN_ANCHORS, [NOSE_LEN_MASK])


def nose_alar(P: np.ndarray, f: float) -> Geometry:
    ids = ALAR_L + ALAR_R
    return _geo(P, ids, _radial(P, ids, f), ALAR_ANCHORS, [ALAR_MASK])


def nose_bridge(P: np.ndarray, f: float) -> Geometry:
    return _geo(P, BRIDGE_MOVE, _radial(P, BRIDGE_MOVE, f), BRIDGE_ANCHORS, [BRIDGE_MASK])


def mouth_position(P: np.ndarray, f: float) -> Geometry:
    if f >= 0:  # down, scaled by the gap below the lower lip
        dy = f * abs(P[17, 1] - P[18, 1])
    else:       # up, scaled by the gap above the upper lip
        dy = f * abs(P[0, 1] - P[164, 1])
    t = P[LIPS] + np.array([0.0, dy])
    return _geo(P, LIPS, t, MOUTH_POS_ANCHORS, [MOUTH_MASK])


def lip_thickness(P: np.ndarray, f: float) -> Geometry:
    dist = f * max(float(np.hypot(*(P[13] - P[0]))), float(np.hypot(*(P[14] - P[17]))))
    up = P[UPPER_OUTER] + _unit(P[2] - P[13]) * dist
    down = P[LOWER_OUTER] + _unit(P[152] - P[14]) * dist
    return _geo(P, UPPER_OUTER + LOWER_OUTER, np.vstack([up, down]), LIP_ANCHORS, [MOUTH_MASK])


def mouth_resize(P: np.ndarray, f: float) -> Geometry:
    c = P[LIPS].mean(0)
    t = c + (P[LIPS] - c) * (1 + f)
    return _geo(P, LIPS, t, MOUTH_SIZE_ANCHORS, [MOUTH_MASK], extra_anchors=c[None])


_LLW = [
    ("eye_resize", ("Enlarge eyes", "Shrink eyes"), "eyes", 0.25, 0.20, eye_resize,
     EYE_RING_L + EYE_RING_R, EYE_ANCHORS),
    ("eye_distance", ("Increase eye distance", "Decrease eye distance"), "eyes", 0.15, 0.15,
     eye_distance, EYE_MASK_R + EYE_MASK_L, EYE_DIST_ANCHORS),
    ("nose_length", ("Lengthen nose", "Shorten nose"), "nose", 0.15, 0.15, nose_length,
     NOSE_LEN_MOVE, NOSE_LEN_ANCHORS),
    ("nose_alar", ("Widen nasal alae", "Narrow nasal alae"), "nose", 0.25, 0.25, nose_alar,
     ALAR_L + ALAR_R, ALAR_ANCHORS),
    ("nose_bridge", ("Widen nose bridge", "Narrow nose bridge"), "nose", 0.30, 0.25, nose_bridge,
     BRIDGE_MOVE, BRIDGE_ANCHORS),
    ("mouth_position", ("Move mouth downward", "Move mouth upward"), "mouth", 0.8, 0.8,
     mouth_position, LIPS, MOUTH_POS_ANCHORS),
    ("lip_thickness", ("Plump lips", "Thin lips"), "mouth", 0.40, 0.30, lip_thickness,
     UPPER_OUTER + LOWER_OUTER, LIP_ANCHORS),
    ("mouth_resize", ("Enlarge mouth", "Shrink mouth"), "mouth", 0.25, 0.25, mouth_resize, LIPS,
     MOUTH_SIZE_ANCHORS),
]

for _name, _labels, _group, _mp, _mn, _fn, _moves, _anchors in _LLW:
    register(Op(name=_name, labels=_labels, group=_group, family="llw", max_pos=_mp, max_neg=_mn,
                build=_fn, moves=tuple(_moves), anchors=tuple(_anchors),
                description="MirrorPPR simulated operation (LLW spec)"))
