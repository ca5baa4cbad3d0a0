import cv2
import numpy as np
import pytest

from mirrorppr.errors import FaceError
from mirrorppr.landmarks import detect_faces, find_face, get_backend
from mirrorppr.landmarks.topology import face_frame


def test_astronaut_mesh(astronaut, astronaut_face):
    pts = astronaut_face.points
    assert pts.shape == (478, 2)
    x0, y0, x1, y1 = astronaut_face.box
    # The face sits in the upper middle of the 512 px photo.
    assert 150 < x0 < x1 < 320 and 50 < y0 < y1 < 320
    # Iris centres between the eye corners; the chin below the nose tip.
    assert pts[33, 0] < pts[468, 0] < pts[133, 0]
    assert pts[152, 1] > pts[1, 1] > pts[168, 1]
    _, _, _, scale = face_frame(pts)
    assert 35 < scale < 80


def test_tasks_backend_agrees_with_facemesh(astronaut, astronaut_face):
    tasks = get_backend("tasks").mesh(astronaut, 1)
    assert len(tasks) == 1
    diff = np.abs(tasks[0] - astronaut_face.points).mean()
    assert diff < 3.0, diff


def test_small_face_in_large_photo(astronaut, astronaut_face):
    # ~80 px face pasted into a 6000 x 4000 photo.
    k = 80 / astronaut_face.width
    small = cv2.resize(astronaut, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.full((4000, 6000, 3), 120, np.uint8)
    oy, ox = 2600, 4100
    canvas[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
    face = find_face(canvas)
    expected = astronaut_face.points * k + [ox, oy]
    err = np.linalg.norm(face.points[:468] - expected[:468], axis=1).mean()
    assert err < 0.06 * face.width, err


def test_no_face(astronaut):
    flat = np.full((300, 400, 3), 200, np.uint8)
    with pytest.raises(FaceError, match="no face found"):
        find_face(flat, source="flat.png")


def test_several_similar_faces_are_ambiguous(astronaut):
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    faces = detect_faces(pair)
    assert len(faces) == 2
    with pytest.raises(FaceError, match="faces of similar size"):
        find_face(pair)
    assert find_face(pair, index=1).points[:, 0].mean() != find_face(pair, index=0).points[:, 0].mean()


def test_tiny_face_is_refused(astronaut, astronaut_face):
    k = 30 / astronaut_face.size
    tiny = cv2.resize(astronaut, None, fx=k * 1.0, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.full((600, 600, 3), 120, np.uint8)
    canvas[200:200 + tiny.shape[0], 200:200 + tiny.shape[1]] = tiny
    with pytest.raises(FaceError):
        find_face(canvas)
