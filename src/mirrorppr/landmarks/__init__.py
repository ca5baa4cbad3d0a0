"""Face landmarks: MediaPipe's 478-point mesh, offline, for faces of any size."""
from .backends import DEFAULT_BACKEND, LegacyFaceMesh, TasksFaceLandmarker, get_backend
from .detect import MIN_FACE_PX, Face, detect_faces, find_face, pick_face
from .topology import face_frame

__all__ = ["Face", "detect_faces", "find_face", "pick_face", "face_frame", "get_backend",
           "LegacyFaceMesh", "TasksFaceLandmarker", "DEFAULT_BACKEND", "MIN_FACE_PX"]
