"""The body's parts, found on real photos, and a body edit measured on one person and
placed on another: an independent liquify-style push on the astronaut's shoulder (no op
of this project made it) must land on Obama's corresponding shoulder, pointing the same
way relative to his body, about as strong relative to his size."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrorppr.analyze.flow import measure_photo
from mirrorppr.analyze.normalize import face_region_mask
from mirrorppr.body.detect import L_SHOULDER, R_SHOULDER, find_body
from mirrorppr.body.motion import BodyMotion, carry, measure_body
from mirrorppr.body.parts import Skeleton
from mirrorppr.eval.liquify import Stroke, render
from mirrorppr.imageio import read_image
from mirrorppr.landmarks import find_face

PORTRAITS = Path(__file__).parent / "data" / "portraits"


def _person(rgb):
    face = find_face(rgb)
    return face, find_body(rgb, face.box)


@pytest.fixture(scope="module")
def obama():
    rgb = read_image(PORTRAITS / "obama.jpg").rgb8()
    return (rgb, *_person(rgb))


def _shoulder_push(rgb, body, amount):
    """A push at the person's left shoulder, toward the neck, of ``amount`` body units."""
    sh = body.keypoints[L_SHOULDER]
    inward = (body.keypoints[R_SHOULDER] + sh) / 2 - sh
    inward /= np.linalg.norm(inward)
    centre = sh - inward * 0.15 * body.unit + np.array([0.0, -0.12 * body.unit])
    return render(rgb, [Stroke("push", tuple(centre), 0.35 * body.unit, tuple(inward * amount * body.unit))])


def _measure(before, after, face, body) -> BodyMotion:
    m = measure_photo(before, after)
    changed = cv2.dilate((m.changed > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    on_face = face_region_mask((face.points - m.origin) * m.scale, m.changed.shape)
    return measure_body(Skeleton.of(body), m.d, m.trust, changed & ~on_face & (m.outside == 0),
                        m.origin, m.scale)


@pytest.mark.parametrize("name", ["obama", "biden"])
def test_shoulders_are_found_on_real_portraits(name):
    rgb = read_image(PORTRAITS / f"{name}.jpg").rgb8()
    face, body = _person(rgb)
    assert body is not None and body.visible(L_SHOULDER, R_SHOULDER)
    # Shoulders below the face and wider than it.
    fx0, fy0, fx1, fy1 = face.box
    assert min(body.keypoints[[L_SHOULDER, R_SHOULDER], 1]) > fy1 - 0.2 * (fy1 - fy0)
    assert body.unit > 1.2 * (fx1 - fx0)
    assert "shoulders" in Skeleton.of(body).visible_parts()


def test_a_shoulder_push_lands_on_another_persons_shoulder(astronaut, obama):
    face_a, body_a = _person(astronaut)
    after = _shoulder_push(astronaut, body_a, 0.05)
    motion = _measure(astronaut, after, face_a, body_a)
    energy = motion.energy_by_part()
    assert max(energy, key=energy.get) == "shoulders", energy
    again = BodyMotion.from_dict(motion.to_dict())
    assert np.allclose(again.grids, motion.grids, atol=1e-3)

    q, face_q, body_q = obama
    W, H = q.shape[1], q.shape[0]
    f = carry(again, Skeleton.of(body_q), (W, H), 1024)
    mag = f.magnitude()
    iy, ix = np.unravel_index(mag.argmax(), mag.shape)
    peak = (np.array([ix, iy]) + 0.5) * f.unit
    shoulder = body_q.keypoints[L_SHOULDER]
    assert np.linalg.norm(peak - shoulder) < 0.5 * body_q.unit, (peak, shoulder)
    # Backward field: content moves by minus it, toward his neck, ~0.05 of his size.
    inward = (body_q.keypoints[R_SHOULDER] + shoulder) / 2 - shoulder
    inward /= np.linalg.norm(inward)
    moved = -f.d[iy, ix] * f.unit
    assert moved @ inward > 0.9 * np.linalg.norm(moved)
    assert 0.025 < np.linalg.norm(moved) / body_q.unit < 0.1
    # The other shoulder, where nothing was edited, stays still.
    other = body_q.keypoints[R_SHOULDER] / f.unit
    r = int(0.15 * body_q.unit / f.unit[0])
    oy, ox = int(other[1]), int(other[0])
    assert mag[max(0, oy - r):oy + r, max(0, ox - r):ox + r].max() < 0.1 * mag.max()


def test_an_unchanged_pair_has_no_body_motion(astronaut):
    face, body = _person(astronaut)
    motion = _measure(astronaut, astronaut.copy(), face, body)
    assert motion.is_zero()
