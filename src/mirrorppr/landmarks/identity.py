"""Identity descriptor (dlib's 128-d face-recognition ResNet), used to check that two
photos show the same person and to score identity preservation. Offline: the model
files ship in the ``face_recognition_models`` wheel."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np


@lru_cache(maxsize=1)
def _models():
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed")
    base = Path(spec.submodule_search_locations[0]) / "models"
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(base / "shape_predictor_68_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat")))


def descriptor(rgb: np.ndarray, max_side: int = 1600) -> np.ndarray | None:
    """Unit 128-d descriptor of the largest face, or None when dlib finds no face."""
    det, sp, rec = _models()
    im = np.ascontiguousarray(rgb.astype(np.uint8))
    if max(im.shape[:2]) > max_side:
        f = max_side / max(im.shape[:2])
        im = cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    faces = det(im, 1)
    if not faces:
        return None
    box = max(faces, key=lambda r: r.area())
    v = np.array(rec.compute_face_descriptor(im, sp(im, box)))
    return v / np.linalg.norm(v)


def similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine similarity of the two images' largest faces (None if either has none)."""
    da, db = descriptor(a), descriptor(b)
    return None if da is None or db is None else float(da @ db)
