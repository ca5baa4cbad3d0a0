"""The face frame the learned warp head works in, and the inputs it reads there.

A face's frame is a similarity (rotation from the eye line, scale from the eye distance
and the eye-to-mouth distance, centre a tenth of the way from the eyes to the mouth: the
usual face-alignment square) mapping the face onto a ``side`` x ``side`` crop. The warp
head sees the exemplar and the query in their own frames and predicts the query's motion
in its frame; :func:`to_image_field` carries that motion back to the photo.

The paper's procedure adds two things a warp head must know about to reproduce its
pictures: a resampling ramp inside each op's mask (a magnification about the picture's
centre by ``1 / (nodes - 1)``, its 30 px grid's upsampling) and a blend of warped and
original pixels through a blurred mask whose kernel is 5% of the picture's short side.
Both follow from the picture's size alone: :func:`ramp_vectors` and :func:`blur_share`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The LLW procedure's grid step (pixels), as in :mod:`mirrorppr.ops.apply`.
GRID_STEP = 30
#: The square's side relative to the alignment square (room for hairline and neck).
MARGIN = 1.2
#: Landmark groups rasterised for the model (face-mesh ids): where the parts are.
GROUPS: dict[str, tuple[int, ...]] = {
    "oval": (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
             377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338),
    "brows": (46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336),
    "eyes": (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 249, 263, 362,
             373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 468, 473),
    "nose": (1, 2, 4, 5, 6, 19, 45, 48, 49, 64, 94, 97, 98, 102, 115, 129, 168, 195, 197, 275, 278, 279,
             294, 326, 327, 331, 344, 358),
    "lips": (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
             267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415),
}
RIGHT_IRIS, LEFT_IRIS = 468, 473
MOUTH_CORNERS = (61, 291)


@dataclass(frozen=True)
class Frame:
    """``matrix`` (2x3) maps image pixels to crop pixels of a ``side`` x ``side`` crop."""

    matrix: np.ndarray
    side: int

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)

    def points(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]

    def crop(self, image: np.ndarray, side: int | None = None) -> np.ndarray:
        """The frame's crop of ``image`` (``side`` px: the same crop at another size)."""
        side = side or self.side
        return warp_crop(image, self.matrix * (side / self.side), side)

    def then(self, m: np.ndarray) -> "Frame":
        """This frame after another crop-to-crop affine map ``m`` (2x3)."""
        return Frame(compose(m, self.matrix), self.side)


def warp_crop(image: np.ndarray, m: np.ndarray, side: int) -> np.ndarray:
    """``cv2.warpAffine`` of ``image`` by ``m`` onto ``side`` x ``side``, black outside the
    photo; a reduction is area-averaged first (warpAffine alone samples, and aliases,
    when it shrinks)."""
    k = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if k < 0.8:
        small = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        kx, ky = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
        # Photo pixel x is small pixel (x + 0.5) k - 0.5 (cv2.resize's centres).
        up = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5]])
        m, image = compose(m, up), small
    # Black past the photo's borders: a mirrored border would carry the edit's motion
    # mirrored, and no field says so.
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 affine map ``a`` after ``b``."""
    A = np.vstack([a, [0, 0, 1]])
    B = np.vstack([b, [0, 0, 1]])
    return (A @ B)[:2]


def face_frame(points: np.ndarray, side: int, margin: float = MARGIN) -> Frame:
    """The frame of a face (478 face-mesh points in image pixels)."""
    p = np.asarray(points, np.float64)
    r, l = p[RIGHT_IRIS], p[LEFT_IRIS]
    eyes = (r + l) / 2
    to_mouth = p[list(MOUTH_CORNERS)].mean(axis=0) - eyes
    iod = max(float(np.hypot(*(l - r))), 1e-6)
    half = max(2.0 * iod, 1.8 * float(np.hypot(*to_mouth))) * margin
    centre = eyes + 0.1 * to_mouth
    # "Down" is across the eye line towards the mouth and "right" is from the subject's
    # right eye to the left one: every face comes out upright and unmirrored, even one
    # whose landmarks were carried through a flip (then the frame itself mirrors).
    e = (l - r) / iod
    ey = np.array([-e[1], e[0]])
    if float(ey @ to_mouth) < 0:
        ey = -ey
    k = side / (2 * half)
    rot = np.array([e, ey])                                     # image -> upright
    lin = k * rot
    t = np.array([side / 2, side / 2]) - lin @ centre
    return Frame(np.hstack([lin, t[:, None]]), int(side))


def jitter(rng: np.random.Generator, side: int, rotate: float = 8.0, scale: float = 0.08,
           shift: float = 0.05) -> np.ndarray:
    """A random similarity about the crop's centre (2x3): degrees, log-scale, share of side."""
    a = np.radians(rng.uniform(-rotate, rotate))
    s = float(np.exp(rng.uniform(-scale, scale)))
    c = np.array([side / 2, side / 2])
    lin = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = c - lin @ c + rng.uniform(-shift, shift, 2) * side
    return np.hstack([lin, t[:, None]])


