"""Named groups of MediaPipe face-mesh landmark indices (478-point refined topology).

"Left"/"right" are the subject's own sides, as MediaPipe names them: the subject's
right eye appears on the image's left.
"""
from __future__ import annotations

import numpy as np

N_LANDMARKS = 478

#: Face oval, clockwise in the image starting at the forehead top (10) through the
#: image-left side (subject's right) down to the chin (152) and back up.
FACE_OVAL = [10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176,
             148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284,
             332, 297, 338]
FOREHEAD_TOP = 10
CHIN = 152
NOSE_ROOT = 168
NOSE_TIP = 1
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17

RIGHT_EYE_RING = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]
LEFT_EYE_RING = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
RIGHT_IRIS = [468, 469, 470, 471, 472]
LEFT_IRIS = [473, 474, 475, 476, 477]
RIGHT_BROW = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107]
LEFT_BROW = [276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
#: Brow outlines split into their upper and lower edges (outer end first).
RIGHT_BROW_UPPER = [70, 63, 105, 66, 107]
RIGHT_BROW_LOWER = [46, 53, 52, 65, 55]
LEFT_BROW_UPPER = [300, 293, 334, 296, 336]
LEFT_BROW_LOWER = [276, 283, 282, 295, 285]
LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
        191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405,
        409, 415]
MOUTH_CORNERS = [61, 291]

#: Contour sections (oval indices) used by the face-shape operations.
RIGHT_TEMPLE = [54, 21, 162]
LEFT_TEMPLE = [284, 251, 389]
RIGHT_CHEEKBONE = [127, 234, 93]
LEFT_CHEEKBONE = [356, 454, 323]
RIGHT_CHEEK = [93, 132, 58]
LEFT_CHEEK = [323, 361, 288]
RIGHT_JAW = [172, 136, 150, 149]
LEFT_JAW = [397, 365, 379, 378]
CHIN_ARC = [176, 148, 152, 377, 400]
FOREHEAD_ARC = [103, 67, 109, 10, 338, 297, 332]


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres: iris centres, the most stable points of the mesh."""
    return points[468].astype(float), points[473].astype(float)


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A similarity frame for a face: origin, unit x (subject's right eye -> left eye in
    the image: left to right), unit y (down the face), and the scale (inter-ocular
    distance in pixels). Face-normalised coordinates are ``((p - origin) @ [x, y]) / scale``.
    """
    r, l = eye_centres(points)
    x = l - r
    scale = float(np.hypot(*x))
    if scale < 1e-6:
        scale = 1.0
    x = x / scale
    y = np.array([-x[1], x[0]])
    if np.dot(y, points[CHIN] - points[FOREHEAD_TOP]) < 0:
        y = -y
    origin = (r + l) / 2.0
    return origin, x, y, scale
