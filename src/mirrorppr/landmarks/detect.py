"""Finding faces and their 478 landmarks in photos of any size.

The face mesh is reliable only for faces larger than ~150 px in the image it sees, so
small faces in large photos are found first with a face detector run over a pyramid of
tiles, then meshed on an enlarged crop scaled to a comfortable size.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FaceError
from .backends import FaceBoxDetector, MeshBackend, get_backend
from .topology import face_frame

#: Faces narrower than this (pixels, landmark extent) are refused: too little detail.
MIN_FACE_PX = 40
#: Mesh on the whole image when its long side is at most this and the face is large.
_DIRECT_MAX_SIDE = 2048
_DIRECT_MIN_FACE = 150
_CROP_SIZE = 512
_TILE = 1280

_detector = FaceBoxDetector()


@dataclass(frozen=True)
class Face:
    """One face: 478 landmark positions (float pixels of the original image)."""

    points: np.ndarray
    backend: str = "facemesh"

    @property
    def box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.points[:468].min(axis=0)
        x1, y1 = self.points[:468].max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def width(self) -> float:
        x0, _, x1, _ = self.box
        return x1 - x0

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of the landmark box."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def scale(self) -> float:
        """Inter-ocular distance in pixels."""
        return face_frame(self.points)[3]

    def int_points(self) -> np.ndarray:
        """Landmarks rounded to integer pixels, as the paper's operations use them."""
        return np.round(self.points).astype(np.int64)


def _mesh_crop(rgb: np.ndarray, box: np.ndarray, backend: MeshBackend, enlarge: float = 2.0
               ) -> list[np.ndarray]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * enlarge
    x0, y0 = cx - side / 2, cy - side / 2
    s = _CROP_SIZE / side
    # Affine crop (with border replicate) so faces at the image edge still mesh.
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(rgb, m, (_CROP_SIZE, _CROP_SIZE), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)
    return [pts / s + np.array([x0, y0]) for pts in backend.mesh(crop, 1)]


def _pyramid_boxes(rgb: np.ndarray) -> list[np.ndarray]:
    """Face boxes from the full-range detector: whole image first, then finer tiles."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    boxes: list[tuple[np.ndarray, float]] = []
    tile = side
    while True:
        step = max(1, int(tile * 0.75))
        ys = list(range(0, max(1, h - tile) + 1, step)) if h > tile else [0]
        xs = list(range(0, max(1, w - tile) + 1, step)) if w > tile else [0]
        if h > tile and ys[-1] + tile < h:
            ys.append(h - tile)
        if w > tile and xs[-1] + tile < w:
            xs.append(w - tile)
        for y in ys:
            for x in xs:
                sub = rgb[y:y + tile, x:x + tile]
                f = min(1.0, 1024 / max(sub.shape[:2]))
                if f < 1:
                    sub = cv2.resize(sub, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
                for b, score in _detector.boxes(sub):
                    boxes.append((b / f + np.array([x, y, x, y]), score))
        if boxes or tile <= _TILE:
            break
        tile = max(_TILE, tile // 2)
    return [b for b, _ in _nms(boxes)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms(boxes: list[tuple[np.ndarray, float]], thr: float = 0.3) -> list[tuple[np.ndarray, float]]:
    keep: list[tuple[np.ndarray, float]] = []
    for b, s in sorted(boxes, key=lambda t: -t[1]):
        if all(_iou(b, k) < thr for k, _ in keep):
            keep.append((b, s))
    return keep


def detect_faces(rgb: np.ndarray, *, backend: str | None = None, max_faces: int = 5) -> list[Face]:
    """All faces in an 8-bit RGB image, largest first (possibly empty)."""
    mesh = get_backend(backend)
    h, w = rgb.shape[:2]
    faces: list[np.ndarray] = []
    small: list[np.ndarray] = []
    if max(h, w) <= _DIRECT_MAX_SIDE:
        direct = mesh.mesh(rgb, max_faces)
        faces = [p for p in direct if _extent(p) >= _DIRECT_MIN_FACE]
        small = [_box(p) for p in direct if _extent(p) < _DIRECT_MIN_FACE]
    if not faces:
        boxes = _pyramid_boxes(rgb)
        # Small faces the mesh saw but the detector missed: refine them on a crop too.
        boxes += [b for b in small if all(_iou(b, k) < 0.3 for k in boxes)]
        for box in boxes[:max_faces]:
            faces.extend(_mesh_crop(rgb, box, mesh))
    uniq: list[np.ndarray] = []
    for p in sorted(faces, key=lambda p: -_extent(p)):
        b = _box(p)
        if all(_iou(b, _box(q)) < 0.3 for q in uniq):
            uniq.append(p)
    return [Face(points=p, backend=mesh.name) for p in uniq]


def _box(p: np.ndarray) -> np.ndarray:
    return np.array([*p[:468].min(axis=0), *p[:468].max(axis=0)])


def _extent(p: np.ndarray) -> float:
    b = _box(p)
    return float(max(b[2] - b[0], b[3] - b[1]))


def pick_face(faces: list[Face], *, source: str = "image", index: int | None = None) -> Face:
    """The face to retouch: the only one, the clearly largest one, or ``index``.

    Raises :class:`FaceError` with an actionable message for none, tiny or ambiguous faces.
    """
    if not faces:
        raise FaceError(f"{source}: no face found; use a photo with a visible, roughly "
                        "frontal face")
    if index is not None:
        if not 0 <= index < len(faces):
            raise FaceError(f"{source}: face index {index} out of range ({len(faces)} found)")
        face = faces[index]
    else:
        face = faces[0]
        if len(faces) > 1 and faces[1].size >= 0.8 * face.size:
            raise FaceError(f"{source}: {len(faces)} faces of similar size found; crop the photo "
                            "to one person or choose one with --face-index (0 = largest)")
    if face.size < MIN_FACE_PX:
        raise FaceError(f"{source}: the face is only {face.size:.0f} px across; at least "
                        f"{MIN_FACE_PX} px is needed")
    return face


def find_face(rgb: np.ndarray, *, source: str = "image", backend: str | None = None,
              index: int | None = None) -> Face:
    """Detect and pick the face to work on (see :func:`pick_face`)."""
    return pick_face(detect_faces(rgb, backend=backend), source=source, index=index)