def ramp_vectors(size: tuple[int, int], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The paper procedure's resampling shift (pixels, backward) at image points of a
    picture of ``size`` (w, h) the procedure ran on: ``(x - (W - n) / 2) / (n - 1)`` per
    axis with ``n = W // 30 + 1`` nodes (see :func:`mirrorppr.ops.apply.displacement_at`)."""
    W, H = size
    nx, ny = W // GRID_STEP + 1, H // GRID_STEP + 1
    return np.stack([(x - (W - nx) / 2) / max(nx - 1, 1), (y - (H - ny) / 2) / max(ny - 1, 1)], -1)


def blur_share(size: tuple[int, int], frame: Frame) -> float:
    """The procedure's mask blur (5% of the short side) in crop sides."""
    return 0.05 * min(size) * frame.scale / frame.side


def sample_grid(m: np.ndarray, cells: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates (x, y) of the centres of a ``cells`` x ``cells`` grid over a crop
    of ``side``, for the crop-from-image map ``m``."""
    u = (np.arange(cells, dtype=np.float64) + 0.5) * side / cells - 0.5
    gu, gv = np.meshgrid(u, u)
    inv = cv2.invertAffineTransform(m)
    return inv[0, 0] * gu + inv[0, 1] * gv + inv[0, 2], inv[1, 0] * gu + inv[1, 1] * gv + inv[1, 2]


def ramp_in_frame(size: tuple[int, int], m: np.ndarray, side: int, cells: int) -> np.ndarray:
    """(cells, cells, 2) ramp of the picture the procedure ran on (``size``), seen in a
    crop made by ``m`` (picture pixels -> crop pixels), in crop pixels."""
    x, y = sample_grid(m, cells, side)
    return (ramp_vectors(size, x, y) @ m[:, :2].T).astype(np.float32)


def landmark_maps(pts: np.ndarray, side: int, cells: int) -> np.ndarray:
    """(len(GROUPS), cells, cells) float32: each group's points drawn as soft dots."""
    k = cells / side
    out = np.zeros((len(GROUPS), cells, cells), np.float32)
    for i, ids in enumerate(GROUPS.values()):
        for x, y in np.asarray(pts, np.float64)[list(ids)] * k:
            xi, yi = int(round(x - 0.5)), int(round(y - 0.5))
            if 0 <= xi < cells and 0 <= yi < cells:
                out[i, yi, xi] = 1.0
        out[i] = cv2.GaussianBlur(out[i], (0, 0), max(0.6, cells / 128))
        peak = out[i].max()
        if peak > 0:
            out[i] /= peak
    return out


def dis_flow(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Backward motion of two RGB crops: ``target(u) ~ source(u + f(u))`` (OpenCV DIS)."""
    g = lambda im: cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)  # noqa: E731
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(g(target), g(source), None)


def to_image_field(d: np.ndarray, mask: np.ndarray, frame: Frame, size: tuple[int, int],
                   working: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop-frame motion (cells, cells, 2, crop pixels) and blend mask (cells, cells) ->
    the same at an image working grid of long side ``working`` for a photo of ``size``:
    (h, w, 2) image-pixel displacements and (h, w) mask, zero outside the crop."""
    from ..warp.field import working_shape

    W, H = size
    w, h = working_shape(size, working)
    ux, uy = W / w, H / h
    xs = (np.arange(w, dtype=np.float64) + 0.5) * ux - 0.5
    ys = (np.arange(h, dtype=np.float64) + 0.5) * uy - 0.5
    gx, gy = np.meshgrid(xs, ys)
    m = frame.matrix
    cells = d.shape[0]
    k = cells / frame.side
    cu = ((m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) + 0.5) * k - 0.5
    cv = ((m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) + 0.5) * k - 0.5
    inside = (cu >= -0.5) & (cu <= cells - 0.5) & (cv >= -0.5) & (cv <= cells - 0.5)
    dd = cv2.remap(d.astype(np.float32), cu.astype(np.float32), cv.astype(np.float32), cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mm = cv2.remap(mask.astype(np.float32), cu.astype(np.float32), cv.astype(np.float32), cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inv = np.linalg.inv(m[:, :2])                 # crop vectors -> image vectors
    di = dd @ inv.T
    di[~inside] = 0
    mm[~inside] = 0
    return di.astype(np.float32), mm.astype(np.float32)


# ---------------------------------------------------------------- model inputs

def _rgb(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0


#: Input scalings: pixel differences are faint, motions a few crop pixels.
DIFF_GAIN = 4.0
MOTION_UNIT = 2.0


def exemplar_inputs(src: np.ndarray, tgt: np.ndarray, flow: np.ndarray, pts: np.ndarray,
                    ramp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The warp head's two exemplar inputs, (C, S, S) float32 each, from the before and
    after crops (S x S RGB), their measured motion and the before photo's landmarks and
    ramp in the crop (S x S x 2, crop pixels)."""
    side = src.shape[0]
    s = np.concatenate([_rgb(src), landmark_maps(pts, side, side), ramp.transpose(2, 0, 1) / MOTION_UNIT])
    diff = (tgt.astype(np.float32) - src.astype(np.float32)).transpose(2, 0, 1) / 127.5 * DIFF_GAIN
    t = np.concatenate([_rgb(tgt), diff, flow.transpose(2, 0, 1) / MOTION_UNIT])
    return s.astype(np.float32), t.astype(np.float32)


def query_inputs(query: np.ndarray, pts: np.ndarray, ramp: np.ndarray, blur: float) -> np.ndarray:
    """The warp head's query input (C, S, S) float32."""
    side = query.shape[0]
    b = np.full((1, side, side), blur * 10.0, np.float32)
    return np.concatenate([_rgb(query), landmark_maps(pts, side, side), ramp.transpose(2, 0, 1) / MOTION_UNIT,
                           b]).astype(np.float32)


def exemplar_motion(frame: Frame, source: np.ndarray, target: np.ndarray, side: int) -> np.ndarray:
    """The exemplar's motion in its frame (side x side x 2, crop pixels), measured on
    crops twice as large (sub-pixel motions survive), then halved."""
    big = 2 * side
    f = dis_flow(frame.crop(target, big), frame.crop(source, big))
    return (cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) / 2.0).astype(np.float32)
