"""Exemplars the paper's procedure made on another picture than the published photo: an
aligned crop pasted back, or a larger photo published smaller. The analysis must read the
op's strength through either path, and find the picture it ran on."""
import cv2
import numpy as np
import pytest

from mirrorppr.analyze import analyze
from mirrorppr.analyze.refine import paste_box
from mirrorppr.landmarks import find_face
from mirrorppr.ops.apply import apply_exact
from mirrorppr.ops.base import get_op
from mirrorppr.ops.recipe import Recipe, apply_recipe_exact
from mirrorppr.transfer import Retoucher


def _detect(px):
    return find_face(px).points


def test_canvas_of_the_whole_photo_is_the_default(hopper, hopper_face):
    geom = get_op("nose_length").geometry(np.round(hopper_face.points), 80.0)
    a = apply_exact(hopper, geom)
    b = apply_exact(hopper, geom, canvas=(0, 0, hopper.shape[1], hopper.shape[0]))
    assert np.array_equal(a, b)
    # Another canvas moves the grid and the ramp and widens the blur: a different result,
    # about the same region.
    c = apply_exact(hopper, geom, canvas=(-40, 30, 640, 640))
    assert not np.array_equal(a, c)
    changed_a = (a != hopper).any(axis=2)
    changed_c = (c != hopper).any(axis=2)
    assert (changed_a & changed_c).sum() > 0.5 * (changed_a | changed_c).sum()


@pytest.mark.parametrize("working", [None, 1024])
def test_crop_pasted_back_is_read_with_its_side(hopper, hopper_face, working):
    H, W = hopper.shape[:2]
    scale = 1.0 if working is None else working / max(H, W)
    canvas = (40, 70, 600, 600)        # reaches past the right and bottom borders
    # The paste resamples everything inside the crop (a roundtrip through another grid).
    x, y = canvas[:2]
    M = np.float32([[1.0015, 0, -0.3], [0, 1.0015, 0.2]])
    pasted = hopper.copy()
    pasted[y:, x:] = cv2.warpAffine(hopper[y:, x:], M, (W - x, H - y), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
    truth = Recipe.of(("nose_length", 100.0))
    after = apply_recipe_exact(pasted, truth, _detect, points=hopper_face.points, canvas=canvas,
                               scale=scale)
    assert paste_box(hopper, after, hopper_face.points) == (x, y, W, H)
    assert paste_box(hopper, apply_exact(hopper, get_op("nose_length").geometry(
        np.round(hopper_face.points), 100.0)), hopper_face.points) is None

    op = analyze(hopper, after, face=hopper_face, families=("llw",))
    found = {s.op: s.strength for s in op.recipe}
    assert set(found) == {"nose_length"}, op.recipe.summary()
    assert abs(found["nose_length"] - 100) <= 10
    side = op.meta["canvas"][2]
    assert op.meta["canvas"][:2] == [x, y] and abs(side - 600) <= 24
    assert op.meta["working_side"] == working
    assert op.meta["ramp_slope"] > 0            # transfers reproduce the paper's procedure


def test_photo_edited_larger_then_published_smaller(hopper, hopper_face, astronaut):
    H, W = hopper.shape[:2]
    k = 1024 / max(H, W)
    big = cv2.resize(hopper, (round(W * k), round(H * k)), interpolation=cv2.INTER_CUBIC)
    truth = Recipe.of(("eye_resize", 100.0))
    edited = apply_recipe_exact(big, truth, _detect)
    before = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    after = cv2.resize(edited, (W, H), interpolation=cv2.INTER_AREA)

    op = analyze(before, after, families=("llw",))
    found = {s.op: s.strength for s in op.recipe}
    assert set(found) == {"eye_resize"}, op.recipe.summary()
    assert abs(found["eye_resize"] - 100) <= 10
    assert op.meta["working_side"] == 1024

    # The query is edited at that working size too, and only around the edit.
    out = Retoucher(op).apply(astronaut).rgb8()
    assert out.shape == astronaut.shape
    moved = (out != astronaut).any(axis=2)
    assert 0 < moved.mean() < 0.1
    ys, xs = np.nonzero(moved)
    face = find_face(astronaut)
    assert xs.min() > face.box[0] - 20 and xs.max() < face.box[2] + 20


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_scaled_exact_keeps_untouched_pixels(astronaut, astronaut_face, scale):
    out = apply_recipe_exact(astronaut, Recipe.of(("mouth_resize", -80.0)), _detect,
                             points=astronaut_face.points, scale=scale)
    moved = (out != astronaut).any(axis=2)
    assert moved.any()
    ys, xs = np.nonzero(moved)
    lips = astronaut_face.points[[61, 291, 0, 17]]
    cx, cy = lips[:, 0].mean(), lips[:, 1].mean()
    # Everything that changed lies around the mouth.
    assert np.hypot(xs - cx, ys - cy).max() < 0.25 * astronaut.shape[1]
