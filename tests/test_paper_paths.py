"""Exemplars the paper's procedure made on another picture than the published photo: an
aligned crop pasted back, or a larger photo published smaller. The analysis must read the
op's strength through either path, and find the picture it ran on."""
import cv2
import numpy as np
import pytest

from mirrorppr.analyze import analyze
from mirrorppr.paper.search import paste_box
from mirrorppr.landmarks import find_face
from mirrorppr.paper.framing import LEFT_EYE, RIGHT_EYE, aligned_square, paper_canvas
from mirrorppr.ops.apply import apply_exact
from mirrorppr.ops.base import get_op
from mirrorppr.ops.recipe import Recipe
from mirrorppr.paper.render import apply_recipe_exact
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
    side = op.provenance.canvas[2]
    # Sides within about 5% of the truth reproduce this pair within 0.05 dB of each other
    # (measured); the side is only identifiable that far.
    assert op.provenance.canvas[:2] == (x, y) and abs(side - 600) <= 36
    assert op.provenance.working_side == working
    assert op.provenance.ramp_slope > 0            # transfers reproduce the paper's procedure


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
    assert op.provenance.working_side == 1024

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


def test_aligned_square_follows_the_eyes_and_mouth():
    pts = np.zeros((478, 2))
    pts[list(RIGHT_EYE)] = (100.0, 100.0)
    pts[list(LEFT_EYE)] = (200.0, 100.0)
    pts[61], pts[291] = (130.0, 220.0), (170.0, 220.0)
    sq = aligned_square(pts)
    # Centre a tenth of the way to the mouth; side: the larger of 4 eye distances (400)
    # and 3.6 eye-to-mouth distances (432).
    assert sq.centre == pytest.approx((150.0, 112.0))
    assert sq.side == pytest.approx(432.0)
    assert sq.canvas() == (-66, -104, 432, 432)


def _off_centre(photo):
    """The photo with its face pushed toward the top-left corner (borders extended)."""
    H, W = photo.shape[:2]
    return np.pad(photo, ((0, H // 2), (0, W // 2), (0, 0)), mode="edge")


def test_framing_decides_whole_photo_or_aligned_crop(hopper, hopper_face):
    x, y, side, _ = aligned_square(hopper_face.points).canvas()
    assert x >= 0 and y >= 0 and x + side <= hopper.shape[1] and y + side <= hopper.shape[0]
    as_crop = hopper[y:y + side, x:x + side]         # the photo cut as the aligner would
    assert paper_canvas(find_face(as_crop).points, (side, side)) is None
    # The head-and-shoulders photo itself (face high, a third of the frame) is not a crop.
    canvas, scale = paper_canvas(hopper_face.points, (hopper.shape[1], hopper.shape[0]))
    assert abs(canvas[0] - x) <= 1 and abs(canvas[1] - y) <= 1
    assert scale == pytest.approx(1024 / canvas[2])


@pytest.mark.parametrize("exemplar_framing", ["face crop", "head and shoulders"])
def test_query_is_framed_as_the_exemplars_pipeline_framed_photos(hopper, hopper_face, astronaut,
                                                                 astronaut_face, exemplar_framing):
    before = hopper
    if exemplar_framing == "face crop":
        x, y, side, _ = aligned_square(hopper_face.points).canvas()
        before = np.ascontiguousarray(hopper[y:y + side, x:x + side])
    # A paper-made exemplar: the exact procedure on the whole photo.
    recipe = Recipe.of(("nose_length", 100.0))
    op = analyze(before, apply_recipe_exact(before, recipe, _detect), families=("llw",))
    assert op.provenance.ramp_slope > 0 and op.provenance.canvas is None and op.recipe.active()
    assert op.provenance.face_crop == (exemplar_framing == "face crop")
    out = Retoucher(op).apply(astronaut).rgb8()
    canvas, scale = paper_canvas(astronaut_face.points, (astronaut.shape[1], astronaut.shape[0]))
    on_crop = apply_recipe_exact(astronaut, op.recipe.active(), _detect, points=astronaut_face.points,
                                 canvas=canvas, scale=scale)
    whole = apply_recipe_exact(astronaut, op.recipe.active(), _detect, points=astronaut_face.points)
    assert not np.array_equal(on_crop, whole)        # the framing matters
    if exemplar_framing == "face crop":
        # The paper's pipeline: a photo that is no face crop is edited on its aligned crop.
        assert np.array_equal(out, on_crop)
    else:
        # This exemplar's pipeline edited a head-and-shoulders photo whole: so is the query.
        assert np.array_equal(out, whole)
    ys, xs = np.nonzero((out != astronaut).any(axis=2))
    x0, y0, x1, y1 = astronaut_face.box
    assert xs.min() > x0 - 10 and xs.max() < x1 + 10 and ys.max() < y1 + 10
    assert {s.op for s in op.recipe.active()} == {"nose_length"}


def test_exemplar_off_centre_without_a_visible_paste_is_read_on_the_aligned_crop(hopper):
    before = _off_centre(hopper)
    face = find_face(before)
    canvas, scale = paper_canvas(face.points, (before.shape[1], before.shape[0]))
    after = apply_recipe_exact(before, Recipe.of(("nose_length", 100.0)), _detect,
                               points=face.points, canvas=canvas, scale=scale)
    # Re-encoding touches every pixel a little: no pasted rectangle to read.
    rng = np.random.default_rng(0)
    after = np.clip(after.astype(np.int16) + rng.integers(-1, 2, after.shape), 0, 255).astype(np.uint8)
    assert paste_box(before, after, face.points) is None
    op = analyze(before, after, face=face, families=("llw",))
    found = {s.op: s.strength for s in op.recipe}
    assert set(found) == {"nose_length"}, op.recipe.summary()
    assert abs(found["nose_length"] - 100) <= 10
    assert op.provenance.canvas == tuple(canvas) and op.provenance.working_side == 1024
