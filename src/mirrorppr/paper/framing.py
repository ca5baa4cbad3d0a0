"""Which picture the paper's data pipeline edited a photo on.

The paper's simulated pairs show two framings (docs/RESULTS.md, "paper framings"):

- a photo that already is a face crop (its face centred, filling the frame about as an
  aligned crop would) was edited as it is: the grid, the resampling ramp and the mask
  blur of the procedure belong to the whole photo;
- any other photo was edited on a face-aligned square crop, resized to 1024 px, then
  pasted back. The crop is the usual high-resolution face-alignment square (the FFHQ
  convention): centred a tenth of the way from the eyes' midpoint to the mouth's, its
  side the larger of four eye distances and 3.6 eye-to-mouth distances. On the three
  pasted crops visible in the paper's cases this square, computed from our landmarks,
  lands within 10 px of the crop's visible edges.

:func:`paper_canvas` predicts that choice for a photo, so that a query is edited the way
the paper's ground truth for it was made. The rule is inferred from nine framings seen in
the paper's cases (six whole, three cropped), not published: treat it as such.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .render import Canvas

#: Face-mesh counterparts of the six eye-contour points the alignment averages per eye
#: (outer corner, two upper-lid points, inner corner, two lower-lid points).
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (263, 387, 385, 362, 380, 373)
MOUTH_CORNERS = (61, 291)
#: The paper's working size: its aligned crops' side, and the long side it edited
#: smaller photos at.
PAPER_SIDE = 1024
#: A photo counts as a face crop when its face's aligned square is centred within this
#: share of the photo's long side of the photo's centre, and its side is within
#: CROP_LIKE_SIDE of the long side. In the paper's cases the photos edited whole lie at
#: offsets 0.07-0.08 and sides 0.88-1.07; the cropped ones at offsets 0.12-0.24.
OFF_CENTRE = 0.10
CROP_LIKE_SIDE = (0.8, 1.25)


@dataclass(frozen=True)
class AlignedSquare:
    """The face-aligned square: centre (x, y) and side, in image pixels."""

    centre: tuple[float, float]
    side: float

    def canvas(self) -> Canvas:
        """(x, y, w, h) of the square, rounded; may reach past the photo's borders."""
        s = int(round(self.side))
        return (int(round(self.centre[0] - self.side / 2)),
                int(round(self.centre[1] - self.side / 2)), s, s)


def aligned_square(points: np.ndarray) -> AlignedSquare:
    """The face-aligned square of a face (478 face-mesh points, image pixels).

    Its rotation is ignored: the procedure's ramp is a scaling about the crop's centre,
    the same in every direction, so an upright square of the same centre and side edits
    the face the same way."""
    p = np.asarray(points, np.float64)
    right, left = p[list(RIGHT_EYE)].mean(axis=0), p[list(LEFT_EYE)].mean(axis=0)
    eyes = (right + left) / 2
    to_mouth = p[list(MOUTH_CORNERS)].mean(axis=0) - eyes
    half = max(2.0 * float(np.hypot(*(left - right))), 1.8 * float(np.hypot(*to_mouth)))
    c = eyes + 0.1 * to_mouth
    return AlignedSquare((float(c[0]), float(c[1])), 2.0 * half)


def framing(points: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """(offset, side) of the face's aligned square as shares of the photo's long side:
    how far its centre lies from the photo's, and how large it is."""
    sq = aligned_square(points)
    w, h = size
    long = float(max(w, h))
    return float(np.hypot(sq.centre[0] - w / 2, sq.centre[1] - h / 2)) / long, sq.side / long


def is_face_crop(points: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether the photo already frames its face as an aligned crop would."""
    offset, side = framing(points, size)
    return offset <= OFF_CENTRE and CROP_LIKE_SIDE[0] <= side <= CROP_LIKE_SIDE[1]


def paper_canvas(points: np.ndarray, size: tuple[int, int]
                 ) -> tuple[Canvas, float] | None:
    """``(canvas, scale)`` the paper's pipeline would edit this photo (``size`` = (w, h))
    on, or None for the whole photo. ``scale`` brings the crop to :data:`PAPER_SIDE`."""
    if is_face_crop(points, size):
        return None
    canvas = aligned_square(points).canvas()
    return canvas, PAPER_SIDE / canvas[2]
